"""The device step: pre/post-processing on the device equals the host's, the step between frame-in and
mask-out never waits for the device, and per-variant capture replays the eager step exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lmeec.model.network import build_model
from lmeec.runtime.backends.torch import TorchBackend
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.step_options import StepOptions
from tests.conftest import synthetic_pair

aten = torch.ops.aten
# ops that make the host wait for the device: a value read back, or a shape that depends on values
SYNCING = {aten._local_scalar_dense, aten.item, aten.is_nonzero, aten.nonzero, aten.equal, aten.masked_select}
SKIPPED = (3, 10)  # a hole in warm-up, and a gap in the steady state (the frame after it does not compress)


def _take(n: int, seed: int = 0, src_hw=(141, 117), tgt_hw=(61, 109)):
    rng = np.random.default_rng(seed)
    for t in range(n):
        src, mask, tgt = synthetic_pair(rng, t, src_hw=src_hw, tgt_hw=tgt_hw)
        yield src, (np.zeros_like(mask) if t in SKIPPED else mask), tgt


def _pipeline(options: StepOptions | None = None, device: str = "cpu") -> Pipeline:
    return Pipeline(TorchBackend(build_model("test", seed=0, device=device)), options=options)


def _run(pipe: Pipeline, frames: list) -> list:
    pipe.reset(len(frames))
    return [pipe.step(*f) for f in frames]


def _assert_same(a, b, exact_masks: bool = True) -> None:
    assert a.skipped == b.skipped
    if a.skipped:
        return
    assert np.array_equal(a.logits, b.logits) and np.array_equal(a.low_res_logits, b.low_res_logits)
    assert a.object_score == b.object_score and a.iou == b.iou and a.bank_sizes == b.bank_sizes
    assert a.pointer_t_diffs == b.pointer_t_diffs
    assert a.mask.shape == b.mask.shape
    if exact_masks:
        assert np.array_equal(a.mask, b.mask)


@pytest.fixture(scope="module")
def host_results() -> list:
    torch.set_num_threads(1)
    return _run(_pipeline(), list(_take(12)))


def test_device_io_equals_host_preprocessing(host_results):
    """Torch fallback of the kernels: identical model inputs, so identical logits and native masks."""
    device = _run(_pipeline(StepOptions(device_io=True, kernels="torch")), list(_take(12)))
    for a, b in zip(host_results, device, strict=True):
        _assert_same(a, b)
    assert sum(not r.skipped for r in device) == 10


def test_device_io_triton_kernels_equal_host_preprocessing(host_results):
    """The Triton kernels themselves (interpreter on CPU tensors: tests/conftest): resizes, the mask out, and
    compression (frames 8 and 9) in one launch."""
    pytest.importorskip("triton", reason="Triton not installed (pip install lmeec[kernels])")
    pipe = _pipeline(StepOptions(device_io=True, kernels="triton"))
    assert pipe.ring.fused
    frames = list(_take(12))[:10]
    pipe.reset(12)
    for a, f in zip(host_results, frames, strict=False):
        b = pipe.step(*f)
        _assert_same(a, b, exact_masks=False)
        if not a.skipped:  # the kernel's own bilinear arithmetic: a pixel may flip where a logit is ~0
            assert np.mean(a.mask == b.mask) >= 0.999


def test_captured_variants_replay_the_eager_step(host_results):
    """graph=True on a CPU: the capture's keying and buffer plumbing without CUDA (the step function of a
    variant's first frame is replayed): equal results, one variant for the whole steady state."""
    pipe = _pipeline(StepOptions(device_io=True, kernels="torch", graph=True))
    frames = list(_take(12))
    pipe.reset(len(frames))
    keys, captures = [], []
    for a, f in zip(host_results, frames, strict=True):
        _assert_same(a, pipe.step(*f))
        keys.append(pipe.graphs.last_key if not a.skipped else None)
        captures.append(pipe.graphs.captures)
    # 0: first frame; 1, 2, 4, 5, 6, 7: warm-up shapes (frame 3 left a hole); 8, 9: compression; 11: after
    # the gap at 10 (no compression)
    assert keys[8] == keys[9] != keys[11]
    assert captures[9] == captures[8] and pipe.graphs.replays == 1
    for a, b in zip(host_results, _run(pipe, frames), strict=True):  # a new take replays every variant
        _assert_same(a, b)
    assert pipe.graphs.captures == captures[-1] and pipe.graphs.replays == 1 + 10


class NoHostSync(TorchDispatchMode):
    """Fails on an op that makes the host wait: a value read back, a data-dependent shape, a blocking
    device->host copy, or any use of a host download buffer other than as the destination of an
    asynchronous copy (which catches a read-back in the wrong place even on a CPU)."""

    def __init__(self, downloads: list[torch.Tensor]) -> None:
        super().__init__()
        self.downloads = {t.untyped_storage().data_ptr() for t in downloads}
        self.active, self.seen = True, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.active:
            self.seen += 1
            if func.overloadpacket in SYNCING:
                raise AssertionError(f"host synchronisation inside the device step: {func}")
            tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            is_copy = func.overloadpacket is aten.copy_
            non_blocking = is_copy and (kwargs.get("non_blocking") or (len(args) > 2 and args[2]))
            if is_copy and tensors[0].device.type == "cpu" and tensors[1].device.type != "cpu":
                if not non_blocking or tensors[0].untyped_storage().data_ptr() not in self.downloads:
                    raise AssertionError(f"blocking device->host copy inside the device step: {func}")
            if func.overloadpacket is aten._to_copy and kwargs.get("device", tensors[0].device).type == "cpu":
                if tensors[0].device.type != "cpu":
                    raise AssertionError(f"device->host copy inside the device step: {func}")
            for i, t in enumerate(tensors if not func.is_view else ()):  # views read nothing
                if t.untyped_storage().data_ptr() in self.downloads and not (i == 0 and non_blocking):
                    raise AssertionError(f"{func} touches a host download buffer inside the device step")
        return func(*args, **kwargs)


def _no_sync_take(device: str) -> NoHostSync:
    opts = StepOptions(device_io=True, kernels="auto" if device == "cuda" else "torch")
    pipe = _pipeline(opts, device)
    frames = list(_take(12))
    pipe.reset(len(frames))
    pipe.step(*frames[0])  # builds the per-size buffers
    io = pipe._io
    guard = NoHostSync([pipe._out_host, pipe._low_host, pipe._scalars_host, io.packed_host, io.peak_host])
    synchronize = pipe.backend.synchronize

    def read_back_from_here_on() -> None:  # the one wait, then the host reads the downloaded results
        guard.active = False
        synchronize()

    pipe.backend.synchronize = read_back_from_here_on
    with guard:
        for f in frames[1:]:  # warm-up, a skipped frame, steady state with compression, a steady-state gap
            guard.active = True
            pipe.step(*f)
    assert pipe.ring.count == 5 and pipe.ring.processed == 10  # frame 3 left a hole in warm-up
    return guard


def test_device_step_never_waits_for_the_device():
    guard = _no_sync_take("cpu")
    assert guard.seen > 300  # the mode really saw the steps' ops


def test_the_guard_catches_read_backs():
    with pytest.raises(AssertionError, match="host synchronisation"), NoHostSync([]):
        torch.ones(3).sum().item()
    with pytest.raises(AssertionError, match="host synchronisation"), NoHostSync([]):
        bool(torch.ones(1) > 0)
    buf = torch.zeros(3)
    with pytest.raises(AssertionError, match="host download buffer"), NoHostSync([buf]):
        torch.add(buf, 1)
    with pytest.raises(AssertionError, match="host download buffer"), NoHostSync([buf]):
        buf.copy_(torch.ones(3))  # a blocking copy
    with NoHostSync([buf]):
        buf.copy_(torch.ones(3), non_blocking=True)  # the asynchronous download itself is allowed


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_step_never_waits_and_graphs_replay_the_eager_step():
    """On CUDA: the guard over the real device path (Triton kernels), and captured CUDA graphs against the
    eager step (same results; no capture in the steady state; no allocation in a replayed step)."""
    _no_sync_take("cuda")
    frames = list(_take(12))
    eager = _run(_pipeline(StepOptions(device_io=True), "cuda"), frames)
    pipe = _pipeline(StepOptions(device_io=True, graph=True), "cuda")
    captured = _run(pipe, frames)
    for a, b in zip(eager, captured, strict=True):
        assert a.skipped == b.skipped
        if not a.skipped:
            assert np.abs(a.logits - b.logits).max() <= 1e-4 and np.mean(a.mask == b.mask) >= 0.999
    captures = pipe.graphs.captures
    pipe.reset(None)  # a live stream: the same variants (only the staged pointer distances differ)
    for i, f in enumerate(frames):
        if i == 8:
            torch.cuda.synchronize()
            before = torch.cuda.memory_stats()["allocation.all.allocated"]
        pipe.step(*f)
    assert torch.cuda.memory_stats()["allocation.all.allocated"] == before
    assert pipe.graphs.captures == captures
