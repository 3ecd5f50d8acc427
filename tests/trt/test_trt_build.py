"""`lmeec build trt` logic against a recording fake of the TensorRT 10 API (TensorRT itself is absent here)."""

from __future__ import annotations

import importlib.util
import json

import fake_tensorrt
import pytest
from conftest import GPU

from lmeec.export.manifest import check_manifest, read_manifest
from lmeec.export.trt import build_trt, check_plan_compat


def _build(fake, src, out, **kw):
    return build_trt(src, out, trt=fake, gpu=GPU, progress=False, **kw)


def test_typed_fp16_builds_strongly_typed_policy_onnx(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    m = _build(fake, fake_export, tmp_path / "plans", fp16=True, mode="typed", workspace_mb=512)
    builds = fake.state["builds"]
    assert len(builds) == 6
    for b in builds:
        assert b["network"].flags == 1  # STRONGLY_TYPED
        assert fake.BuilderFlag.FP16 not in b["config"].flags  # types come from the ONNX, not flags
        assert b["config"].pool[fake.MemoryPoolType.WORKSPACE] == 512 << 20
        assert b["config"].profiles == []  # all inputs static
    parsed = fake.state["parsed"][0]
    casts = [n.name for n in parsed.graph.node if n.op_type == "Cast"]
    assert any(c.endswith("__to_fp16") for c in casts)
    fp16_mm = next(n for n in parsed.graph.node if n.name == "/image_encoder/trunk/blocks.0/mlp/MatMul")
    assert all(i.endswith("__fp16") for i in fp16_mm.input)
    island = next(n for n in parsed.graph.node if n.name == "/sam_mask_decoder/MatMul")
    assert not any(i.endswith("__fp16") for i in island.input)
    # manifest facts and a folder the runtime accepts
    out = read_manifest(tmp_path / "plans")
    assert out.tensorrt["version"] == "10.3.0" and out.tensorrt["gpu"] == GPU["gpu"]
    assert out.tensorrt["compute_capability"] == "8.7" and out.tensorrt["precision"] == "fp16"
    assert out.tensorrt["policy"]["fp32_islands"]["logits"]["scopes"] == ["sam_mask_decoder"]
    assert out.graphs["mask_decoder"].file == "mask_decoder.plan"
    assert out.graphs["mask_decoder"].extra["fp16_ops_kept_fp32"] == {"logits": 1}
    check_manifest(tmp_path / "plans", out, "test")
    assert (tmp_path / "plans" / "onnx" / "manifest.json").is_file()
    assert m.graphs.keys() == out.graphs.keys()


def test_layers_mode_pins_everything_but_policy_fp16_nodes(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    _build(fake, fake_export, tmp_path / "plans", fp16=True, mode="layers")
    b = fake.state["builds"][0]
    assert b["network"].flags == 0
    assert {fake.BuilderFlag.FP16, fake.BuilderFlag.OBEY_PRECISION_CONSTRAINTS} <= b["config"].flags
    layers = {layer.name: layer for layer in b["network"].layers}
    assert layers["/image_encoder/trunk/blocks.0/mlp/MatMul"].precision is None  # free: FP16
    for name in ("/sam_mask_decoder/MatMul", "/memory_attention/layers.0/self_attn/Softmax", "/Sin"):
        assert layers[name].precision == fake.float32
        assert layers[name].output_types == {0: fake.float32}


def test_fp32_build_disables_tf32(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    m = _build(fake, fake_export, tmp_path / "plans", fp16=False)
    b = fake.state["builds"][0]
    assert fake.BuilderFlag.TF32 not in b["config"].flags and fake.BuilderFlag.FP16 not in b["config"].flags
    assert m.tensorrt["precision"] == "fp32" and all(layer.precision is None for layer in b["network"].layers)


def test_dynamic_inputs_get_manifest_profile_and_wrong_shapes_fail(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    fake.state["dynamic_inputs"] = {"images", "feats"}
    _build(fake, fake_export, tmp_path / "plans", fp16=True)
    first = fake.state["builds"][0]["config"].profiles
    assert first[0].shapes == {"images": ((2, 3, 128, 128),) * 3}
    fake = fake_tensorrt.make()
    fake.state["wrong_shape"] = {"images"}
    with pytest.raises(ValueError, match="images is .* in the ONNX but"):
        _build(fake, fake_export, tmp_path / "plans2", fp16=True)
    assert not (tmp_path / "plans2").exists()


def test_timing_cache_is_reused_and_saved(fake_export, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    fake = fake_tensorrt.make()
    _build(fake, fake_export, tmp_path / "plans", fp16=True, timing_cache=cache)
    ins = fake.state["cache_in"]
    assert ins[0] == b"old" and ins[1] == b"old+"  # each graph starts from the previous graph's cache
    assert cache.read_bytes() == b"old" + b"+" * 6


def test_failed_build_leaves_no_folder(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    fake.state["fail_on"] = "bank"
    with pytest.raises(RuntimeError, match="failed to build"):
        _build(fake, fake_export, tmp_path / "plans", fp16=True)
    assert not (tmp_path / "plans").exists()


def test_bad_arguments(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    with pytest.raises(ValueError, match="precision mode"):
        _build(fake, fake_export, tmp_path / "p", mode="fast")
    with pytest.raises(ValueError, match="workspace"):
        _build(fake, fake_export, tmp_path / "p", workspace_mb=0)
    with pytest.raises(FileNotFoundError):
        _build(fake, tmp_path / "nowhere", tmp_path / "p")
    _build(fake, fake_export, tmp_path / "plans")
    with pytest.raises(ValueError, match="holds TensorRT plans"):
        _build(fake, tmp_path / "plans", tmp_path / "p")


def test_plan_from_other_tensorrt_or_gpu_is_refused_with_rebuild_hint(fake_export, tmp_path):
    fake = fake_tensorrt.make()
    m = _build(fake, fake_export, tmp_path / "plans", fp16=True)
    check_plan_compat(m, "10.3.0", GPU, tmp_path / "plans")  # same: fine
    with pytest.raises(RuntimeError, match=r"built with TensorRT 10.3.0 .* has TensorRT 10.7.0 .*rebuild"):
        check_plan_compat(m, "10.7.0", GPU, tmp_path / "plans")
    other = {"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    with pytest.raises(
        RuntimeError, match=r"sm 8.7.*sm 9.0.*lmeec build trt --onnx .*onnx --out NEW_DIR --fp16"
    ):
        check_plan_compat(m, "10.3.0", other, tmp_path / "plans")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_cli_without_tensorrt_fails_in_one_line(fake_export, tmp_path, capsys):
    from lmeec.cli import main

    assert main(["build", "trt", "--onnx", str(fake_export), "--out", str(tmp_path / "p"), "--fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmeec build: error: TensorRT is not installed") and "\n" not in err
    assert not (tmp_path / "p").exists()


def test_cli_onnx_fp16_folder(fake_export, tmp_path, capsys):
    from lmeec.cli import main

    assert main(["build", "onnx-fp16", "--onnx", str(fake_export), "--out", str(tmp_path / "f16")]) == 0
    m = read_manifest(tmp_path / "f16")
    check_manifest(tmp_path / "f16", m, "test")
    assert m.graphs["mask_decoder"].extra["precision"] == "fp16"
    assert json.loads((tmp_path / "f16" / "manifest.json").read_text())["graphs"]["moe_fusion"]["inputs"]
