"""The engine pipeline against the reference tracker over whole takes, and its fixed memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmeec import Correspondence
from lmeec.model.memory import compress
from lmeec.runtime.alloc import AllocationCounter
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.ring import CompressScratch, compress_
from tests.conftest import synthetic_pair

EMPTY = (3, 9, 10)  # skipped frames: a warm-up hole and a steady-state gap of two


def _take(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for t in range(n):
        src, mask, tgt = synthetic_pair(rng, t)
        yield src, (np.zeros_like(mask) if t in EMPTY else mask), tgt


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_thirty_frames_match_the_reference(test_engines, backend):
    reference = Correspondence("test", seed=0)
    pipeline = Pipeline(open_backend(backend, engines=test_engines))
    reference.reset(30)
    pipeline.reset(30)
    worst = 0.0
    for src, mask, tgt in _take(30):
        a, b = reference.step(src, mask, tgt), pipeline.step(src, mask, tgt)
        assert a.skipped == b.skipped and a.frame_index == b.frame_index
        if a.skipped:
            continue
        assert a.bank_sizes == b.bank_sizes and a.pointer_t_diffs == b.pointer_t_diffs
        worst = max(worst, float(np.abs(a.logits - b.logits).max()))
        assert np.abs(a.logits - b.logits).max() <= 1e-3
        assert (a.mask == b.mask).mean() >= 0.999 and (a.mask_model == b.mask_model).mean() >= 0.999
        assert a.visible == b.visible
        assert b.mask.shape == tgt.shape[:2]
    print(f"{backend}: worst per-frame max |logit diff| over 30 frames = {worst:.2e}")


@pytest.mark.parametrize("mode", ["drop", "mean"])
@pytest.mark.parametrize("n", [1, 3, 6])
def test_in_place_compression_equals_reference(mode, n):
    torch.manual_seed(n)
    slots = torch.randn(2, 7, 16, 8)
    slots[:, 2] = slots[:, 1] + 1e-3 * torch.randn(2, 16, 8)  # make close pairs likely
    want = [compress(slots[v, : n + 1], mode) for v in range(2)]
    work = slots.clone()
    compress_(work, n, mode, CompressScratch.allocate(2, 6, 16, 8, torch.device("cpu")))
    for v in range(2):
        assert torch.equal(work[v, :n], want[v])


def test_steady_state_steps_allocate_no_tensors(test_engines):
    """After warm-up, a step (pre/post-processing, bank update, graph runs) creates no new tensors."""
    pipeline = Pipeline(open_backend("ort", engines=test_engines))
    pipeline.reset()
    frames = list(_take(14, seed=5))
    buffers = {name: t.data_ptr() for name, t in vars(pipeline).items() if isinstance(t, torch.Tensor)}
    for src, mask, tgt in frames[:11]:  # warm-up, first compressions, the first-size buffers
        pipeline.step(src, mask, tgt)
    counter = AllocationCounter()
    with counter:
        for src, mask, tgt in frames[11:]:
            pipeline.step(src, mask, tgt)
    assert counter.fresh == []
    assert buffers == {
        name: t.data_ptr() for name, t in vars(pipeline).items() if isinstance(t, torch.Tensor)
    }
    assert pipeline.ring.count == 5  # frame 3 left a hole in warm-up


def test_counter_does_see_allocations():
    counter = AllocationCounter()
    x = torch.ones(4)
    with counter:
        x.add_(1)
        torch.add(x, 1, out=x)
        x[1:3].view(2)
        _ = x * 2
    assert counter.fresh == ["aten.mul.Tensor"]


def test_source_mask_fix_option_matches_between_reference_and_pipeline():
    """The sam2 source-mask encoding (±10 logits) is an option; both implementations honour it."""
    from lmeec.model.config import get_preset
    from lmeec.model.network import build_model
    from lmeec.runtime.backends.torch import TorchBackend

    research = Correspondence("test", seed=0)
    fixed = Correspondence("test", seed=0, source_mask="sam2")
    pipeline = Pipeline(TorchBackend(build_model(get_preset("test").with_source_mask("sam2"), seed=0)))
    pipeline.reset()
    changed = False
    for src, mask, tgt in list(_take(8))[:8]:
        a, b, c = research.step(src, mask, tgt), fixed.step(src, mask, tgt), pipeline.step(src, mask, tgt)
        if a.skipped:
            continue
        changed |= not np.array_equal(a.logits, b.logits)
        assert np.abs(b.logits - c.logits).max() <= 1e-4
    assert changed
