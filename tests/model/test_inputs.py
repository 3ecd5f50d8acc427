"""Bad input gets a clear ValueError naming the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmeec import Correspondence
from lmeec.model.preprocess import check_frame, frame_to_tensor, mask_to_input

RGB = np.zeros((40, 60, 3), np.uint8)
MASK = np.ones((40, 60), bool)


@pytest.fixture(scope="module")
def tracker():
    return Correspondence("test", seed=0)


@pytest.mark.parametrize(
    ("src", "mask", "tgt", "message"),
    [
        (RGB, np.ones((40, 61), bool), RGB, "40×61 but the source frame is 40×60"),
        (RGB[..., :2], MASK, RGB, "H×W×3 RGB"),
        (RGB, MASK, np.zeros((40, 60, 4), np.uint8), "target frame must be H×W×3"),
        (RGB.astype(np.int32), MASK, RGB, "uint8 or float"),
        (np.full((40, 60, 3), np.nan, np.float32), MASK, RGB, "NaN"),
        (RGB.astype(np.float32) + 2, MASK, RGB, r"must lie in \[0, 1\]"),
        (RGB, MASK * 3, RGB, "binary"),
        (RGB, np.full((40, 60), np.nan), RGB, "NaN"),
        (np.zeros((0, 60, 3), np.uint8), MASK[:0], RGB, "empty"),
        (RGB, MASK, [[1, 2, 3]], "numpy array or torch tensor"),
    ],
)
def test_bad_input_is_named(tracker, src, mask, tgt, message):
    with pytest.raises(ValueError, match=message):
        tracker.step(src, mask, tgt)
    assert tracker.frame_index == 0  # a refused frame does not advance the take


def test_empty_take_is_refused(tracker):
    with pytest.raises(ValueError, match="at least one frame"):
        tracker.reset(num_frames=0)
        tracker.step(RGB, MASK, RGB)
    tracker.reset()


def test_float_and_uint8_frames_and_torch_inputs_agree(tracker):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    a = frame_to_tensor(check_frame(frame), 128)
    b = frame_to_tensor(check_frame(frame.astype(np.float32) / 255), 128)
    assert a.shape == (3, 128, 128) and torch.equal(a, b)  # floats take the research 8-bit path
    tracker.reset()
    r = tracker.step(torch.from_numpy(frame), torch.from_numpy(np.ones((50, 70), np.uint8)), frame)
    assert not r.skipped and r.mask.shape == (50, 70)


def test_mask_resize_is_antialiased_bilinear_then_thresholded():
    mask = np.zeros((256, 256), bool)
    mask[:, :128] = True
    mask[0, 200] = True  # an isolated pixel vanishes with antialiasing
    m = mask_to_input(mask, 128)
    assert m.shape == (1, 1, 128, 128) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert m[0, 0, :, :64].all() and not m[0, 0, :, 64:].any()
