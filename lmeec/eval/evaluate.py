"""Score a submission against annotations, per direction, the way the official evaluator walks the data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmeec.eval.annotations import Annotations, Direction, pair_key
from lmeec.eval.metrics import ScoreAccumulator, Scores
from lmeec.eval.submission import Submission
from lmeec.files import atomic_write_json


@dataclass(frozen=True)
class DirectionReport:
    """Pooled scores of one direction, per-take breakdown, and how many frames were scored as empty."""

    direction: Direction
    total: Scores
    per_take: dict[str, Scores]
    missing_scored_empty: int


def check_known(annotations: Annotations, submission: Submission, direction: Direction) -> None:
    """Reject predictions for takes, objects or camera pairs the annotations do not define."""
    known = {(u.take, u.obj, pair_key(u.query_cam, u.target_cam)) for u in annotations.units(direction)}
    known_takes = set(annotations.takes)
    known_objects = {(take, obj) for take, t in annotations.takes.items() for obj in t.objects}
    for take, obj, key in sorted(submission.pairs(direction)):
        where = f"{submission.source}: {direction}"
        if take not in known_takes:
            raise ValueError(f"{where}: unknown take {take!r} (not in {annotations.source})")
        if (take, obj) not in known_objects:
            raise ValueError(f"{where}: take {take} has no object {obj!r}")
        if (take, obj, key) not in known:
            raise ValueError(f"{where}: take {take} object {obj!r} has no {direction} camera pair {key!r}")


def evaluate_direction(
    annotations: Annotations, submission: Submission, direction: Direction, allow_missing: bool = False
) -> DirectionReport:
    """Score every counted frame of a direction; a missing prediction is an error unless `allow_missing`."""
    check_known(annotations, submission, direction)
    acc = ScoreAccumulator()
    missing = 0
    for unit in annotations.units(direction):
        shape = unit.target_eval_shape
        for frame in unit.counted_frames:
            cams = f"{unit.query_cam}->{unit.target_cam}"
            where = f"take {unit.take} object {unit.obj!r} cameras {cams} frame {frame}"
            gt = unit.gt_mask(frame)
            if gt is not None and shape is not None and gt.shape != shape:  # the annotation's fault
                rec = unit.target.masks[frame]
                raise ValueError(
                    f"{rec.where}: annotation fault: this mask is {rec.height}×{rec.width} but camera "
                    f"{unit.target_cam}'s masks elsewhere are {unit.target_native[0]}×{unit.target_native[1]}"
                )
            pred = submission.get(direction, unit.take, unit.obj, unit.query_cam, unit.target_cam, frame)
            if pred is None:
                if not allow_missing:
                    raise ValueError(
                        f"{submission.source}: {direction}: missing prediction for {where} "
                        "(use --allow-missing to score missing frames as empty, not visible)"
                    )
                missing += 1
                mask = np.zeros(shape, dtype=bool)
                confidence = 0.0
            else:
                mask, confidence = pred.mask, pred.confidence
                if mask.shape != shape:
                    raise ValueError(
                        f"{submission.source}: {direction}: prediction for {where} has shape {mask.shape}, "
                        f"expected {shape} (target camera at evaluation resolution)"
                    )
            acc.add(unit.take, gt, mask, confidence)
    return DirectionReport(direction, acc.total(), acc.per_take(), missing)


def _clean(value: object) -> object:
    """NaN -> None so the report is strict JSON."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _scores_json(scores: Scores) -> dict:
    """Scores as a JSON-ready dict."""
    return {k: _clean(v) for k, v in scores.to_dict().items()}


def report_json(reports: list[DirectionReport], annotations: str, predictions: str) -> dict:
    """The report document: pooled scores per direction, per-take breakdowns and the challenge score."""
    doc: dict = {"annotations": annotations, "predictions": predictions, "directions": {}}
    for r in reports:
        doc["directions"][r.direction] = {
            **_scores_json(r.total),
            "missing_scored_empty": r.missing_scored_empty,
            "per_take": {take: _scores_json(s) for take, s in r.per_take.items()},
        }
    if len(reports) == 2:
        doc["challenge_score_mean_iou"] = _clean(float(np.mean([r.total.iou for r in reports])))
    return doc


def write_report(
    path: Path | str, reports: list[DirectionReport], annotations: str, predictions: str
) -> Path:
    """Write the JSON report atomically."""
    return atomic_write_json(path, report_json(reports, annotations, predictions), indent=1)


def format_table(reports: list[DirectionReport]) -> str:
    """One row per direction: IoU, LE, CA, BA and frame counts."""
    lines = [f"{'direction':<10} {'IoU':>7} {'LE':>7} {'CA':>7} {'BA':>7} {'frames':>7} {'visible':>7}"]
    for r in reports:
        s = r.total
        lines.append(
            f"{r.direction:<10} {s.iou:7.4f} {s.location_error:7.4f} {s.contour_accuracy:7.4f} "
            f"{s.balanced_accuracy:7.4f} {s.frames:7d} {s.visible:7d}"
        )
    return "\n".join(lines)
