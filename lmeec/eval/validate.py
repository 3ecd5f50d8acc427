"""The official validator's acceptance rules: what a complete submission holds, and the first violation.

A file is refused as a whole unless it holds, per direction, every take of the split, every object of each
take, every (query, target) camera pair of each object (`{}` where nothing is predicted) and a prediction
for every frame with a query mask, scored or not, at the target's evaluation shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmeec.eval.annotations import Annotations, Direction, pair_key
from lmeec.eval.rle import run_lengths

# take -> object -> pair key -> (evaluation shape of the target, frames that need a prediction)
Layout = dict[str, dict[str, dict[str, tuple[tuple[int, int], list[int]]]]]


class Refused(ValueError):
    """A submission the official validator would refuse; the message names the first violation."""


def expected(annotations: Annotations, direction: Direction, takes: list[str] | None = None) -> Layout:
    """What a complete submission holds for one direction (all takes, or only `takes`)."""
    if takes is not None:
        unknown = [t for t in takes if t not in annotations.takes]
        if unknown:
            raise ValueError(f"take {unknown[0]!r} not in {annotations.source}")
    chosen = {uid: take for uid, take in annotations.takes.items() if takes is None or uid in takes}
    layout: Layout = {uid: {obj: {} for obj in take.objects} for uid, take in chosen.items()}
    for unit in annotations.units(direction):
        if unit.take in layout:
            key = pair_key(unit.query_cam, unit.target_cam)
            layout[unit.take][unit.obj][key] = (unit.target_eval_shape, unit.required_frames)
    return layout


@dataclass(frozen=True)
class Summary:
    """What a valid submission covers."""

    directions: tuple[Direction, ...]
    takes: int
    objects: int
    pairs: int
    frames: int

    def line(self, source: str) -> str:
        """The one-line verdict for a valid file."""
        return (
            f"valid: {source}: {self.takes} takes, {self.objects} objects; {self.pairs} camera pairs and "
            f"{self.frames} query-mask frames predicted over {' and '.join(self.directions)}"
        )


def _object(value: object, where: str) -> dict:
    """`value` if it is a JSON object, else a Refused naming where."""
    if not isinstance(value, dict):
        raise Refused(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def check_confidence(value: object, where: str) -> float:
    """A prediction's confidence: a finite number (JSON true/false is not one); ValueError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: confidence must be a finite number, got {value!r}")
    return float(value)


def check_prediction(item: object, shape: tuple[int, int], where: str) -> None:
    """One frame's entry: `pred_mask` a COCO RLE of exactly `shape`, `confidence` a finite number."""
    item = _object(item, where)
    if "pred_mask" not in item or "confidence" not in item:
        raise Refused(f"{where}: entry must hold 'pred_mask' and 'confidence'")
    try:
        check_confidence(item["confidence"], where)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    rle = _object(item["pred_mask"], f"{where} pred_mask")
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
        raise Refused(f"{where}: pred_mask size must be [height, width], got {size!r}")
    if tuple(size) != shape:
        raise Refused(
            f"{where}: pred_mask has shape {tuple(size)}, expected {shape} (target at evaluation resolution)"
        )
    if not isinstance(counts, str):
        raise Refused(f"{where}: pred_mask counts must be a compressed RLE string")
    try:
        covered = sum(run_lengths(counts, where))
    except ValueError as exc:
        raise Refused(str(exc)) from None
    if covered != shape[0] * shape[1]:
        raise Refused(f"{where}: pred_mask RLE runs cover {covered} pixels, not {shape[0]}x{shape[1]}")


def _check_direction(layout: Layout, results: dict, direction: Direction) -> tuple[int, int]:
    """Walk one direction in split order; returns the (pairs, frames) it covers."""
    pairs = frames = 0
    for take, objs in layout.items():
        where = f"{direction} take {take}"
        if take not in results:
            raise Refused(f"{where} missing")
        masks = _object(_object(results[take], where).get("masks"), f"{where} 'masks'")
        for obj, keys in objs.items():
            owhere = f"{where} object {obj!r}"
            if obj not in masks:
                raise Refused(f"{owhere} missing")
            entries = _object(masks[obj], owhere)
            for key, (shape, required) in keys.items():
                pwhere = f"{owhere} pair {key}"
                if key not in entries:
                    raise Refused(f"{pwhere} missing")
                predicted = _object(entries[key], pwhere)
                for frame in required:
                    fwhere = f"{pwhere} query frame {frame}"
                    if str(frame) not in predicted:
                        raise Refused(f"{fwhere} missing")
                    check_prediction(predicted[str(frame)], shape, fwhere)
                frames += len(required)
            unknown = sorted(set(entries) - set(keys))
            if unknown:
                raise Refused(f"{owhere}: unknown camera pair {unknown[0]!r}")
            pairs += len(keys)
        unknown = sorted(set(masks) - set(objs))
        if unknown:
            raise Refused(f"{where}: unknown object {unknown[0]!r}")
    unknown = sorted(set(results) - set(layout))
    if unknown:
        raise Refused(f"{direction}: unknown take {unknown[0]!r}")
    return pairs, frames


def validate(annotations: Annotations, doc: object, directions: list[Direction], source: str) -> Summary:
    """Apply the acceptance rules to a parsed submission; raise Refused naming the first violation."""
    try:
        doc = _object(doc, "submission")
        pairs = frames = 0
        for direction in directions:
            if direction not in doc:
                raise Refused(f"no '{direction}' block")
            block = _object(doc[direction], direction)
            results = _object(block.get("results"), f"{direction} 'results'")
            p, f = _check_direction(expected(annotations, direction), results, direction)
            pairs, frames = pairs + p, frames + f
    except Refused as exc:
        raise Refused(f"{source}: refused: {exc}") from None
    objects = sum(len(take.objects) for take in annotations.takes.values())
    return Summary(tuple(directions), len(annotations.takes), objects, pairs, frames)
