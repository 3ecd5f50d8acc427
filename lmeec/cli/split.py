"""A benchmark split's evaluation units for `lmeec run`: listing, one unit walked through a `Pipeline`, and the
submission + PNGs written in benchmark order — shared by the serial run and the Ray run (`run_ray`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lmeec.cli.options import resolve_device

if TYPE_CHECKING:
    from lmeec.eval.annotations import Annotations, Direction, EvaluationUnit
    from lmeec.runtime.pipeline import Pipeline


def pipeline_options(args: argparse.Namespace) -> dict:
    """What `open_pipeline` needs, as plain values (a Ray actor receives them)."""
    return dict(
        kind=args.backend,
        engines=args.engines,
        preset=args.preset,
        checkpoint=args.checkpoint,
        device=resolve_device(args.device, args.backend),
        threads=args.threads,
        providers=args.provider,
    )


def open_pipeline(kind: str, **options) -> Pipeline:
    """A `Pipeline` over a freshly opened backend."""
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    return Pipeline(open_backend(kind, **options))


@dataclass
class Split:
    """The split's annotations, the directions run and their units in benchmark order."""

    annotations: Annotations
    directions: list[Direction]
    units: list[EvaluationUnit]


def split_units(args: argparse.Namespace) -> Split:
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
    return Split(ann, directions, units)


def predict_unit(
    pipeline: Pipeline, unit: EvaluationUnit, confidence: str = "area", progress: bool = True
) -> list[list]:
    """One unit walked frame by frame (every frame, in order: the memory needs them all): [frame, RLE mask at
    the evaluation shape, confidence] for every frame with a query mask, scored or not (the validator's rule)."""
    from tqdm import tqdm

    from lmeec.eval.rle import encode_rle, resize_nearest

    frames = list(unit.frames(all_frames=True))
    pipeline.reset(num_frames=len(frames))
    shape = unit.target_eval_shape
    out = []
    bar = tqdm(
        frames, desc=f"{unit.take[:8]} {unit.obj[:12]}", unit="frame", leave=False, disable=not progress
    )
    for fr in bar:
        result = pipeline.step(fr.source_rgb, fr.source_mask, fr.target_rgb)
        if fr.source_mask is None:  # no query mask: the submission holds no prediction here
            continue
        if result.skipped:  # query mask unusable at model resolution: report "not visible"
            mask, score = np.zeros(shape, bool), 0.0
        else:
            mask = resize_nearest(result.mask, shape)
            score = float(result.visible) if confidence == "area" else result.confidence
        out.append([fr.frame, encode_rle(mask), score])
    return out


def write_split(
    split: Split,
    predictions: Callable[[EvaluationUnit], list[list]],
    out: Path,
    args: argparse.Namespace,
) -> int:
    """predictions.json, a complete submission (every take, object and camera pair laid out), and the PNG
    masks, unit by unit in benchmark order."""
    from tqdm import tqdm

    from lmeec.eval.rle import decode_rle
    from lmeec.eval.submission import SubmissionWriter

    writer, written = SubmissionWriter(split.annotations, split.directions, takes=args.take), 0
    for unit in tqdm(split.units, desc="units", unit="unit", disable=args.no_progress):
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
