"""The benchmark's submission JSON: a writer that predictors fill frame by frame into a complete file, and a
validating reader.

Layout: {direction: {"version", "challenge", "results": {take: {"masks": {obj: {"{query}_{target}":
{"<frame>": {"pred_mask": COCO RLE, "confidence": float}}}}, "subsample_idx": [...]}}}}, with
direction "ego-exo" (ego query) or "exo-ego" (exo query).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmeec.eval.annotations import DIRECTIONS, Annotations, Direction, is_ego, pair_key
from lmeec.eval.rle import decode_rle, encode_rle
from lmeec.eval.validate import check_confidence, expected
from lmeec.files import atomic_write_json, read_json

CHALLENGE = "correspondence"


def direction_of(query_cam: str) -> Direction:
    """The direction a query camera implies: an Aria query is ego->exo."""
    return "ego-exo" if is_ego(query_cam) else "exo-ego"


class SubmissionWriter:
    """Fills a complete submission for a split (every take, object and camera pair laid out up front)
    frame by frame, and writes it atomically only once every query-mask frame has a prediction."""

    def __init__(
        self,
        annotations: Annotations,
        directions: Iterable[Direction] = DIRECTIONS,
        takes: list[str] | None = None,
        version: str = "lmeec-0.1",
        challenge: str = CHALLENGE,
    ) -> None:
        self.version = version
        self.challenge = challenge
        self._layout = {d: expected(annotations, d, takes) for d in directions}
        self._results: dict[str, dict[str, dict]] = {
            d: {
                take: {
                    "masks": {obj: {key: {} for key in pairs} for obj, pairs in objs.items()},
                    "subsample_idx": [],
                }
                for take, objs in layout.items()
            }
            for d, layout in self._layout.items()
        }

    def add(
        self,
        take: str,
        obj: str,
        query_cam: str,
        target_cam: str,
        frame: int,
        mask_480: np.ndarray,
        confidence: float,
    ) -> None:
        """Record one frame's prediction: a bool mask of the target's evaluation shape and P(visible)."""
        where = f"take {take} object {obj!r} {query_cam}->{target_cam} frame {frame}"
        if is_ego(query_cam) == is_ego(target_cam):
            raise ValueError(f"{where}: one camera must be Aria (ego) and the other exo")
        direction, key = direction_of(query_cam), pair_key(query_cam, target_cam)
        try:
            shape, _ = self._layout[direction][take][obj][key]
        except KeyError:
            raise ValueError(f"{where}: not an evaluation unit of this submission's split") from None
        mask = np.asarray(mask_480)
        if mask.shape != shape:
            raise ValueError(
                f"{where}: mask must have the target's evaluation shape {shape}, got {mask.shape}"
            )
        confidence = float(confidence)
        if not math.isfinite(confidence):
            raise ValueError(f"{where}: confidence must be a finite number, got {confidence}")
        entry = self._results[direction][take]
        entry["masks"][obj][key][str(int(frame))] = {
            "pred_mask": encode_rle(mask.astype(bool)),
            "confidence": confidence,
        }
        if int(frame) not in entry["subsample_idx"]:
            entry["subsample_idx"].append(int(frame))

    def first_missing(self) -> str | None:
        """The first query-mask frame still without a prediction, in split order, or None."""
        for direction, layout in self._layout.items():
            for take, objs in layout.items():
                for obj, pairs in objs.items():
                    for key, (_, required) in pairs.items():
                        predicted = self._results[direction][take]["masks"][obj][key]
                        for frame in required:
                            if str(frame) not in predicted:
                                return (
                                    f"{direction} take {take} object {obj!r} pair {key} query frame {frame}"
                                )
        return None

    def to_dict(self) -> dict:
        """The submission document; a ValueError while any query-mask frame lacks a prediction."""
        missing = self.first_missing()
        if missing is not None:
            raise ValueError(f"incomplete submission: {missing} has no prediction")
        out = {}
        for direction, results in self._results.items():
            for entry in results.values():
                entry["subsample_idx"].sort()
            out[direction] = {"version": self.version, "challenge": self.challenge, "results": results}
        return out

    def save(self, path: Path | str) -> Path:
        """Write the complete submission JSON via a temp file and os.replace."""
        return atomic_write_json(path, self.to_dict())


@dataclass(frozen=True)
class Prediction:
    """One frame's prediction, decoded."""

    mask: np.ndarray
    confidence: float


class Submission:
    """A submission file, read and checked lazily: each lookup names take, object, camera pair and frame."""

    def __init__(self, doc: object, source: str) -> None:
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: a submission must be a JSON object")
        self.source = source
        self._results: dict[str, dict] = {}
        for direction in DIRECTIONS:
            if direction not in doc:
                continue
            block = doc[direction]
            if not isinstance(block, dict) or not isinstance(block.get("results"), dict):
                raise ValueError(f"{source}: '{direction}' must be an object with a 'results' object")
            self._results[direction] = block["results"]
        if not self._results:
            raise ValueError(f"{source}: no 'ego-exo' or 'exo-ego' predictions found")

    @classmethod
    def load(cls, path: Path | str) -> Submission:
        """Read a submission file."""
        return cls(read_json(path), str(path))

    def directions(self) -> list[Direction]:
        """Directions the file holds predictions for."""
        return [d for d in DIRECTIONS if d in self._results]

    def pairs(self, direction: Direction) -> set[tuple[str, str, str]]:
        """(take, object, pair key) triples present for a direction."""
        out = set()
        for take, entry in self._take_entries(direction).items():
            masks = entry.get("masks") if isinstance(entry, dict) else None
            if not isinstance(masks, dict):
                raise ValueError(f"{self.source}: {direction} take {take}: missing 'masks' object")
            for obj, pairs in masks.items():
                if not isinstance(pairs, dict):
                    raise ValueError(
                        f"{self.source}: {direction} take {take} object {obj!r}: expected an object"
                    )
                out.update((take, obj, key) for key in pairs)
        return out

    def _take_entries(self, direction: Direction) -> dict:
        """The results block of a direction."""
        if direction not in self._results:
            raise ValueError(f"{self.source}: no '{direction}' predictions in this file")
        return self._results[direction]

    def get(
        self, direction: Direction, take: str, obj: str, query_cam: str, target_cam: str, frame: int
    ) -> Prediction | None:
        """The prediction for one frame, None if the file has none; malformed entries raise ValueError."""
        key = pair_key(query_cam, target_cam)
        where = f"{self.source}: {direction} take {take} object {obj!r} cameras {key} frame {frame}"
        try:
            item = self._take_entries(direction)[take]["masks"][obj][key][str(frame)]
        except (KeyError, TypeError):
            return None
        if not isinstance(item, dict) or "pred_mask" not in item or "confidence" not in item:
            raise ValueError(f"{where}: entry must hold 'pred_mask' and 'confidence'")
        return Prediction(decode_rle(item["pred_mask"], where), check_confidence(item["confidence"], where))
