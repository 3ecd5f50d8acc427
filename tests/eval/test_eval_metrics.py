"""Known answers of the official metrics (design doc table) and their edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmeec.eval.metrics import (
    LE_DIAGONAL,
    ScoreAccumulator,
    balanced_accuracy,
    box_centre,
    contour_accuracy,
    contour_radius,
    dilate,
    disk_offsets,
    iou,
    location_error,
)

EGO, EXO = (480, 480), (270, 480)


def blob(shape: tuple[int, int], y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """An elliptical blob inside a box, so that boundaries are not straight."""
    m = np.zeros(shape, bool)
    yy, xx = np.mgrid[0:h, 0:w]
    m[y0 : y0 + h, x0 : x0 + w] = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + (
        (xx - (w - 1) / 2) / (w / 2)
    ) ** 2 <= 1
    return m


@pytest.mark.parametrize("shape", [EGO, EXO])
def test_gt_copy_is_perfect(shape):
    gt = blob(shape, 50, 70, 90, 120)
    assert iou(gt, gt.copy()) == pytest.approx(1.0, abs=1e-9)
    assert contour_accuracy(gt, gt.copy()) == 1.0
    assert location_error(gt, gt.copy()) == 0.0
    acc = ScoreAccumulator()
    acc.add("t", gt, gt, 1.0)
    acc.add("t", None, np.zeros(shape, bool), 0.0)
    s = acc.total()
    assert (s.balanced_accuracy, s.frames, s.visible) == (1.0, 2, 1)


def test_empty_prediction_known_values():
    ego_gt = blob(EGO, 10, 20, 31, 41)  # box x 20..60, y 10..40 -> centre (40, 25)
    exo_gt = blob(EXO, 10, 20, 31, 41)
    empty_ego, empty_exo = np.zeros(EGO, bool), np.zeros(EXO, bool)
    assert iou(ego_gt, empty_ego) == 0.0 and contour_accuracy(ego_gt, empty_ego) == 0.0
    assert box_centre(ego_gt) == (40, 25)
    # empty centroid: padded centre with x/y swapped -> (240, 240) ego, (135, 240) exo
    assert box_centre(empty_ego) == (240, 240) and box_centre(empty_exo) == (135, 240)
    assert location_error(ego_gt, empty_ego) == pytest.approx(
        math.hypot(200, 215) / math.sqrt(2 * 480**2), abs=1e-12
    )
    assert location_error(exo_gt, empty_exo) == pytest.approx(
        math.hypot(95, 215) / math.sqrt(2 * 480**2), abs=1e-12
    )
    acc = ScoreAccumulator()
    acc.add("a", ego_gt, empty_ego, 0.0)
    acc.add("a", None, empty_ego, 0.0)
    acc.add("b", exo_gt, empty_exo, 0.0)
    s = acc.total()
    assert (s.iou, s.contour_accuracy, s.balanced_accuracy) == (0.0, 0.0, 0.5)
    assert acc.per_take()["b"].frames == 1 and math.isnan(acc.per_take()["b"].balanced_accuracy) is False


@pytest.mark.parametrize("shape", [EGO, EXO])
@pytest.mark.parametrize("dx,dy", [(7, 0), (0, -12), (33, 21), (-40, 9)])
def test_shifted_gt_location_error(shape, dx, dy):
    gt = blob(shape, 100, 150, 60, 80)
    pred = np.roll(np.roll(gt, dy, axis=0), dx, axis=1)
    le = location_error(gt, pred)
    assert le == pytest.approx(math.sqrt(dx * dx + dy * dy) / math.sqrt(2 * 480**2), abs=1e-9)
    assert le == pytest.approx(math.sqrt(dx * dx + dy * dy) / 678.82, rel=1e-5)
    assert LE_DIAGONAL == math.sqrt(2 * 480**2)


def runs_per_line(mask: np.ndarray) -> set[int]:
    """How many foreground runs the rows and columns of a mask hold (1 for a convex mask)."""
    lines = [*mask, *mask.T]
    return {
        int(np.count_nonzero(np.diff(line.astype(np.int8)) == 1) + line[0]) for line in lines if line.any()
    }


@pytest.mark.parametrize("shape,radius", [(EGO, 6), (EXO, 5)])
def test_dilated_gt_contour_accuracy(shape, radius):
    """The spec's known answer holds for convex masks: the blob is an ellipse's pixels."""
    assert contour_radius(shape) == radius
    gt = blob(shape, 80, 100, 70, 150)
    assert runs_per_line(gt) == {1}
    for r in range(1, radius + 1):
        assert contour_accuracy(gt, dilate(gt, r)) == 1.0
    assert contour_accuracy(gt, dilate(gt, radius + 2)) < 1.0  # beyond the tolerance it must drop
    assert iou(gt, dilate(gt, radius)) < 1.0


@pytest.mark.parametrize("shape,radius", [(EGO, 6), (EXO, 5)])
def test_dilation_known_answer_fails_for_holes_and_concavities(shape, radius):
    """Not for masks with holes or concavities (spec): dilation fills them, so their boundary goes unmatched."""
    convex = blob(shape, 80, 100, 70, 150)
    ring = convex & ~blob(shape, 105, 165, 20, 20)  # a hole wider than the tolerance is deep
    notch = convex.copy()
    notch[80:125, 173:177] = False  # a 4 px slot, 45 px deep: closed by any r >= 2
    for gt in (ring, notch):
        assert runs_per_line(gt) != {1}
        assert 0.0 < contour_accuracy(gt, dilate(gt, radius)) < 1.0
    assert contour_accuracy(convex, dilate(convex, radius)) == 1.0


def test_dilate_matches_opencv_with_skimage_disk():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    m = rng.random((60, 90)) > 0.97
    for r in (1, 5, 6):
        kernel = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
        for dy, dx in disk_offsets(r):
            kernel[dy + r, dx + r] = 1
        assert np.array_equal(dilate(m, r), cv2.dilate(m.astype(np.uint8), kernel).astype(bool))


def test_iou_empty_union_and_epsilon():
    z = np.zeros(EGO, bool)
    assert iou(z, z) == 1.0 and contour_accuracy(z, z) == 1.0
    a = blob(EGO, 0, 0, 10, 10)
    b = a.copy()
    b[:, :5] = False
    assert iou(a, b) == pytest.approx(b.sum() / (a.sum() + 1e-7))
    assert contour_accuracy(z, a) == 0.0  # visible-but-empty GT, non-empty prediction: precision 0
    with pytest.raises(ValueError, match="one shape"):
        iou(a, np.zeros(EXO, bool))


def test_balanced_accuracy_sklearn_semantics():
    assert balanced_accuracy([1, 1, 0, 0], [1, 1, 1, 1]) == 0.5
    assert balanced_accuracy([1, 1, 1, 0], [1, 0, 1, 0]) == pytest.approx((2 / 3 + 1) / 2)
    assert balanced_accuracy([1, 1, 1], [1, 0, 0]) == pytest.approx(1 / 3)  # one class: its recall
    assert math.isnan(balanced_accuracy([], []))


def test_confidence_threshold_is_strict():
    acc = ScoreAccumulator()
    gt = blob(EGO, 0, 0, 20, 20)
    acc.add("t", gt, gt, 0.5)  # 0.5 is not > 0.5: predicted not visible
    acc.add("t", None, gt, 0.0)
    assert acc.total().balanced_accuracy == 0.5
