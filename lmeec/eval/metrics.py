"""EgoExo4D correspondence metrics with the official evaluator's semantics, quirks included.

IoU, contour accuracy (CA) and location error (LE) are taken on frames whose ground truth is visible;
balanced accuracy (BA) on every counted frame. All four are pooled over frames (no per-take averaging).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from lmeec.eval.rle import EVAL_LONG_SIDE

CONF_THRESH = 0.5  # predicted visible = confidence > 0.5
BOUND_TH = 0.008  # CA tolerance as a fraction of the image diagonal (DAVIS)
LE_DIAGONAL = math.sqrt(2.0 * EVAL_LONG_SIDE**2)  # the 480x480 diagonal, used for exo views too (official)


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays of one 2-D shape."""
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(
            f"ground truth {gt.shape} and prediction {pred.shape} must be 2-D masks of one shape"
        )
    return gt.astype(bool, copy=False), pred.astype(bool, copy=False)


def iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """|P∩G| / (|P∪G| + 1e-7), and 1 when both are empty (DAVIS `db_eval_iou`)."""
    gt, pred = _check_pair(gt, pred)
    union = int(np.count_nonzero(gt | pred))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(gt & pred)) / (union + 1e-7)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a mask, offset half a pixel towards the origin (DAVIS `_seg2bmap`)."""
    seg = mask.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets of skimage's `disk(radius)`: dx² + dy² ≤ radius²."""
    r = int(radius)
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dx * dx + dy * dy <= r * r]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disk, zero outside the image (as cv2.dilate with skimage's disk)."""
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=bool)
    if not mask.any():
        return out
    for dy, dx in disk_offsets(radius):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[yd, xd] |= mask[ys, xs]
    return out


def contour_radius(shape: tuple[int, int]) -> int:
    """CA matching tolerance in pixels: ceil(0.008 * diagonal) — 6 at 480x480, 5 at 480x270."""
    return int(math.ceil(BOUND_TH * math.hypot(*shape)))


def contour_accuracy(gt: np.ndarray, pred: np.ndarray) -> float:
    """DAVIS boundary F-measure (`db_eval_boundary`), no centroid registration, as the official code."""
    gt, pred = _check_pair(gt, pred)
    fg_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_fg, n_gt = int(fg_b.sum()), int(gt_b.sum())
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0  # precision or recall is 0 while the other is 1
    r = contour_radius(gt.shape)
    precision = np.count_nonzero(fg_b & dilate(gt_b, r)) / n_fg
    recall = np.count_nonzero(gt_b & dilate(fg_b, r)) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def box_centre(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) location used by LE, in unpadded pixel coordinates (official `crop_mask` arithmetic).

    The official code pads both masks by H on every side and takes the integer bounding-box midpoint;
    padding shifts that midpoint by exactly H. For an empty mask it returns the padded image's centre
    with x and y swapped, (x=3H//2, y=(W+2H)//2) padded, i.e. (240, 240) at 480x480 but (135, 240) at 480x270.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return 3 * h // 2 - h, (w + 2 * h) // 2 - h
    return (int(xs.min()) + int(xs.max())) // 2, (int(ys.min()) + int(ys.max())) // 2


def location_error(gt: np.ndarray, pred: np.ndarray) -> float:
    """Distance between box centres divided by the 480x480 diagonal (also for exo views)."""
    gt, pred = _check_pair(gt, pred)
    (gx, gy), (px, py) = box_centre(gt), box_centre(pred)
    return math.hypot(gx - px, gy - py) / LE_DIAGONAL


def balanced_accuracy(y_true: Iterable[int], y_pred: Iterable[int]) -> float:
    """sklearn `balanced_accuracy_score`: mean recall over the classes present in y_true.

    As sklearn, a class absent from y_true is dropped from the mean (sklearn warns), so with one class the
    score is that class's recall; with no frames the result is NaN.
    """
    t = np.asarray(list(y_true), dtype=bool)
    p = np.asarray(list(y_pred), dtype=bool)
    recalls = [float(np.mean(p[t == cls] == cls)) for cls in (False, True) if np.any(t == cls)]
    return float(np.mean(recalls)) if recalls else float("nan")


@dataclass(frozen=True)
class Scores:
    """The four benchmark figures for a set of frames, with the counts behind them."""

    iou: float
    location_error: float
    contour_accuracy: float
    balanced_accuracy: float
    frames: int
    visible: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class _Pool:
    """Per-frame values behind one `Scores`."""

    ious: list[float] = field(default_factory=list)
    les: list[float] = field(default_factory=list)
    cas: list[float] = field(default_factory=list)
    vis_true: list[int] = field(default_factory=list)
    vis_pred: list[int] = field(default_factory=list)

    def scores(self) -> Scores:
        """Means over frames (NaN where there is nothing to average)."""

        def mean(values: list[float]) -> float:
            return float(np.mean(values)) if values else float("nan")

        return Scores(
            iou=mean(self.ious),
            location_error=mean(self.les),
            contour_accuracy=mean(self.cas),
            balanced_accuracy=balanced_accuracy(self.vis_true, self.vis_pred),
            frames=len(self.vis_true),
            visible=len(self.ious),
        )


class ScoreAccumulator:
    """Pools frame scores over a split (the official numbers) and keeps per-take pools for diagnosis."""

    def __init__(self) -> None:
        self._total = _Pool()
        self._takes: dict[str, _Pool] = {}

    def add(self, take: str, gt: np.ndarray | None, pred: np.ndarray, confidence: float) -> None:
        """Score one counted frame; `gt` is None when the object is not visible in the target view."""
        pools = (self._total, self._takes.setdefault(take, _Pool()))
        if gt is not None:
            values = (iou(gt, pred), location_error(gt, pred), contour_accuracy(gt, pred))
            for pool in pools:
                pool.ious.append(values[0])
                pool.les.append(values[1])
                pool.cas.append(values[2])
        for pool in pools:
            pool.vis_true.append(int(gt is not None))
            pool.vis_pred.append(int(confidence > CONF_THRESH))

    def total(self) -> Scores:
        """Scores pooled over every frame added."""
        return self._total.scores()

    def per_take(self) -> dict[str, Scores]:
        """Scores pooled within each take."""
        return {take: pool.scores() for take, pool in self._takes.items()}
