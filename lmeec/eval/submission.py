"""The benchmark's submission JSON: a writer that predictors fill frame by frame, and a validating reader.

Layout: {direction: {"version", "challenge", "results": {take: {"masks": {obj: {"{query}_{target}":
{"<frame>": {"pred_mask": COCO RLE, "confidence": float}}}}, "subsample_idx": [...]}}}}, with
direction "ego-exo" (ego query) or "exo-ego" (exo query).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmeec.eval.annotations import DIRECTIONS, Direction, is_ego, pair_key
from lmeec.eval.rle import decode_rle, encode_rle
from lmeec.files import atomic_write_json, read_json

CHALLENGE = "correspondence"


def direction_of(query_cam: str) -> Direction:
    """The direction a query camera implies: an Aria query is ego->exo."""
    return "ego-exo" if is_ego(query_cam) else "exo-ego"


class SubmissionWriter:
    """Collects predicted masks (at evaluation resolution) and writes the submission atomically."""

    def __init__(self, version: str = "lmeec-0.1", challenge: str = CHALLENGE) -> None:
        self.version = version
        self.challenge = challenge
        self._results: dict[str, dict[str, dict]] = {d: {} for d in DIRECTIONS}

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
        mask = np.asarray(mask_480)
        if mask.ndim != 2:
            raise ValueError(f"{where}: mask must be 2-D, got shape {mask.shape}")
        confidence = float(confidence)
        if not math.isfinite(confidence):
            raise ValueError(f"{where}: confidence must be a finite number, got {confidence}")
        entry = self._results[direction_of(query_cam)].setdefault(take, {"masks": {}, "subsample_idx": []})
        frames = entry["masks"].setdefault(obj, {}).setdefault(pair_key(query_cam, target_cam), {})
        frames[str(int(frame))] = {"pred_mask": encode_rle(mask.astype(bool)), "confidence": confidence}
        if int(frame) not in entry["subsample_idx"]:
            entry["subsample_idx"].append(int(frame))

    def to_dict(self) -> dict:
        """The submission document (directions with no prediction are left out)."""
        out = {}
        for direction, results in self._results.items():
            if results:
                for entry in results.values():
                    entry["subsample_idx"].sort()
                out[direction] = {"version": self.version, "challenge": self.challenge, "results": results}
        return out

    def save(self, path: Path | str) -> Path:
        """Write the submission JSON via a temp file and os.replace."""
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
        confidence = item["confidence"]
        if (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not math.isfinite(confidence)
        ):
            raise ValueError(f"{where}: confidence must be a finite number, got {confidence!r}")
        return Prediction(decode_rle(item["pred_mask"], where), float(confidence))
