"""The FP16 policy on real exported stages: which nodes it marks, the FP16 ONNX in ONNX Runtime CPU, and
agreement between the ONNX variant and the torch emulation (the two consumers of one statement)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from lmeec.export.precision import (
    FP16_OPS,
    PolicyMode,
    classify,
    island_of,
    onnx_scope,
    to_fp16_onnx,
)


@pytest.fixture(scope="module")
def decoder(test_model, tmp_path_factory):
    from lmeec.export.onnx import export_stage
    from lmeec.model.stages import build_stages

    stage = build_stages(test_model)["mask_decoder"]
    path = tmp_path_factory.mktemp("onnx") / "mask_decoder.onnx"
    export_stage(stage, path)
    return stage, onnx.load(str(path))


def test_policy_marks_exactly_the_intended_nodes(decoder):
    _, model = decoder
    plan = {n.name: n for n in classify(model)}
    kept = [n for n in plan.values() if n.op_type in FP16_OPS and n.precision == "fp32"]
    assert [(n.name, n.island) for n in kept] == [("/sam_mask_decoder/MatMul", "logits")]
    for n in plan.values():
        if n.op_type in ("Softmax", "LayerNormalization", "Resize"):
            assert n.precision == "fp32" and n.island is not None
        if n.precision == "fp16":
            assert n.op_type in FP16_OPS
    assert island_of("Gemm", onnx_scope("/obj_ptr_tpos_proj/Gemm")) == "position"
    assert island_of("MatMul", onnx_scope("/sam_mask_decoder/transformer/layers.0/self_attn/MatMul")) is None


def test_fp16_onnx_runs_in_onnxruntime_and_matches_the_emulation(decoder, test_model):
    import onnxruntime as ort

    stage, model = decoder
    half = to_fp16_onnx(model)
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [1, 1, 1]  # FP32 I/O kept
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in half.graph.initializer)
    inputs = stage.example_inputs(torch.Generator().manual_seed(1))
    feed = {s.name: x.numpy() for s, x in zip(stage.inputs(), inputs)}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    got = ort.InferenceSession(half.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, feed
    )
    mode = PolicyMode(test_model)
    try:
        with torch.no_grad():
            ref = stage(*inputs)
            mode.stage = "mask_decoder"
            with mode:
                emu = stage(*inputs)
    finally:
        mode.remove()
    for spec, g, r, e in zip(stage.outputs(), got, ref, emu):
        scale = max(1.0, float(r.abs().max()))
        assert np.abs(g - r.numpy()).max() / scale < 5e-3, spec.name  # FP16 vs FP32: small
        assert np.abs(g - e.numpy()).max() / scale < 5e-3, spec.name  # ONNX variant ≈ emulation
    assert (emu[1] - ref[1]).abs().max() > 0  # the emulation really rounds
    stats = mode.stats.to_json()["mask_decoder"]
    assert stats["island_calls"] >= 1 and stats["fp16_calls"] > 10 and stats["overflow_elements"] == 0


def test_emulation_refuses_uncovered_products(test_model):
    mode = PolicyMode(test_model)
    try:
        with mode, pytest.raises(NotImplementedError, match="einsum"):
            torch.einsum("ij,jk->ik", torch.ones(2, 2), torch.ones(2, 2))
    finally:
        mode.remove()


def test_overflow_is_counted():
    from lmeec.export.precision import Fp16Stats

    s = Fp16Stats()
    s.note("x", torch.tensor([1.0, 70000.0, -3.0]))
    assert s.to_json()["x"]["overflow_elements"] == 1 and s.to_json()["x"]["max_abs"] == 70000.0
