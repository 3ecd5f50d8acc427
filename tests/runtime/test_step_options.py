"""Step options: native BF16 on the torch backend under the FP16 policy, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lmeec.model.network import build_model
from lmeec.runtime.backends.torch import TorchBackend, fp32_islands
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.step_options import StepOptions
from tests.conftest import synthetic_pair

aten = torch.ops.aten
# as the Python dispatch mode sees them under inference mode (composite ops, not yet decomposed)
PRODUCTS = {aten.linear, aten.mm, aten.addmm, aten.bmm, aten.conv2d, aten.scaled_dot_product_attention}
FP32_OPS = {aten.layer_norm, aten.native_layer_norm, aten.softmax, aten._softmax, aten.upsample_bilinear2d}


class DtypeLog(TorchDispatchMode):
    """Input dtypes of the matrix products and of the ops the policy keeps in FP32."""

    def __init__(self) -> None:
        super().__init__()
        self.products: set[torch.dtype] = set()
        self.fp32_ops: dict[str, set[torch.dtype]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in PRODUCTS:
            self.products.add(args[0].dtype)
        if func.overloadpacket in FP32_OPS:
            self.fp32_ops.setdefault(func.overloadpacket.__name__, set()).add(args[0].dtype)
        return func(*args, **(kwargs or {}))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_bf16_runs_native_kernels_under_the_fp32_policy():
    torch.set_num_threads(1)
    frames = [synthetic_pair(np.random.default_rng(t), t) for t in range(10)]
    fp32 = Pipeline(TorchBackend(build_model("test", seed=0)))
    backend = TorchBackend(build_model("test", seed=0))
    bf16 = Pipeline(backend, options=StepOptions(precision="bf16"))
    norms = [m for m in fp32_islands(backend.model) if "LayerNorm" in type(m).__name__]
    norm_outputs: set[torch.dtype] = set()  # FP32 out of a BF16 input: the statistics ran in FP32
    for m in norms:
        m.register_forward_hook(lambda _m, _args, out: norm_outputs.add(out.dtype))
    for p in (fp32, bf16):
        p.reset(len(frames))
    log, ious, worst = DtypeLog(), [], 0.0
    for f in frames:
        a = fp32.step(*f)
        with log:
            b = bf16.step(*f)
        assert b.logits.dtype == np.float32 and b.low_res_logits.dtype == np.float32
        ious.append(_iou(a.mask_model, b.mask_model))
        worst = max(worst, float(np.abs(a.logits - b.logits).max()))
    print(
        f"bf16 vs fp32 (test preset, 10 frames): mask IoU min {min(ious):.4f} mean {np.mean(ious):.4f}, "
        f"max |logit diff| {worst:.3f}"
    )
    assert torch.bfloat16 in log.products  # real BF16 kernels ran
    assert norm_outputs == {torch.float32} and len(norms) >= 4  # LayerNorm statistics in FP32
    assert log.fp32_ops["layer_norm"] == {torch.float32}
    for op in ("native_layer_norm", "softmax", "_softmax"):  # softmax otherwise runs inside attention
        assert log.fp32_ops.get(op, {torch.float32}) == {torch.float32}
    assert log.fp32_ops["upsample_bilinear2d"] == {torch.float32}  # the final logits' upsampling
    assert worst > 0  # reduced precision changed something
    assert min(ious) >= 0.95 and np.mean(ious) >= 0.97  # measured: min 0.977, mean 0.984
    assert backend.describe()["precision"] == "bf16"


@pytest.mark.parametrize(
    ("options", "backend", "device", "message"),
    [
        (StepOptions(graph=True), "torch", "cpu", "--graph needs a CUDA device"),
        (StepOptions(precision="fp16"), "torch", "cpu", "--precision fp16 needs a CUDA device"),
        (StepOptions(precision="bf16"), "ort", "cpu", "--precision bf16 apply to --backend torch, not ort"),
        (StepOptions(graph=True, compile=True), "trt", "cuda", "--compile apply to --backend torch, not trt"),
        (
            StepOptions(graph=True),
            "ort",
            "cuda",
            "--graph captures CUDA launches: --backend torch or trt, not ort",
        ),
    ],
)
def test_impossible_combinations_are_refused_in_one_line(options, backend, device, message):
    with pytest.raises(ValueError, match=message) as err:
        options.check(backend, device)
    assert "\n" not in str(err.value)


def test_fp16_on_a_cpu_backend_is_refused():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Pipeline(TorchBackend(build_model("test", seed=0)), options=StepOptions(precision="fp16"))


def test_a_pipeline_refuses_torch_options_on_another_backend(test_engines):
    from lmeec.runtime.backend import open_backend

    with pytest.raises(ValueError, match="--backend torch or trt, not ort"):
        Pipeline(open_backend("ort", engines=test_engines), options=StepOptions(graph=True))
    with pytest.raises(ValueError, match="apply to --backend torch, not ort"):
        Pipeline(open_backend("ort", engines=test_engines), options=StepOptions(precision="bf16"))
    StepOptions(graph=True).check("trt", "cuda")  # TensorRT plans are CUDA launches: replayed in the graph
