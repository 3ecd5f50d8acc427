"""The device path of the step (uint8 frames uploaded, resized by lmeec.kernels, mask bit-packed on the
device): same results as host pre-processing, and no host synchronisation between frame-in and mask-out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from tests.conftest import synthetic_pair

aten = torch.ops.aten
# ops that make the host wait for the device: a value read back, or a data-dependent shape
SYNCING = {aten._local_scalar_dense, aten.item, aten.is_nonzero, aten.nonzero, aten.equal, aten.masked_select}


class NoHostSync(TorchDispatchMode):
    """Fails on a host-synchronising op, a device->host copy, or any op touching the host download buffers
    (which catches a download in the wrong place even on CPU, where every copy is host to host)."""

    def __init__(self, host_buffers: list[torch.Tensor]) -> None:
        super().__init__()
        self.host = {t.untyped_storage().data_ptr() for t in host_buffers}
        self.active, self.seen = True, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.active:
            self.seen += 1
            if func.overloadpacket in SYNCING:
                raise AssertionError(f"host synchronisation inside the device step: {func}")
            tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            if func.overloadpacket in (aten.copy_, aten._to_copy):
                src = tensors[1] if func.overloadpacket is aten.copy_ else tensors[0]
                to_host = (
                    tensors[0].device.type
                    if func.overloadpacket is aten.copy_
                    else kwargs.get("device", src.device).type
                ) == "cpu"
                if to_host and src.device.type != "cpu":
                    raise AssertionError(f"device->host copy inside the device step: {func}")
            for t in tensors:
                if t.untyped_storage().data_ptr() in self.host:
                    raise AssertionError(f"{func} touches a host download buffer inside the device step")
        return func(*args, **kwargs)


def _take(n: int, seed: int = 0, empty: tuple[int, ...] = (3,)):
    rng = np.random.default_rng(seed)
    for t in range(n):
        src, mask, tgt = synthetic_pair(rng, t, src_hw=(141, 117), tgt_hw=(61, 109))
        yield src, (np.zeros_like(mask) if t in empty else mask), tgt


def test_device_io_equals_host_preprocessing(test_engines):
    host = Pipeline(open_backend("torch", engines=test_engines))
    dev = Pipeline(open_backend("torch", engines=test_engines), device_io=True, kernels="torch")
    for p in (host, dev):
        p.reset(6)
    for src, mask, tgt in _take(6):
        a, b = host.step(src, mask, tgt), dev.step(src, mask, tgt)
        assert a.skipped == b.skipped
        if a.skipped:
            continue
        assert np.array_equal(a.logits, b.logits)  # identical model input -> identical logits
        assert np.array_equal(a.mask, b.mask) and b.mask.shape == tgt.shape[:2]
        assert a.object_score == b.object_score and a.iou == b.iou


def test_device_step_never_waits_for_the_device(test_engines, monkeypatch):
    cuda = torch.cuda.is_available()  # on a GPU: the CUDA path itself, Triton kernels included
    backend = open_backend("torch", engines=test_engines, device="cuda" if cuda else "cpu")
    pipe = Pipeline(backend, device_io=True, kernels="auto" if cuda else "torch")
    pipe.reset(12)
    frames = list(_take(12))
    pipe.step(*frames[0])  # builds the per-size buffers
    io = pipe._io
    guard = NoHostSync([io.host_packed, pipe._out_host, pipe._low_host, pipe._scalars_host])
    download, step = pipe._download, pipe.step

    def host_from_here_on():  # the download and the reading of its results are the host's part
        guard.active = False
        return download()

    def guarded_step(*args):
        guard.active = True
        return step(*args)

    monkeypatch.setattr(pipe, "_download", host_from_here_on)
    with guard:
        for f in frames[1:]:  # warm-up, a skipped frame, steady state with compression
            assert not guarded_step(*f).skipped or f[1].sum() == 0
    assert guard.seen > 100  # the mode really saw the step's ops


def test_the_guard_catches_a_read_back():
    with pytest.raises(AssertionError, match="host synchronisation"):
        with NoHostSync([]):
            torch.ones(3).sum().item()
    buf = torch.zeros(3)
    with pytest.raises(AssertionError, match="host download buffer"):
        with NoHostSync([buf]):
            buf.copy_(torch.ones(3))
