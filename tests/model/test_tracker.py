"""The reference tracker over whole takes: determinism, bank bounds, the skipped-frame gap rules."""

from __future__ import annotations

import numpy as np
import pytest

from lmeec import Correspondence
from tests.conftest import synthetic_pair


def _run(tracker: Correspondence, n: int, empty_at=(), seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        src, mask, tgt = synthetic_pair(rng, t)
        out.append(tracker.step(src, np.zeros_like(mask) if t in empty_at else mask, tgt))
    return out


@pytest.fixture(scope="module")
def tracker():
    return Correspondence("test", seed=0)


def test_twenty_frames_deterministic_and_bounded(tracker):
    tracker.reset(num_frames=20)
    first = _run(tracker, 20)
    again = Correspondence("test", seed=0)
    again.reset(num_frames=20)
    second = _run(again, 20)
    for a, b in zip(first, second):
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.logits, b.logits)
    assert all(max(r.bank_sizes) <= 6 for r in first)
    assert [r.bank_sizes for r in first[:8]] == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 5),
        (6, 6),
        (6, 6),
    ]
    assert first[19].pointer_t_diffs == tuple(range(1, 16))
    r = first[5]
    assert (
        r.mask.shape == (54, 96) and r.mask_model.shape == (128, 128) and r.low_res_logits.shape == (32, 32)
    )
    assert r.visible == (r.mask_model.mean() > 0.001)
    assert r.confidence == pytest.approx(1 / (1 + np.exp(-r.object_score)))


# Worked by hand from the spec for empty source masks at frames 3 and 9 (take of 20 frames, t_diff_max 15):
# warm-up (fewer than 7 frames processed) rebuilds banks from stored t-6..t-1, so t = 7 is still warm-up
# (frames 1, 2, 4, 5, 6); from t = 8 the bank keeps its warm-up size (5, as frame 3 left a hole); t = 10
# reuses the carried bank since frame 9 was skipped.
GAP_BANKS = {0: 0, 1: 1, 2: 2, 4: 3, 5: 4, 6: 5, 7: 5, 8: 5, 10: 5, 11: 5, 19: 5}
GAP_POINTERS = {
    1: (1,),
    2: (1, 2),
    4: (2, 3, 4),
    5: (1, 3, 4, 5),
    6: (1, 2, 4, 5, 6),
    7: (1, 2, 3, 5, 6, 7),
    10: (2, 3, 4, 5, 6, 8, 9, 10),
    19: (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15),
}


def test_gap_rules_with_empty_source_masks(tracker):
    tracker.reset(num_frames=20)
    results = _run(tracker, 20, empty_at=(3, 9))
    assert [r.frame_index for r in results] == list(range(20))
    assert [t for t, r in enumerate(results) if r.skipped] == [3, 9]
    assert results[3].mask is None and results[9].logits is None
    for t, n in GAP_BANKS.items():
        assert results[t].bank_sizes == (n, n), t
    for t, diffs in GAP_POINTERS.items():
        assert results[t].pointer_t_diffs == diffs, t


def test_live_stream_and_known_length_differ_only_in_pointer_normaliser(tracker):
    tracker.reset(num_frames=5)
    short = _run(tracker, 5)
    tracker.reset()
    live = _run(tracker, 5)
    assert np.array_equal(short[0].logits, live[0].logits)  # frame 0 has no pointers
    assert not np.array_equal(short[4].logits, live[4].logits)  # t_diff_max 4 vs 15
    with pytest.raises(ValueError, match="declared with 5 frames"):
        tracker.reset(num_frames=5)
        _run(tracker, 6)


def test_mean_compression_option_changes_steady_state_only():
    drop, mean = Correspondence("test", seed=0), Correspondence("test", seed=0, compression="mean")
    a, b = _run(drop, 8), _run(mean, 8)
    assert all(np.array_equal(x.logits, y.logits) for x, y in zip(a[:7], b[:7]))  # first compression at t=7
    assert not np.array_equal(a[7].logits, b[7].logits)
