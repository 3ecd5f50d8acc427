"""Cost model: floating-point operations per stage per frame, the ideal time at a device's peak rate, and
the fraction of that peak each measured stage reaches.

FLOPs are counted as 2 per multiply-add over the matrix products and convolutions (MatMul, Gemm, Conv,
ConvTranspose; attention's QKᵀ and AV are MatMuls in the exported graphs). Element-wise work (softmax,
norms, activations, RoPE rotations) is left out: it is memory-bound, and its time shows up as the gap
between a stage's ideal and measured time. Three independent counts exist:

* `onnx_flops`: from an exported graph, with static shapes from ONNX shape inference (and, where that
  leaves a shape unknown, from one ONNX Runtime run that exposes the missing tensors);
* `torch_flops`: `torch.utils.flop_counter.FlopCounterMode` over the stage modules (no export needed);
* `analytic_flops`: closed forms for MV-MoE and the memory attention, from the preset alone.

Tests check that they agree; a benchmark uses the ONNX count when it has an engine folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from lmeec.model.config import Preset, get_preset

MATRIX_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
# benchmark section -> stage graph (sections without one run on the host or are memory-bound copies)
SECTION_GRAPHS = {
    "image_encoder": "image_encoder",
    "memory_encoder": "memory_encoder",
    "view_attention": "memory_attention_view",
    "bank_attention": "memory_attention_bank",
    "moe_fusion": "moe_fusion",
    "mask_decoder": "mask_decoder",
}
ATTENTION_LAYERS = 4  # SAM 2.1 memory attention
FFN_DIM = 2048
POINTER_TOKENS = 4  # a 256-d pointer is 4 memory tokens of 64


# --- ONNX -----------------------------------------------------------------------------------------------


def _dims(vi) -> list[int | None] | None:
    """Static dims of a value (None for an unknown dim; None overall when even the rank is unknown)."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def _shapes(model) -> dict[str, list[int | None]]:
    g = model.graph
    shapes = {vi.name: _dims(vi) for vi in (*g.value_info, *g.input, *g.output)}
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _probe_shapes(model, names: list[str]) -> dict[str, list[int]]:
    """Shapes of intermediate tensors from one ONNX Runtime run on random inputs of the declared shapes."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        if "int64" in inp.type:
            feeds[inp.name] = np.zeros(shape, np.int64)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    outs = session.run(names, feeds)
    return {n: list(o.shape) for n, o in zip(names, outs, strict=True)}


def onnx_flops(path: Path | str) -> dict:
    """{"flops": total, "by_op": {op: flops}, "nodes": {op: count}} of one ONNX graph (static shapes)."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes = _shapes(inferred)
    nodes = [n for n in inferred.graph.node if n.op_type in MATRIX_OPS]
    missing = sorted(
        {
            t
            for n in nodes
            for t in (*n.input[:2], n.output[0])
            if t and (shapes.get(t) is None or None in shapes[t])
        }
    )
    if missing:
        shapes.update(_probe_shapes(inferred, missing))
    by_op: dict[str, int] = {}
    counts: dict[str, int] = {}
    for n in nodes:
        flops = _node_flops(n, shapes)
        by_op[n.op_type] = by_op.get(n.op_type, 0) + flops
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return {"flops": int(sum(by_op.values())), "by_op": by_op, "nodes": counts}


def _attr(node, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


def _node_flops(node, shapes: dict[str, list[int]]) -> int:
    op = node.op_type
    a, b = shapes[node.input[0]], shapes[node.input[1]]
    out = shapes[node.output[0]]
    if op == "MatMul":
        k = a[-1] if len(a) > 1 else a[0]
        return 2 * int(np.prod(out, dtype=np.int64)) * k
    if op == "Gemm":
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return 2 * int(np.prod(out, dtype=np.int64)) * k
    if op == "Conv":  # out [N, Cout, *spatial], W [Cout, Cin/group, *kernel]
        return 2 * int(np.prod(out, dtype=np.int64)) * int(np.prod(b[1:], dtype=np.int64))
    if op == "ConvTranspose":  # X [N, Cin, *spatial], W [Cin, Cout/group, *kernel]
        return 2 * int(np.prod(a, dtype=np.int64)) * int(np.prod(b[1:], dtype=np.int64))
    raise ValueError(f"no FLOP rule for {op}")


def engine_flops(engines: Path | str) -> dict[str, int]:
    """FLOPs per call of every graph in an exported engine folder."""
    from lmeec.export.manifest import read_manifest

    engines = Path(engines)
    manifest = read_manifest(engines)
    return {name: onnx_flops(engines / g.file)["flops"] for name, g in manifest.graphs.items()}


# --- torch ----------------------------------------------------------------------------------------------


def torch_flops(model, stages: tuple[str, ...] | None = None) -> dict[str, int]:
    """FLOPs per call of the stage modules, from torch's FlopCounterMode on example inputs."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from lmeec.model.stages import build_stages

    out = {}
    params = list(model.parameters())
    grad_flags = [p.requires_grad for p in params]
    for (
        p
    ) in params:  # the counter's module tracker hooks tensors that require grad (e.g. a returned Parameter)
        p.requires_grad_(False)
    try:
        for name, stage in build_stages(model).items():
            if stages is not None and name not in stages:
                continue
            inputs = stage.example_inputs(torch.Generator().manual_seed(0))
            counter = FlopCounterMode(display=False)
            # the math SDPA kernel decomposes into bmm, which the counter sees on every device
            with torch.no_grad(), counter, sdpa_kernel(SDPBackend.MATH):
                stage(*inputs)
            out[name] = int(counter.get_total_flops())
    finally:
        for p, flag in zip(params, grad_flags):
            p.requires_grad_(flag)
    return out


# --- analytic -------------------------------------------------------------------------------------------


def analytic_moe_flops(preset: str | Preset) -> int:
    """MV-MoE: two channel gates (Linear 2C->C, Linear C->C on pooled features) and two spatial gates
    (3x3 conv 2C->C, 1x1 conv C->1 over g² positions)."""
    p = get_preset(preset)
    c, t = p.d_model, p.tokens
    channel = 2 * (2 * c * c) + 2 * (c * c)
    spatial = 2 * t * (2 * c) * c * 9 + 2 * t * c * 1
    return 2 * channel + 2 * spatial


def analytic_attention_flops(preset: str | Preset, keys: int) -> int:
    """SAM 2.1 memory attention (4 layers) of T query tokens over `keys` memory tokens of 64 channels:
    self-attention (q,k,v,out projections + QKᵀ and AV over T keys), cross-attention (q and out
    projections C->C, k and v projections 64->C over the keys, QKᵀ and AV) and the FFN C->2048->C."""
    p = get_preset(preset)
    t, c, m = p.tokens, p.d_model, p.mem_dim
    self_attn = 4 * (2 * t * c * c) + 2 * (2 * t * t * c)
    cross = 2 * (2 * t * c * c) + 2 * (2 * keys * m * c) + 2 * (2 * t * keys * c)
    ffn = 2 * (2 * t * c * FFN_DIM)
    return ATTENTION_LAYERS * (self_attn + cross + ffn)


def bank_keys(preset: str | Preset) -> int:
    """Memory tokens the bank attention reads (every slot, valid or masked, plus pointer tokens)."""
    p = get_preset(preset)
    return 2 * p.memory.bank_slots * p.tokens + p.memory.pointer_slots * POINTER_TOKENS


def analytic_flops(preset: str | Preset) -> dict[str, int]:
    """The stages with a closed form here (the others are counted from graphs or modules)."""
    p = get_preset(preset)
    return {
        "moe_fusion": analytic_moe_flops(p),
        "memory_attention_view": analytic_attention_flops(p, p.tokens),
        # + the pointers' temporal-position projection (Linear 256 -> 64 per pointer)
        "memory_attention_bank": analytic_attention_flops(p, bank_keys(p))
        + 2 * p.memory.pointer_slots * p.d_model * p.mem_dim,
    }


def check_counts(counted: dict[str, int], preset: str | Preset) -> dict[str, dict]:
    """Counted vs analytic FLOPs for the stages with a closed form: both values and the relative gap."""
    out = {}
    for name, expected in analytic_flops(preset).items():
        if name in counted:
            got = counted[name]
            out[name] = {"counted": got, "analytic": expected, "rel_diff": (got - expected) / expected}
    return out


# --- the table a benchmark reports ----------------------------------------------------------------------


def measure_peak_gflops(device: torch.device, repeats: int = 7) -> tuple[float, str]:
    """This device's FP32 matrix-product rate (square products, TF32 off): the default peak, and how it was got.

    The best of several timed products, so that a busy moment does not lower the peak (and inflate "% of
    peak"); a measured rate keeps the column honest across machines, a datasheet figure can be given instead.
    """
    n = 2048 if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return (
        2 * n**3 / best / 1e9,
        f"measured: best FP32 {n}x{n}x{n} matrix product, {torch.get_num_threads()} threads",
    )


def cost_table(
    preset: str,
    engines: Path | None,
    runs: dict,
    peak_gflops: float | None,
    seed: int = 0,
    peak_note: str = "given (--peak-gflops)",
) -> dict:
    """Per section: GFLOP per frame, ideal ms at `peak_gflops`, and per backend the achieved GFLOP/s
    and fraction of the peak at the measured median (p50)."""
    if engines is not None:
        flops, source = engine_flops(engines), f"onnx graphs in {engines}"
    else:
        from lmeec.model.network import build_model

        flops, source = torch_flops(build_model(preset, seed=seed)), "torch FlopCounterMode"
    sections = {}
    for section, graph in SECTION_GRAPHS.items():
        f = flops.get(graph)
        if f is None:
            continue
        row = {"graph": graph, "gflop": f / 1e9, "backends": {}}
        for name, run in runs.items():
            s = run.summary.get(section)
            if s and s["p50"] > 0:
                row["backends"][name] = {"p50_ms": s["p50"], "achieved_gflops": f / (s["p50"] / 1e3) / 1e9}
        sections[section] = row
    total = sum(r["gflop"] for r in sections.values())
    step = {"gflop": total, "backends": {}}
    for name, run in runs.items():
        s = run.summary.get("step")
        if s and s["p50"] > 0:
            step["backends"][name] = {"p50_ms": s["p50"], "achieved_gflops": total / (s["p50"] / 1e3)}
    rows = [*sections.values(), step]
    best = max((b["achieved_gflops"] for r in rows for b in r["backends"].values()), default=0.0)
    if peak_gflops and best > peak_gflops:  # no stage can beat the machine's peak: the figure was too low
        peak_note += f"; raised to {best:.1f}, the best rate a stage achieved (the figure was below this machine's peak)"
        peak_gflops = best
    for row in rows:
        row["ideal_ms"] = (row["gflop"] / peak_gflops * 1e3) if peak_gflops else None
        for b in row["backends"].values():
            b["fraction_of_peak"] = b["achieved_gflops"] / peak_gflops if peak_gflops else None
    return {
        "source": source,
        "peak_gflops": peak_gflops,
        "peak_note": peak_note,
        "flop_rule": "2 per multiply-add over MatMul/Gemm/Conv/ConvTranspose; element-wise ops not counted",
        "sections": sections,
        "step": step,
        "checks": check_counts(flops, preset),
    }
