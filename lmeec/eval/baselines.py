"""Sanity baselines scored by `lmeec eval`: copy the query mask (lower bound) and oracle reprojection
through known cameras and depth (upper bound, synthetic takes only)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lmeec.eval.annotations import Annotations, Direction, EvaluationUnit
from lmeec.eval.render import Camera
from lmeec.eval.rle import resize_nearest
from lmeec.eval.submission import SubmissionWriter
from lmeec.eval.synth import TakeScene, load_scene

DEPTH_TOL = 0.02  # metres, plus 1 % of depth: slack when comparing a reprojected depth with a depth map
OBJECT_DEPTH = 0.2  # metres: how far behind its visible surface an object is assumed to extend


def copy_query(unit: EvaluationUnit, frame: int) -> tuple[np.ndarray, float]:
    """The query mask resized to the target's evaluation shape; visible iff the query mask is non-empty."""
    query = unit.query_mask(frame)
    shape = unit.target_eval_shape
    if query is None:
        return np.zeros(shape, bool), 0.0
    return resize_nearest(query, shape), float(query.any())


def reproject(
    query_mask: np.ndarray, query: Camera, query_depth: np.ndarray, target: Camera, target_depth: np.ndarray
) -> np.ndarray:
    """Target pixels whose 3-D point (from target depth) falls inside the query mask, at most OBJECT_DEPTH
    behind the surface the query camera sees there: the object's one-view hull, thickness-limited."""
    h, w = target_depth.shape
    valid = np.isfinite(target_depth)
    rays = target.rays(0, h, 0, w)
    points = np.asarray(target.position, np.float32) + rays * np.where(valid, target_depth, 0)[..., None]
    u, v, z = query.project(points)
    qh, qw = query_mask.shape
    with np.errstate(invalid="ignore"):
        inside = valid & (z > 0) & (u >= 0) & (u < qw) & (v >= 0) & (v < qh)
    ui = np.where(inside, u, 0).astype(np.int64)
    vi = np.where(inside, v, 0).astype(np.int64)
    surface = query_depth[vi, ui]
    tol = DEPTH_TOL + 0.01 * np.abs(z)
    return inside & query_mask[vi, ui] & (z > surface - tol) & (z < surface + OBJECT_DEPTH)


class OracleReprojection:
    """Upper-bound predictor for synthetic takes: re-renders depth from scene.json, warps the query mask."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._scenes: dict[str, TakeScene] = {}
        self._depth: dict[tuple[str, int, str, tuple[int, int]], np.ndarray] = {}  # one take's depth maps

    def scene(self, take: str) -> TakeScene:
        """Scene of a take (cached)."""
        if take not in self._scenes:
            self._scenes[take] = load_scene(self.root, take)
        return self._scenes[take]

    def depth(self, take: str, frame: int, camera: str, shape: tuple[int, int]) -> np.ndarray:
        """Rendered depth of one view, cached while the same take is being predicted."""
        key = (take, frame, camera, tuple(shape))
        if key not in self._depth:
            if any(k[0] != take for k in self._depth):
                self._depth.clear()
            self._depth[key] = self.scene(take).render(frame, camera, shape).depth
        return self._depth[key]

    def __call__(self, unit: EvaluationUnit, frame: int) -> tuple[np.ndarray, float]:
        """Mask at the target's evaluation shape and confidence 1 if any pixel was reprojected."""
        scene = self.scene(unit.take)
        query_mask = unit.query_mask(frame)
        shape = unit.target_eval_shape
        if query_mask is None:
            return np.zeros(shape, bool), 0.0
        cams = scene.cameras[frame]
        target = cams[unit.target_cam].resized(*shape)
        query = cams[unit.query_cam]
        target_depth = self.depth(unit.take, frame, unit.target_cam, shape)
        query_depth = self.depth(unit.take, frame, unit.query_cam, query_mask.shape)
        mask = reproject(query_mask, query.resized(*query_mask.shape), query_depth, target, target_depth)
        return mask, float(mask.any())


def predict(
    annotations: Annotations,
    predictor,
    directions: Iterable[Direction],
) -> SubmissionWriter:
    """Run a per-frame predictor `(unit, frame) -> (mask, confidence)` over every frame with a query mask
    (scored or not), into a complete submission."""
    directions = list(directions)
    writer = SubmissionWriter(annotations, directions)
    for direction in directions:
        for unit in annotations.units(direction):
            for frame in unit.required_frames:
                mask, confidence = predictor(unit, frame)
                writer.add(unit.take, unit.obj, unit.query_cam, unit.target_cam, frame, mask, confidence)
    return writer
