"""The FP16 precision policy, stated once and consumed three ways.

Policy (version `POLICY_VERSION`): convolutions and matrix products (ONNX Conv, ConvTranspose, MatMul,
Gemm; torch conv2d, conv_transpose2d, linear, matmul and the two products inside scaled-dot-product
attention) read FP16 inputs and weights and write FP16 outputs, accumulating in FP32 as GPU kernels do.
Everything else stays FP32, and these FP32 islands are named explicitly because anchors that ran them in
FP16 saw broken masks:

- `layernorm`: LayerNorm statistics (LayerNormalization, and sam2's LayerNorm2d as ReduceMean/Pow/Sqrt),
- `softmax`: attention softmax (its inputs, the FP16 scores, are widened before the exponentials),
- `position`: the position-encoding math: Sin/Cos of the pointer distances and the projection that reads
  them (`obj_ptr_tpos_proj`), the prompt encoder's random-Fourier encoding (`sam_prompt_encoder`),
- `logits`: the final mask logits: the hypernetwork product of the mask decoder (an op of
  `sam_mask_decoder` itself, not of its children) and the bilinear upsampling to S×S.

Consumers:
1. `to_fp16_onnx`: an FP16-policy ONNX with explicit Casts around each FP16 node (FP32 I/O, so the
   manifest's tensor specs do not change). ONNX Runtime runs it; TensorRT builds it as a strongly typed
   network, which obeys those types exactly.
2. `classify` gives TensorRT's layer-precision mode the set of ONNX nodes allowed FP16 (all others FP32).
3. `PolicyMode`: the same policy on the torch stage modules, either emulated on any device (values
   rounded to FP16 and back at exactly the points where the ONNX variant casts) or native on CUDA
   (real FP16 kernels). It also records the largest magnitudes that pass through FP16, per stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

POLICY_VERSION = 1
FP16_MAX = 65504.0
FP16_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclass(frozen=True)
class Island:
    """Ops kept in FP32: by ONNX op type, or by the LMEEC submodule (scope) that runs them."""

    name: str
    why: str
    op_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()  # LMEEC submodule names ("a.b"), ONNX node-name scopes "/a/b/..."
    direct_only: bool = False  # only ops run by the scope module itself, not by its children

    def holds_scope(self, scope: str) -> bool:
        """Is an op executed in module `scope` ("" = the stage itself) part of this island?"""
        return any(scope == s or (not self.direct_only and scope.startswith(s + ".")) for s in self.scopes)


ISLANDS: tuple[Island, ...] = (
    Island(
        "layernorm",
        "LayerNorm mean/variance overflow or lose the variance in FP16",
        op_types=("LayerNormalization", "ReduceMean", "Pow", "Sqrt"),
    ),
    Island("softmax", "exp of FP16 scores saturates; sums lose mass", op_types=("Softmax",)),
    Island(
        "position",
        "sine arguments and their projection need FP32 resolution",
        op_types=("Sin", "Cos"),
        scopes=("obj_ptr_tpos_proj", "sam_prompt_encoder"),
    ),
    Island(
        "logits",
        "final logits are thresholded at 0; keep their last product and upsampling exact",
        op_types=("Resize",),
        scopes=("sam_mask_decoder",),
        direct_only=True,
    ),
)


def describe_policy() -> dict:
    """The policy as JSON-ready facts (written into manifests)."""
    return {
        "version": POLICY_VERSION,
        "fp16_ops": list(FP16_OPS),
        "fp32_islands": {
            i.name: {"op_types": list(i.op_types), "scopes": list(i.scopes), "direct_only": i.direct_only}
            for i in ISLANDS
        },
        "other_ops": "fp32",
    }


# --- ONNX -------------------------------------------------------------------------------------------------


def onnx_scope(node_name: str) -> str:
    """'/sam_mask_decoder/transformer/layers.0/MatMul' -> 'sam_mask_decoder.transformer.layers.0'."""
    parts = node_name.strip("/").split("/")[:-1]
    return ".".join(parts)


def island_of(op_type: str, scope: str) -> str | None:
    for island in ISLANDS:
        if op_type in island.op_types or island.holds_scope(scope):
            return island.name
    return None


@dataclass(frozen=True)
class NodePrecision:
    name: str
    op_type: str
    precision: str  # "fp16" | "fp32"
    island: str | None  # why an FP16-capable op (or a named op) stays FP32


def classify(model) -> list[NodePrecision]:
    """Each node of an ONNX model with its precision under the policy (node names must be unique)."""
    out, seen = [], set()
    for node in model.graph.node:
        if not node.name or node.name in seen:
            raise ValueError(f"ONNX node names must be unique and non-empty (got {node.name!r})")
        seen.add(node.name)
        island = island_of(node.op_type, onnx_scope(node.name))
        fp16 = node.op_type in FP16_OPS and island is None
        out.append(NodePrecision(node.name, node.op_type, "fp16" if fp16 else "fp32", island))
    return out


def fp16_node_names(model) -> set[str]:
    return {n.name for n in classify(model) if n.precision == "fp16"}


def to_fp16_onnx(model):
    """FP16-policy copy of an FP32 ONNX model: FP16 nodes get FP16 weights and Casts on their data edges.

    Graph inputs and outputs keep their FP32 types. A Cast back to FP32 that only feeds other FP16 nodes
    is bypassed (no FP32 round trip between two FP16 products).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    fp16 = fp16_node_names(model)
    inits = {t.name: t for t in graph.initializer}
    half_init: dict[str, str] = {}  # fp32 initializer -> its fp16 copy
    half_of: dict[str, str] = {}  # fp32 tensor -> fp16 tensor holding the same values
    new_nodes = []

    def fp16_input(name: str, consumer: str) -> str:
        if not name:
            return name
        if name in inits:
            t = inits[name]
            if t.data_type != TensorProto.FLOAT:
                raise ValueError(f"{consumer}: input {name} is not float32")
            if name not in half_init:
                arr = numpy_helper.to_array(t).astype("float16")
                half_init[name] = f"{name}__fp16"
                graph.initializer.append(numpy_helper.from_array(arr, half_init[name]))
            return half_init[name]
        if name not in half_of:
            half_of[name] = f"{name}__fp16"
            new_nodes.append(
                helper.make_node(
                    "Cast", [name], [half_of[name]], name=f"{name}__to_fp16", to=TensorProto.FLOAT16
                )
            )
        return half_of[name]

    for node in graph.node:
        if node.name in fp16:
            for i, name in enumerate(node.input):
                node.input[i] = fp16_input(name, node.name)
            new_nodes.append(node)
            for i, name in enumerate(node.output):
                half = f"{name}__fp16"
                node.output[i] = half
                half_of[name] = half
                new_nodes.append(
                    helper.make_node("Cast", [half], [name], name=f"{name}__to_fp32", to=TensorProto.FLOAT)
                )
        else:
            new_nodes.append(node)
    # drop fp32 initializers that only FP16 nodes read
    used = {i for n in new_nodes for i in n.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(new_nodes)
    _remove_dead_casts(graph)
    del graph.value_info[:]  # stale for renamed tensors; ONNX Runtime and TensorRT infer them
    helper.set_model_props(
        model,
        {**{p.key: p.value for p in model.metadata_props}, "lmeec_precision_policy": str(POLICY_VERSION)},
    )
    onnx.checker.check_model(model)
    return model


def _remove_dead_casts(graph) -> None:
    """Remove Casts (ours) whose outputs nobody reads, repeatedly."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [
            n
            for n in graph.node
            if n.op_type == "Cast" and n.name.endswith(("__to_fp32", "__to_fp16")) and n.output[0] not in used
        ]
        if not dead:
            return
        for n in dead:
            graph.node.remove(n)


def precision_counts(model) -> dict:
    """Facts for the manifest: FP16 nodes, and FP16-capable ops kept FP32 per island."""
    plan = classify(model)
    kept = {}
    for n in plan:
        if n.op_type in FP16_OPS and n.precision == "fp32":
            kept[n.island] = kept.get(n.island, 0) + 1
    return {"fp16_nodes": sum(n.precision == "fp16" for n in plan), "fp16_ops_kept_fp32": kept}


# --- torch ------------------------------------------------------------------------------------------------


class Fp16Stats:
    """Largest magnitudes that went through FP16 (inputs, weights, outputs of FP16 ops), per stage.

    Kept as device tensors (no host synchronisation per op); `enabled=False` skips the bookkeeping
    entirely (for latency runs).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._max: dict[str, Tensor] = {}
        self._over: dict[str, Tensor] = {}
        self.fp16_calls: dict[str, int] = {}
        self.island_calls: dict[str, int] = {}  # FP16-capable calls kept FP32

    def note(self, stage: str, t: Tensor) -> None:
        if not self.enabled or not t.numel():
            return
        a = t.detach().abs()
        m = a.amax().float()
        over = (~torch.isfinite(a) | (a > FP16_MAX)).sum()
        if stage in self._max:
            self._max[stage] = torch.maximum(self._max[stage], m)
            self._over[stage] = self._over[stage] + over
        else:
            self._max[stage], self._over[stage] = m, over

    def to_json(self) -> dict:
        out = {}
        for s in sorted(set(self._max) | set(self.fp16_calls)):
            m = float(self._max[s]) if s in self._max else 0.0
            out[s] = {
                "max_abs": m,
                "headroom": FP16_MAX / m if m else None,
                "overflow_elements": int(self._over[s]) if s in self._over else 0,
                "fp16_calls": self.fp16_calls.get(s, 0),
                "island_calls": self.island_calls.get(s, 0),
            }
        return out


_LINEAR = {F.linear}
_CONV = {F.conv2d, F.conv_transpose2d, F.conv1d}
_MATMUL = {torch.matmul, Tensor.matmul, Tensor.__matmul__, torch.bmm, torch.mm, Tensor.bmm, Tensor.mm}
_SDPA = {F.scaled_dot_product_attention}
_UNHANDLED = {torch.einsum, torch.addmm, torch.baddbmm, Tensor.addmm, Tensor.baddbmm, F.conv3d, F.bilinear}


class PolicyMode(TorchFunctionMode):
    """Run LMEEC stage modules under the policy.

    `native=False` (any device): FP16 values are emulated in FP32 tensors by rounding to FP16 and back
    (`x.half().float()`) at each FP16 op's inputs, weights and outputs; the product itself accumulates in
    FP32. `native=True` (CUDA): FP16 ops run as real torch.float16 kernels. Islands and every other op
    stay FP32 in both. Scopes come from forward hooks on `model`'s submodules (names relative to LMEEC).
    Use one instance per model; `stage` names the stats bucket.
    """

    def __init__(self, model: nn.Module, native: bool = False, stats: Fp16Stats | None = None) -> None:
        super().__init__()
        self.native = native
        self.stats = stats or Fp16Stats()
        self.stage = "?"
        self._scopes: list[str] = [""]
        self._half_params: dict[int, Tensor] = {}
        self._params = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}
        self._hooks = []
        for qual, module in model.named_modules():
            if qual:
                self._hooks.append(module.register_forward_pre_hook(self._enter(qual)))
                self._hooks.append(module.register_forward_hook(self._leave))

    def _enter(self, qual: str) -> Callable:
        def hook(module, args):
            self._scopes.append(qual)

        return hook

    def _leave(self, module, args, output) -> None:
        self._scopes.pop()

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()

    # --- conversions ---
    def _h(self, t: Tensor | None) -> Tensor | None:
        """A tensor entering an FP16 op: FP16 (native) or FP16-rounded FP32 (emulated); params cached."""
        if t is None or not t.is_floating_point():
            return t
        key = id(t) if id(t) in self._params else None
        if key is not None and key in self._half_params:
            return self._half_params[key]
        self.stats.note(self.stage, t)
        h = t.to(torch.float16)
        h = h if self.native else h.to(t.dtype)
        if key is not None:
            self._half_params[key] = h
        return h

    def _out(self, t: Tensor) -> Tensor:
        """An FP16 op's output back in FP32 for the FP32 ops after it."""
        self.stats.note(self.stage, t)
        return t.float() if self.native else t.to(torch.float16).float()

    def _island(self) -> bool:
        return island_of("", self._scopes[-1]) is not None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _UNHANDLED:
            raise NotImplementedError(
                f"precision policy: {func.__name__} is not covered; add it to PolicyMode"
            )
        fp16 = func in _LINEAR or func in _CONV or func in _MATMUL or func in _SDPA
        if not fp16:
            return func(*args, **kwargs)
        if self._island():
            self.stats.island_calls[self.stage] = self.stats.island_calls.get(self.stage, 0) + 1
            return func(*args, **kwargs)
        self.stats.fp16_calls[self.stage] = self.stats.fp16_calls.get(self.stage, 0) + 1
        if func in _SDPA:
            return self._sdpa(*args, **kwargs)
        args = tuple(self._h(a) if isinstance(a, Tensor) else a for a in args)
        kwargs = {k: self._h(v) if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        return self._out(func(*args, **kwargs))

    def _sdpa(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw) -> Tensor:
        """As exported to ONNX: q·√s and kᵀ·√s in FP32, FP16 product, FP32 mask + softmax, FP16 product."""
        if is_causal or dropout_p or kw.get("enable_gqa"):
            raise NotImplementedError("precision policy: causal/dropout/GQA attention is not covered")
        s = math.sqrt(scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
        scores = self._out(self._h(q * s) @ self._h(k.transpose(-2, -1) * s))
        if attn_mask is not None:
            scores = scores + attn_mask.float()
        probs = torch.softmax(scores, dim=-1)
        return self._out(self._h(probs) @ self._h(v))
