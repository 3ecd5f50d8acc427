"""A synthetic take with three objects and three different skip patterns (shared by the multi-object tests)."""

from __future__ import annotations

import numpy as np

from tests.conftest import synthetic_pair

FRAMES = 10
# frame 5 is empty for every object; B skips in warm-up and steady state; C starts late and skips twice in a row
SKIPS = ({5}, {2, 5, 7}, {0, 1, 5, 8, 9})
CORNERS = ((20, 15), (50, 55), (60, 10))  # each object's square in the source frame (moves with t)


def object_take(n: int = FRAMES, skips=SKIPS, seed: int = 0):
    """Frames and per-object masks [K, H, W] (empty where an object is skipped), frame by frame."""
    rng = np.random.default_rng(seed)
    take = []
    for t in range(n):
        src, _, tgt = synthetic_pair(rng, t)
        masks = np.zeros((len(skips), *src.shape[:2]), bool)
        for k, ((y, x), skip) in enumerate(zip(CORNERS, skips)):
            if t not in skip:
                y, x = y + t % 5, x + (k + 1) * t % 9
                masks[k, y : y + 20 + 4 * k, x : x + 18] = True
        take.append((src, masks, tgt))
    return take


def run_together(tracker, take):
    """One pass for all objects: results[k][t]."""
    tracker.reset(num_frames=len(take), num_objects=take[0][1].shape[0])
    per_frame = [tracker.step(src, masks, tgt) for src, masks, tgt in take]
    return [list(r) for r in zip(*per_frame)]


def run_alone(tracker, take, k: int):
    """Object k in a pass of its own (a plain H×W mask): results[t]."""
    tracker.reset(num_frames=len(take))
    return [tracker.step(src, masks[k], tgt) for src, masks, tgt in take]


def assert_same_object_results(together, alone, logits_tol: float | None, pixel_agreement: float = 1.0):
    """Per frame: skip flags, bank sizes, pointer lists identical; logits within tol (or masks agreeing)."""
    worst, agree = 0.0, 1.0
    for a, b in zip(together, alone, strict=True):
        assert (a.frame_index, a.skipped) == (b.frame_index, b.skipped)
        if a.skipped:
            continue
        assert a.bank_sizes == b.bank_sizes and a.pointer_t_diffs == b.pointer_t_diffs
        worst = max(worst, float(np.abs(a.logits - b.logits).max()))
        agree = min(agree, float((a.mask == b.mask).mean()), float((a.mask_model == b.mask_model).mean()))
    if logits_tol is not None:
        assert worst <= logits_tol, f"logits differ by {worst:.3g}"
    assert agree >= pixel_agreement, f"masks agree on {agree:.6f} of pixels"
    return worst, agree
