"""TrtBackend on the CPU: the fake TensorRT's Runtime/engine/context and a recording `torch.cuda` stand-in."""

from __future__ import annotations

import pytest
import torch
from conftest import GPU

from lmeec.export.trt import build_trt
from lmeec.runtime.backend import Backend
from lmeec.runtime.backends.trt import ALIGNMENT, TrtBackend
from lmeec.runtime.pipeline import Pipeline


def aligned(shape, dtype=torch.float32, offset_bytes: int = 0) -> torch.Tensor:
    """A CPU tensor whose data starts `offset_bytes` past a 256-byte boundary."""
    n = int(torch.Size(shape).numel())
    item = torch.empty((), dtype=dtype).element_size()
    raw = torch.empty(n + 2 * ALIGNMENT // item, dtype=dtype)
    start = (-raw.data_ptr() % ALIGNMENT + offset_bytes) // item
    return raw[start : start + n].view(shape)


def _buffers(specs, **kw):
    return {s.name: aligned(s.shape, getattr(torch, s.dtype), **kw) for s in specs}


@pytest.fixture
def plans(fake_export, tmp_path, fake_trt):
    """A typed FP16 plan folder whose image encoder input is dynamic in the ONNX (shape -1 in the engine)."""
    fake = fake_trt("10.3.0", dynamic_inputs={"images"})
    build_trt(fake_export, tmp_path / "plans", fp16=True, trt=fake, gpu=GPU, progress=False)
    return tmp_path / "plans", fake


def _open(plans, fake, cuda=None):
    return TrtBackend(plans, device="cpu", trt=fake, cuda=cuda or fake.FakeCuda(), gpu=GPU)


def test_contexts_get_the_manifest_input_shapes(plans):
    folder, fake = plans
    backend = _open(folder, fake)
    assert backend.engines["image_encoder"].get_tensor_shape("images")[0] == -1  # dynamic in the plan
    for name, ctx in backend.contexts.items():
        entry = backend.manifest.graphs[name]
        assert ctx.input_shapes == {s.name: tuple(s.shape) for s in entry.inputs}
        assert ctx.get_tensor_shape("images" if name == "image_encoder" else entry.inputs[0].name) == tuple(
            entry.inputs[0].shape
        )


def test_run_sets_addresses_and_launches_on_the_backend_stream_inside_the_device(plans):
    folder, fake = plans
    cuda = fake.FakeCuda()
    backend = _open(folder, fake, cuda)
    entry = backend.manifest.graphs["mask_decoder"]
    feeds, out_a, out_b = _buffers(entry.inputs), _buffers(entry.outputs), _buffers(entry.outputs)
    run_a, run_b = backend.bind("mask_decoder", feeds, out_a), backend.bind("mask_decoder", feeds, out_b)
    ctx = backend.contexts["mask_decoder"]
    assert ctx.launches == [] and ctx.addresses == {}  # nothing runs at bind time
    run_a()
    assert ctx.addresses["object_score"] == out_a["object_score"].data_ptr()
    run_b()  # the same context re-pointed at the second binding's buffers
    assert ctx.addresses["object_score"] == out_b["object_score"].data_ptr()
    assert ctx.addresses["fused"] == feeds["fused"].data_ptr()
    assert [launch["stream"] for launch in ctx.launches] == [backend.stream.cuda_stream] * 2
    assert [launch["device"] for launch in ctx.launches] == ["cpu", "cpu"]  # inside cuda.device(...)
    assert backend.stream.waits == [0, 0] and cuda.default.waits == [backend.stream.cuda_stream] * 2


def test_unaligned_buffers_are_refused_at_bind(plans):
    folder, fake = plans
    backend = _open(folder, fake)
    entry = backend.manifest.graphs["mask_decoder"]
    outs = _buffers(entry.outputs)
    scores = aligned((2, 1))
    outs["object_score"] = scores[1:2]  # 4 bytes into its buffer, as the pipeline once bound it
    with pytest.raises(ValueError, match=r"mask_decoder.object_score: buffer address is 4 bytes past a 256"):
        backend.bind("mask_decoder", _buffers(entry.inputs), outs)


@pytest.mark.parametrize(
    ("state", "message"),
    [({"no_context": True}, "could not create an execution context"), ({"bad_plan": True}, "cannot load")],
)
def test_unusable_engines_fail_in_one_line(plans, state, message):
    folder, fake = plans
    fake.state.update(state)
    with pytest.raises(RuntimeError, match=message):
        _open(folder, fake)


class _Recorder(Backend):
    """Records what the pipeline binds; runs nothing."""

    name = "recorder"

    def __init__(self, preset) -> None:
        self.preset, self.device, self.bound = preset, torch.device("cpu"), []

    def bind(self, graph, feeds, fetches):
        self.bound += [(graph, name, t) for name, t in {**feeds, **fetches}.items()]
        return lambda: None


def test_pipeline_binds_buffers_at_256_byte_offsets():
    """With CUDA's allocator (blocks start 512-byte aligned) every address the pipeline binds is aligned."""
    from lmeec.model.config import get_preset

    rec = _Recorder(get_preset("test"))
    Pipeline(rec)
    offsets = {(g, n): t.storage_offset() * t.element_size() for g, n, t in rec.bound}
    assert offsets[("mask_decoder", "object_score")] == 0
    assert {k: v for k, v in offsets.items() if v % ALIGNMENT} == {}
