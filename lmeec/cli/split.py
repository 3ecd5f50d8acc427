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
        **step_values(args),
    )


def step_values(args: argparse.Namespace) -> dict:
    """The step options (`--device-io`, `--precision`, `--compile`, `--graph`) as plain values."""
    return dict(device_io=args.device_io, precision=args.precision, compile=args.compile, graph=args.graph)


def open_pipeline(
    kind: str,
    device_io: bool = False,
    precision: str = "fp32",
    compile: bool = False,
    graph: bool = False,
    **options,
) -> Pipeline:
    """A `Pipeline` over a freshly opened backend (impossible step options refused before it opens)."""
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline
    from lmeec.runtime.step_options import StepOptions

    step = StepOptions(device_io=device_io, precision=precision, compile=compile, graph=graph)
    step.check(kind, options.get("device", "cpu"))
    return Pipeline(open_backend(kind, **options), options=step)


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


def unit_key(unit: EvaluationUnit) -> str:
    """A unit's identity (in the Ray journal and between a pass and its units)."""
    return "\x1f".join((unit.take, unit.obj, unit.query_cam, unit.target_cam))


def pass_key(units: list[EvaluationUnit]) -> str:
    """A pass's identity: its units' keys."""
    return "\x1e".join(unit_key(u) for u in units)


def objects_per_pass(options: dict) -> int:
    """How many objects one pass of `open_pipeline(**options)` carries: its engines' object profiles."""
    if options["kind"] == "torch":
        from lmeec.runtime.backends.torch import MAX_OBJECTS

        return MAX_OBJECTS
    if options["engines"] is None:
        raise ValueError(f"backend {options['kind']!r} needs --engines DIR (an exported engine folder)")
    from lmeec.export.manifest import read_manifest

    return read_manifest(options["engines"]).max_objects


def object_passes(units: list[EvaluationUnit], max_objects: int) -> list[list[EvaluationUnit]]:
    """Units grouped by take, camera pair and frame sequence, in first-seen order, at most max_objects each:
    such objects run as one pass (both frames encoded once per step, each object with its own memory), and
    every object still walks exactly its own frames."""
    groups: dict[tuple, list] = {}
    for u in units:
        key = (u.take, u.query_cam, u.target_cam, tuple(u.frame_numbers(all_frames=True)))
        groups.setdefault(key, []).append(u)
    return [g[i : i + max_objects] for g in groups.values() for i in range(0, len(g), max_objects)]


def predict_pass(
    pipeline: Pipeline, units: list[EvaluationUnit], confidence: str = "area", progress: bool = True
) -> list[list[list]]:
    """Units that walk the same frames, as one pass frame by frame (every frame, in order: the memory needs
    them all): per unit, [frame, RLE mask at the evaluation shape, confidence] for every frame with that
    unit's query mask, scored or not (the validator's rule)."""
    from tqdm import tqdm

    from lmeec.eval.rle import encode_rle, resize_nearest

    first = units[0]
    numbers = first.frame_numbers(all_frames=True)
    pipeline.reset(num_frames=len(numbers), num_objects=len(units))
    out: list[list[list]] = [[] for _ in units]
    label = f"{first.take[:8]} {first.obj[:12]}" + (f" +{len(units) - 1}" if len(units) > 1 else "")
    for frame in tqdm(numbers, desc=label, unit="frame", leave=False, disable=not progress):
        masks = [u.query_mask(frame) for u in units]
        src, tgt = first.load_rgb(first.query_cam, frame), first.load_rgb(first.target_cam, frame)
        results = pipeline.step(src, masks, tgt)
        for unit, mask_in, result, preds in zip(units, masks, results, out, strict=True):
            if mask_in is None:  # no query mask: the submission holds no prediction here
                continue
            shape = unit.target_eval_shape
            if result.skipped:  # query mask unusable at model resolution: report "not visible"
                mask, score = np.zeros(shape, bool), 0.0
            else:
                mask = resize_nearest(result.mask, shape)
                score = float(result.visible) if confidence == "area" else result.confidence
            preds.append([frame, encode_rle(mask), score])
    return out


class PassPredictions:
    """Per-unit predictions for `write_split`, from passes: a unit's pass is predicted when its first unit is
    asked for, the others' results kept until they are asked for."""

    def __init__(
        self, passes: list[list[EvaluationUnit]], predict: Callable[[list[EvaluationUnit]], list[list[list]]]
    ) -> None:
        self._pass = {unit_key(u): p for p in passes for u in p}
        self._predict, self._kept = predict, {}

    def __call__(self, unit: EvaluationUnit) -> list[list]:
        key = unit_key(unit)
        if key not in self._kept:
            group = self._pass[key]
            self._kept.update(zip((unit_key(u) for u in group), self._predict(group), strict=True))
        return self._kept.pop(key)


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
