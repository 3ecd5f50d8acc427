"""A benchmark split's evaluation units for `lmeec run`: listing, one unit walked through a `Pipeline`, and the
submission + PNGs written in benchmark order — shared by the serial run and the Ray run (`run_ray`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from lmeec.eval.annotations import EvaluationUnit
    from lmeec.runtime.pipeline import Pipeline


def pipeline_options(args: argparse.Namespace) -> dict:
    """What `open_pipeline` needs, as plain values (a Ray actor receives them)."""
    return dict(
        kind=args.backend,
        engines=args.engines,
        preset=args.preset,
        checkpoint=args.checkpoint,
        device=args.device,
        threads=args.threads,
        providers=args.provider,
    )


def open_pipeline(kind: str, **options) -> Pipeline:
    """A `Pipeline` over a freshly opened backend."""
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    return Pipeline(open_backend(kind, **options))


def split_units(args: argparse.Namespace) -> list[EvaluationUnit]:
    """Every evaluation unit of the split, in benchmark order (frames found by absolute path)."""
    from lmeec.eval.annotations import DIRECTIONS, load_annotations

    root = args.frames_root or (
        args.annotations if Path(args.annotations).is_dir() else Path(args.annotations).parent
    )
    ann = load_annotations(args.annotations, relations=args.relations, frames_root=Path(root).resolve())
    directions = list(DIRECTIONS) if args.direction == "both" else [args.direction]
    units = [u for d in directions for u in ann.units(d) if not args.take or u.take in args.take]
    if not units:
        raise ValueError(f"no evaluation units for direction {args.direction} in {args.annotations}")
    return units


def predict_unit(
    pipeline: Pipeline, unit: EvaluationUnit, confidence: str = "area", progress: bool = True
) -> list[list]:
    """One unit walked frame by frame: [frame, RLE mask at evaluation shape, confidence] per counted frame."""
    from tqdm import tqdm

    from lmeec.eval.rle import encode_rle, resize_nearest

    frames = list(unit.frames(all_frames=True))
    pipeline.reset(num_frames=len(frames))
    out = []
    bar = tqdm(
        frames, desc=f"{unit.take[:8]} {unit.obj[:12]}", unit="frame", leave=False, disable=not progress
    )
    for fr in bar:
        result = pipeline.step(fr.source_rgb, fr.source_mask, fr.target_rgb)
        if not fr.counted:
            continue
        if result.skipped:  # counted but no usable query mask: report "not visible"
            mask, score = np.zeros(unit.target_eval_shape, bool), 0.0
        else:
            mask = resize_nearest(result.mask, unit.target_eval_shape)
            score = float(result.visible) if confidence == "area" else result.confidence
        out.append([fr.frame, encode_rle(mask), score])
    return out


def write_split(
    units: list[EvaluationUnit],
    predictions: Callable[[EvaluationUnit], list[list]],
    out: Path,
    args: argparse.Namespace,
) -> int:
    """predictions.json (submission format) and the PNG masks, unit by unit in benchmark order."""
    from tqdm import tqdm

    from lmeec.eval.rle import decode_rle
    from lmeec.eval.submission import SubmissionWriter

    writer, written = SubmissionWriter(), 0
    for unit in tqdm(units, desc="units", unit="unit"):
        pair = f"{unit.query_cam}_{unit.target_cam}"
        for frame, rle, confidence in predictions(unit):
            mask = decode_rle(rle, f"{unit.take} {unit.obj} {pair} frame {frame}")
            writer.add(unit.take, unit.obj, unit.query_cam, unit.target_cam, frame, mask, confidence)
            if not args.no_png:
                save_png(out / "masks" / unit.take / pair / unit.obj / f"{frame}.png", mask)
            written += 1
    writer.save(out / "predictions.json")
    return written


def save_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
