"""`lmeec build trt` through polygraphy's loaders, against a faithful recording fake of TensorRT 10 and 11."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import FP16_MATMUL, GPU, SIBLING

from lmeec.export.manifest import check_manifest, read_manifest
from lmeec.export.trt import build_trt, check_plan_compat, import_tensorrt


def _build(fake, src, out, **kw):
    return build_trt(src, out, trt=fake, gpu=GPU, progress=False, **kw)


@pytest.mark.parametrize("version", ["10.3.0", "11.4.0.106"])
def test_typed_fp16_builds_strongly_typed_policy_onnx(fake_export, tmp_path, fake_trt, version):
    fake = fake_trt(version)
    m = _build(fake, fake_export, tmp_path / "plans", fp16=True, mode="typed", workspace_mb=512)
    builds = fake.state["builds"]
    assert len(builds) == 6
    for b in builds:
        assert b["network"].flags == 2  # 1 << STRONGLY_TYPED (= 1)
        assert b["config"].flags.isdisjoint(
            {getattr(fake.BuilderFlag, "FP16", None), fake.BuilderFlag.TF32}
        )  # TF32 off for the FP32 islands
        assert b["config"].pool[fake.MemoryPoolType.WORKSPACE] == 512 << 20
    (profile,) = builds[0]["config"].profiles  # one static profile: every input at the manifest shape
    assert profile.shapes == {"images": ((2, 3, 128, 128),) * 3}
    parsed = fake.state["parsed"][0]
    casts = [n.name for n in parsed.graph.node if n.op_type == "Cast"]
    assert any(c.endswith("__to_fp16") for c in casts)
    fp16_mm = next(n for n in parsed.graph.node if n.name == FP16_MATMUL)
    assert all(i.endswith("__fp16") for i in fp16_mm.input)
    island = next(n for n in parsed.graph.node if n.name == "/sam_mask_decoder/MatMul")
    assert not any(i.endswith("__fp16") for i in island.input)
    layers = {layer.name: layer for layer in builds[0]["network"].layers}
    assert layers[FP16_MATMUL].get_output(0).dtype == fake.float16  # the type comes from the ONNX
    # manifest facts and a folder the runtime accepts
    out = read_manifest(tmp_path / "plans")
    assert out.tensorrt["version"] == version and out.tensorrt["gpu"] == GPU["gpu"]
    assert out.tensorrt["compute_capability"] == "8.7" and out.tensorrt["precision"] == "fp16"
    assert out.tensorrt["policy"]["fp32_islands"]["logits"]["scopes"] == ["sam_mask_decoder"]
    assert out.graphs["mask_decoder"].file == "mask_decoder.plan"
    assert out.graphs["mask_decoder"].extra["fp16_ops_kept_fp32"] == {"logits": 1}
    assert out.graphs["mask_decoder"].extra["fp32_pinned_layers"] == 0
    check_manifest(tmp_path / "plans", out, "test")
    assert (tmp_path / "plans" / "onnx" / "manifest.json").is_file()
    assert m.graphs.keys() == out.graphs.keys()


def test_plans_keep_the_exports_source_mask_encoding(fake_export, tmp_path, fake_trt):
    doc = json.loads((fake_export / "manifest.json").read_text())
    (fake_export / "manifest.json").write_text(json.dumps(doc | {"source_mask": "sam2"}))
    _build(fake_trt("10.3.0"), fake_export, tmp_path / "plans", fp16=False)
    assert read_manifest(tmp_path / "plans").source_mask == "sam2"


def test_layers_mode_pins_float_layers_by_onnx_node(fake_export, tmp_path, fake_trt):
    fake = fake_trt("10.3.0")
    m = _build(fake, fake_export, tmp_path / "plans", fp16=True, mode="layers")
    b = fake.state["builds"][0]
    assert b["network"].flags == 0
    flags = b["config"].flags
    assert {fake.BuilderFlag.FP16, fake.BuilderFlag.OBEY_PRECISION_CONSTRAINTS} <= flags
    assert fake.BuilderFlag.TF32 not in flags
    layers = {layer.name: layer for layer in b["network"].layers}
    assert not layers[FP16_MATMUL].precision_is_set  # the policy's FP16 node stays free
    # the sibling named FP16_MATMUL + "_1", the island, the parser's helper for the FP16 MatMul: FP32
    for name in (SIBLING, "/sam_mask_decoder/MatMul", "/Sin", "/Cast", "/Mul", "node_of_1"):
        assert layers[name].precision_is_set and layers[name].precision == fake.float32, name
        assert layers[name].output_types == {0: fake.float32}, name
    greater = layers["/Greater"]  # BOOL output: pinning it to FLOAT would fail the build under OBEY
    assert greater.get_output(0).dtype == fake.bool and not greater.precision_is_set
    assert greater.output_types == {}
    assert not layers["ONNXTRT_ShapeShuffle"].precision_is_set  # shuffles carry their input's type
    assert fake.state["errors"] == []
    extra = m.graphs["image_encoder"].extra
    # sibling, island, Sin, Cast, Mul, one Identity per output; helpers of both MatMuls
    assert extra["fp32_pinned_layers"] == 5 + len(m.graphs["image_encoder"].outputs) + 2
    assert extra["fp32_pinned_helper_layers"] == 2


def test_layers_mode_is_refused_on_tensorrt_11(fake_export, tmp_path, fake_trt):
    fake = fake_trt("11.4.0.106")
    assert not hasattr(fake.BuilderFlag, "FP16") and not hasattr(
        fake.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS"
    )
    with pytest.raises(ValueError, match=r"--mode layers needs TensorRT 10 .*use --mode typed"):
        _build(fake, fake_export, tmp_path / "plans", fp16=True, mode="layers")
    assert not (tmp_path / "plans").exists() and fake.state["builds"] == []
    _build(fake, fake_export, tmp_path / "fp32", fp16=False, mode="layers")  # FP32: no layer API needed


def test_fp32_build_disables_tf32(fake_export, tmp_path, fake_trt):
    fake = fake_trt()
    m = _build(fake, fake_export, tmp_path / "plans", fp16=False)
    b = fake.state["builds"][0]
    assert fake.BuilderFlag.TF32 not in b["config"].flags and fake.BuilderFlag.FP16 not in b["config"].flags
    assert b["network"].flags == 2  # strongly typed: the FP32 ONNX's types, on TensorRT 10 and 11
    assert m.tensorrt["precision"] == "fp32"
    assert not any(layer.precision_is_set for layer in b["network"].layers)


def test_dynamic_inputs_get_manifest_profile_and_wrong_shapes_fail(fake_export, tmp_path, fake_trt):
    fake = fake_trt(dynamic_inputs={"images", "feats"})
    m = _build(fake, fake_export, tmp_path / "plans", fp16=True)
    first = fake.state["builds"][0]["config"].profiles
    assert first[0].shapes == {"images": ((2, 3, 128, 128),) * 3}
    assert m.graphs["image_encoder"].extra["profile_inputs"] == ["images"]
    fake = fake_trt(wrong_shape={"images"})
    with pytest.raises(ValueError, match="images is .* in the ONNX but"):
        _build(fake, fake_export, tmp_path / "plans2", fp16=True)
    assert not (tmp_path / "plans2").exists()


def test_timing_cache_is_reused_and_saved(fake_export, tmp_path, fake_trt):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    fake = fake_trt()
    _build(fake, fake_export, tmp_path / "plans", fp16=True, timing_cache=cache)
    loaded = [c for c in fake.state["cache_in"] if c]  # polygraphy creates an empty one first
    assert loaded[:2] == [b"old", b"old+"]  # each graph starts from the previous graph's cache
    assert cache.read_bytes() == b"old" + b"+" * 6


def test_timing_cache_from_another_gpu_is_refused(fake_export, tmp_path, fake_trt):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"other gpu")
    fake = fake_trt(cache_mismatch=True)
    with pytest.raises(ValueError, match=r"timing.cache was written by another TensorRT or GPU"):
        _build(fake, fake_export, tmp_path / "plans", fp16=True, timing_cache=cache)
    assert not (tmp_path / "plans").exists() and cache.read_bytes() == b"other gpu"


def test_missing_timing_cache_result_keeps_the_file(fake_export, tmp_path, fake_trt):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    fake = fake_trt(no_cache_out=True)
    _build(fake, fake_export, tmp_path / "plans", fp16=True, timing_cache=cache)
    assert cache.read_bytes() == b"old" and (tmp_path / "plans" / "manifest.json").is_file()


def test_failed_build_leaves_no_folder(fake_export, tmp_path, fake_trt):
    fake = fake_trt(fail_on="bank")
    with pytest.raises(RuntimeError, match="failed to build"):
        _build(fake, fake_export, tmp_path / "plans", fp16=True)
    assert not (tmp_path / "plans").exists()


@pytest.mark.parametrize(
    ("version", "ok"), [("9.2.0", False), ("10.3.0", True), ("11.4.0.106", True), ("12.0.0", False)]
)
def test_supported_tensorrt_majors(fake_trt, version, ok):
    fake_trt(version)
    if ok:
        assert import_tensorrt().__version__ == version
    else:
        with pytest.raises(RuntimeError, match=r"lmeec supports TensorRT 10 and 11"):
            import_tensorrt()


def test_bad_arguments(fake_export, tmp_path, fake_trt):
    fake = fake_trt()
    with pytest.raises(ValueError, match="precision mode"):
        _build(fake, fake_export, tmp_path / "p", mode="fast")
    with pytest.raises(ValueError, match="workspace"):
        _build(fake, fake_export, tmp_path / "p", workspace_mb=0)
    with pytest.raises(FileNotFoundError):
        _build(fake, tmp_path / "nowhere", tmp_path / "p")
    _build(fake, fake_export, tmp_path / "plans")
    with pytest.raises(ValueError, match="holds TensorRT plans"):
        _build(fake, tmp_path / "plans", tmp_path / "p")


def test_plan_from_other_tensorrt_or_gpu_is_refused_with_rebuild_hint(fake_export, tmp_path, fake_trt):
    fake = fake_trt()
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

    doc = json.loads((fake_export / "manifest.json").read_text())
    (fake_export / "manifest.json").write_text(json.dumps(doc | {"source_mask": "sam2"}))
    assert main(["build", "onnx-fp16", "--onnx", str(fake_export), "--out", str(tmp_path / "f16")]) == 0
    m = read_manifest(tmp_path / "f16")
    check_manifest(tmp_path / "f16", m, "test")
    assert m.source_mask == "sam2"  # the export's source-mask encoding survives the rebuild
    assert m.graphs["mask_decoder"].extra["precision"] == "fp16"
    assert json.loads((tmp_path / "f16" / "manifest.json").read_text())["graphs"]["moe_fusion"]["inputs"]
