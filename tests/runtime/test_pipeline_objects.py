"""The pipeline with several objects in one pass: each object's results equal its own single-object pass."""

from __future__ import annotations

import pytest
import torch

from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline, object_profile
from lmeec.runtime.ring import BankRing
from tests.objects import SKIPS, assert_same_object_results, object_take, run_alone, run_together


@pytest.mark.parametrize(
    ("backend", "logits_tol", "pixels"), [("torch", 1e-5, 0.9999), ("ort", None, 0.9999)]
)
def test_three_objects_equal_their_single_runs(test_engines, backend, logits_tol, pixels):
    pipeline = Pipeline(open_backend(backend, engines=test_engines))
    take = object_take()
    together = run_together(pipeline, take)
    # ort: the engines' K = 3 profile; torch (profiles 1, 2, 4, 8): K = 4 with one padded object
    assert pipeline.profile == {"ort": 3, "torch": 4}[backend] == len(pipeline.rings)
    for k, skip in enumerate(SKIPS):
        assert [t for t, r in enumerate(together[k]) if r.skipped] == sorted(skip)
        worst, agree = assert_same_object_results(
            together[k], run_alone(pipeline, take, k), logits_tol, pixels
        )
        print(f"{backend} object {k}: max |logit diff| {worst:.2e}, mask agreement {agree:.6f}")
    assert pipeline.profile == 1  # the single-object passes ran the K = 1 graphs


def test_rings_are_rows_of_shared_tensors(test_engines):
    pipeline = Pipeline(open_backend("ort", engines=test_engines))
    pipeline.reset(num_objects=2)
    rings = pipeline.rings
    assert rings.slots.shape[:3] == (2, 2, 7) and rings.bank.shape[0] == 2
    assert rings[1].slots.data_ptr() == rings.slots[1].data_ptr()
    assert rings[1].bank.data_ptr() == rings.bank[1].data_ptr()
    ring = rings[1]
    ring.incoming(0).fill_(1.0)
    ring.update(0)  # frame 0 becomes pending
    ring.update(1)  # warm-up: frame 0's memories enter the banks
    assert torch.equal(rings.bank[1, : ring.tokens], torch.ones(ring.tokens, ring.channels))
    assert not rings.bank[0].any() and rings[0].count == 0 and rings[1].count == 1
    assert isinstance(pipeline.ring, BankRing)


def test_object_profiles(test_engines):
    backend = open_backend("ort", engines=test_engines)
    assert backend.max_objects == 3
    assert [object_profile(backend, k) for k in (1, 2, 3)] == [1, 2, 3]
    with pytest.raises(ValueError, match="--max-objects 4"):
        object_profile(backend, 4)
