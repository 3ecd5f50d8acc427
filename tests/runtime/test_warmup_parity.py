"""Full model over takes with skipped frames: the reference tracker and the pipeline (torch, ort) agree.

Patterns: the spec's worked example (skip at 3), skips at 1, 2, 3 (warm-up to index 9), a skipped first
frame, a skip just before the first steady-state frame, gaps in and after warm-up. At every processed frame
the logits agree to 1e-5 and the banks the pipeline attends hold the reference's slots.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmeec import Correspondence
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from tests.conftest import synthetic_pair

FRAMES = 12
PATTERNS = [(3,), (1, 2, 3), (0,), (0, 1, 2), (6,), (2, 8, 9), (9, 10, 11)]
TOLERANCE = 1e-5


def _take(skipped: tuple[int, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    for t in range(FRAMES):
        src, mask, tgt = synthetic_pair(rng, t)
        yield src, (np.zeros_like(mask) if t in skipped else mask), tgt


def _reference_banks(reference: Correspondence) -> torch.Tensor:
    """The banks frame t attended, [2, n, T, C] (views: source, target)."""
    source, target = reference.memory.carried
    if not source:
        return torch.zeros(2, 0)
    return torch.stack([torch.stack(source), torch.stack(target)])


@pytest.fixture(scope="module")
def references():
    """Reference results and attended banks per pattern, computed once for both backends."""
    tracker, out = Correspondence("test", seed=0), {}
    for skipped in PATTERNS:
        tracker.reset(FRAMES)
        steps = []
        for src, mask, tgt in _take(skipped):
            result = tracker.step(src, mask, tgt)
            steps.append((result, None if result.skipped else _reference_banks(tracker)))
        out[skipped] = steps
    return out


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_skip_patterns_match_the_reference(test_engines, references, backend):
    pipeline = Pipeline(open_backend(backend, engines=test_engines))
    worst = {}
    for skipped in PATTERNS:
        pipeline.reset(FRAMES)
        for t, ((src, mask, tgt), (a, banks)) in enumerate(zip(_take(skipped), references[skipped])):
            b = pipeline.step(src, mask, tgt)
            assert a.skipped == b.skipped == (t in skipped)
            if a.skipped:
                continue
            assert a.bank_sizes == b.bank_sizes and a.pointer_t_diffs == b.pointer_t_diffs, (skipped, t)
            n = a.bank_sizes[0]
            ring = pipeline.ring.bank_slots[:, :n]
            if n:
                assert torch.allclose(ring, banks, rtol=0, atol=TOLERANCE), (skipped, t)
            diff = float(np.abs(a.logits - b.logits).max())
            worst[skipped] = max(worst.get(skipped, 0.0), diff)
            assert diff <= TOLERANCE, (skipped, t, diff)
            assert np.array_equal(a.mask, b.mask), (skipped, t)
    print(f"{backend}: worst max |logit diff| per pattern {worst}")


def test_warm_up_bank_sizes_follow_processed_frames(references):
    """Bank sizes per frame, by hand from the spec (skipped frames are absent from the lists)."""
    sizes = {k: [r.bank_sizes[0] for r, _ in v if not r.skipped] for k, v in references.items()}
    assert sizes[(3,)] == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5]  # t = 0 1 2 4 5 6 7 | 8 9 10 11
    assert sizes[(1, 2, 3)] == [0, 1, 2, 3, 3, 4, 5, 5, 5]  # t = 0 4 5 6 7 8 9 | 10 11
    assert sizes[(0,)] == [0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6]  # t = 1 … 7 | 8 …: frame 0 skipped, no hole
    assert sizes[(0, 1, 2)] == [0, 1, 2, 3, 4, 5, 6, 6, 6]  # t = 3 … 9 | 10 11
    assert sizes[(6,)] == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5]  # t = 0 … 5 7 | 8 …: 7 still warm-up
    assert sizes[(2, 8, 9)] == [
        0,
        1,
        2,
        3,
        4,
        5,
        5,
        5,
        5,
    ]  # t = 0 1 3 … 7 | 10 (9 skipped: 7 never enters) 11
    assert sizes[(9, 10, 11)] == [0, 1, 2, 3, 4, 5, 6, 6, 6]
