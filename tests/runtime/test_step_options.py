"""Step options: BF16 autocast on the torch backend (native kernels, FP32 outputs), one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.step_options import StepOptions
from tests.conftest import synthetic_pair


def test_bf16_torch_backend_runs_and_stays_close_to_fp32(test_engines):
    fp32 = Pipeline(open_backend("torch", engines=test_engines))
    bf16_backend = open_backend("torch", engines=test_engines)
    bf16 = Pipeline(bf16_backend, **StepOptions(precision="bf16", device_io=True).apply(bf16_backend))
    rng = np.random.default_rng(0)
    for p in (fp32, bf16):
        p.reset(3)
    for t in range(3):
        src, mask, tgt = synthetic_pair(rng, t)
        a, b = fp32.step(src, mask, tgt), bf16.step(src, mask, tgt)
        assert b.logits.dtype == np.float32
        assert not np.array_equal(a.logits, b.logits)  # really ran in reduced precision
        assert np.abs(a.logits - b.logits).max() < 0.25 * max(1.0, np.abs(a.logits).max())


def test_refusals_are_one_line(test_engines):
    backend = open_backend("torch", engines=test_engines)
    with pytest.raises(ValueError, match="--graph needs a CUDA device"):
        StepOptions(graph=True).apply(backend)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        StepOptions(precision="fp16").apply(backend)
    with pytest.raises(ValueError, match="apply to --backend torch, not ort"):
        StepOptions(precision="bf16").apply(open_backend("ort", engines=test_engines))
