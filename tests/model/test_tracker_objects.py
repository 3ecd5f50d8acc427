"""The reference tracker with several objects: each object's results equal its own single-object pass."""

from __future__ import annotations

import numpy as np
import pytest

from lmeec import Correspondence
from tests.objects import SKIPS, assert_same_object_results, object_take, run_alone, run_together


@pytest.fixture(scope="module")
def tracker():
    return Correspondence("test", seed=0)


def test_three_objects_equal_their_single_runs(tracker):
    take = object_take()
    together = run_together(tracker, take)
    for k, skip in enumerate(SKIPS):
        assert [t for t, r in enumerate(together[k]) if r.skipped] == sorted(skip)
        alone = run_alone(tracker, take, k)
        assert_same_object_results(together[k], alone, logits_tol=1e-5)
    # the objects really differ (a bug mixing them up could not pass)
    assert not np.array_equal(together[0][3].logits, together[1][3].logits)
    # C started two frames late and skipped frames 8-9: its banks and pointers differ from A's
    assert together[2][7].pointer_t_diffs != together[0][7].pointer_t_diffs


def test_mask_forms_and_errors(tracker):
    take = object_take(n=2)
    src, masks, tgt = take[0]
    tracker.reset(num_objects=3)
    as_list = tracker.step(src, [masks[0], None, masks[2]], tgt)
    assert len(as_list) == 3 and as_list[1].skipped and not as_list[0].skipped
    tracker.reset(num_objects=1)
    assert len(tracker.step(src, masks[:1], tgt)) == 1  # [1, H, W] gives a list of one
    with pytest.raises(ValueError, match="2 object"):
        tracker.step(src, masks[:2], tgt)
    with pytest.raises(ValueError, match="num_objects"):
        tracker.reset(num_objects=0)
