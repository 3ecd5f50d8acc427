"""Checks that need a GPU, TensorRT or onnxruntime-gpu; they skip here with the reason (pytest -rs)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none visible)")
needs_trt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="needs TensorRT 10 (not installed: pip install lmeec[trt])",
)


@pytest.mark.cuda
@needs_cuda
def test_native_fp16_policy_gates_on_cuda():
    from lmeec.bench.precision import validate

    rep = validate("test", frames=5, device="cuda", native=True)
    assert rep["pass"], rep["gates"]


@pytest.mark.cuda
@pytest.mark.tensorrt
@needs_cuda
@needs_trt
def test_trt_build_and_check_end_to_end(tmp_path, test_model):
    from lmeec.cli.check import add_parser  # noqa: F401  (import check)
    from lmeec.export.onnx import export_onnx
    from lmeec.export.trt import build_trt
    from lmeec.runtime.backends.trt import TrtBackend

    export_onnx(test_model, tmp_path / "onnx", None, seed=0, progress=False)
    build_trt(tmp_path / "onnx", tmp_path / "plans", fp16=True, progress=False)
    backend = TrtBackend(tmp_path / "plans", device="cuda")
    assert backend.describe()["precision"] == "fp16"
    from lmeec.cli import main

    assert main(["check", "--engines", str(tmp_path / "plans"), "--backend", "trt", "--frames", "5"]) == 0


@pytest.mark.cuda
@needs_cuda
def test_ort_cuda_provider_options():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu (CUDAExecutionProvider absent)")
    from lmeec.runtime.backends.ort import tensorrt_provider_options

    assert tensorrt_provider_options(0, fp16=True)["trt_fp16_enable"] is True


def test_provider_options_and_cpu_refusal(tmp_path):
    from lmeec.runtime.backends.ort import cuda_provider_options, tensorrt_provider_options

    opts = tensorrt_provider_options(1, fp16=True, cache_dir=tmp_path / "c", workspace_mb=256)
    assert opts["trt_engine_cache_enable"] and opts["trt_engine_cache_path"] == str(tmp_path / "c")
    assert opts["trt_max_workspace_size"] == 256 << 20 and opts["device_id"] == 1
    with pytest.raises(ValueError, match="EXHAUSTIVE"):
        cuda_provider_options(0, "fastest")


def test_ort_gpu_providers_run_on_a_real_stream_with_cuda_behind_tensorrt():
    from lmeec.runtime.backends.ort import provider_list

    got = provider_list(["tensorrt"], 1, 1234, {"tensorrt": {"trt_fp16_enable": True}})
    assert [p for p, _ in got] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    trt_opts, cuda_opts, cpu_opts = (o for _, o in got)
    assert trt_opts["user_compute_stream"] == cuda_opts["user_compute_stream"] == "1234"
    assert trt_opts["device_id"] == cuda_opts["device_id"] == 1 and trt_opts["trt_fp16_enable"] is True
    assert cpu_opts == {}
    assert provider_list(["cpu"], 0, None) == [("CPUExecutionProvider", {})]
    assert [p for p, _ in provider_list(["cuda", "tensorrt"], 0, 7)][:2] == [
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
    ]  # an explicit order is kept


@pytest.mark.cuda
@needs_cuda
def test_ort_backend_stream_is_not_the_default_stream(test_engines):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu (CUDAExecutionProvider absent)")
    from lmeec.runtime.backends.ort import OrtBackend

    backend = OrtBackend(test_engines, device=torch.device("cuda"))
    handle = backend.stream.cuda_stream
    assert handle != 0 and dict(backend.providers)["CUDAExecutionProvider"]["user_compute_stream"] == str(
        handle
    )


def test_ort_gpu_providers_need_a_cuda_device(fake_export):
    from lmeec.runtime.backends.ort import OrtBackend

    with pytest.raises(ValueError, match="CUDA device"):
        OrtBackend(fake_export, device=torch.device("cpu"), providers=["tensorrt"])


def test_trt_backend_without_tensorrt_is_one_clear_error(fake_export):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    from lmeec.runtime.backend import open_backend

    with pytest.raises(RuntimeError, match="TensorRT is not installed"):
        open_backend("trt", engines=fake_export, device="cuda")
