"""Validate the FP16 policy without TensorRT: a whole take through the pipeline in FP32 and under the policy.

    python -m lmeec.bench.precision --preset test --frames 30 [--device cuda --native] [--json F]

Both runs use the torch stage modules with the same seeded weights; the FP16 run wraps every stage in
`PolicyMode` (emulated: FP16 rounding in FP32 tensors, any device; native: real FP16 kernels, CUDA).
Each run keeps its own memory bank, so errors compound over the take as they would on a GPU.

Per frame: IoU of the product mask (logits > 0) against FP32, IoU of a half-area mask (both thresholded
at the FP32 logits' median, so the comparison is not trivial when the product mask is empty or full),
the fraction of logits whose sign flips, the largest |logit difference|. Gates: every frame ≥ 0.98 and
mean ≥ 0.99, on both IoUs. Also the largest magnitudes that passed through FP16, per stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from lmeec.export.precision import FP16_MAX, Fp16Stats, PolicyMode
from lmeec.model.network import LMEEC, build_model
from lmeec.runtime.backend import Runner
from lmeec.runtime.backends.torch import TorchBackend
from lmeec.runtime.pipeline import Pipeline

GATE_MIN, GATE_MEAN = 0.98, 0.99


class PolicyBackend(TorchBackend):
    """The torch backend with every stage run under the FP16 policy."""

    name = "torch-fp16-policy"

    def __init__(self, model: LMEEC, native: bool = False) -> None:
        super().__init__(model)
        if native and self.device.type != "cuda":
            raise ValueError("native FP16 needs a CUDA device; use the emulation on the CPU")
        self.mode = PolicyMode(model, native=native)

    def bind(self, graph: str, feeds: dict, fetches: dict) -> Runner:
        run = super().bind(graph, feeds, fetches)
        mode = self.mode

        def policy_run() -> None:
            mode.stage = graph
            with mode:
                run()

        return policy_run

    def describe(self) -> dict:
        return {**super().describe(), "precision": "fp16-native" if self.mode.native else "fp16-emulated"}


def synthetic_take(frames: int, seed: int = 0, src_hw=(180, 240), tgt_hw=(135, 240)):
    """Frames with texture and a moving object (its source mask given), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : max(src_hw[0], tgt_hw[0]), 0 : max(src_hw[1], tgt_hw[1])]
    for t in range(frames):
        src = rng.integers(0, 70, (*src_hw, 3), dtype=np.uint8)
        tgt = rng.integers(0, 70, (*tgt_hw, 3), dtype=np.uint8)
        cy, cx = src_hw[0] * (0.35 + 0.01 * (t % 15)), src_hw[1] * (0.3 + 0.015 * t % 0.4)
        r = min(src_hw) * 0.2
        disk = (yy[: src_hw[0], : src_hw[1]] - cy) ** 2 + (xx[: src_hw[0], : src_hw[1]] - cx) ** 2 < r * r
        src[disk] = (210, 60 + 3 * t % 40, 40)
        ty, tx = tgt_hw[0] * 0.4, tgt_hw[1] * (0.35 + 0.01 * (t % 20))
        tdisk = (yy[: tgt_hw[0], : tgt_hw[1]] - ty) ** 2 + (xx[: tgt_hw[0], : tgt_hw[1]] - tx) ** 2 < (
            0.6 * r
        ) ** 2
        tgt[tdisk] = (210, 60 + 3 * t % 40, 40)
        yield src, disk, tgt


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@dataclass
class FrameReport:
    frame: int
    iou_mask: float
    iou_half: float
    area_fp32: float
    sign_flips: float
    max_logit_diff: float
    object_score_fp32: float
    object_score_fp16: float
    ms_fp32: float
    ms_fp16: float


def _timed_step(pipe: Pipeline, *frame) -> tuple[object, float]:
    """One step and its latency: CUDA events on a GPU (the step ends with a synchronisation), else wall."""
    dev = pipe.backend.device
    pipe.backend.synchronize()
    if dev.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        r = pipe.step(*frame)
        end.record()
        end.synchronize()
        return r, start.elapsed_time(end)
    t0 = time.perf_counter()
    r = pipe.step(*frame)
    return r, 1e3 * (time.perf_counter() - t0)


def latency(preset: str, frames: int, seed: int, device: str, native: bool, warmup: int = 3) -> dict:
    """Median step latency in FP32 and under the policy, with no activation bookkeeping."""
    dev = torch.device(device)
    model = build_model(preset, seed=seed, device=dev)
    out = {}
    for label, backend in (("fp32", TorchBackend(model)), ("fp16_policy", PolicyBackend(model, native))):
        if isinstance(backend, PolicyBackend):
            backend.mode.stats = Fp16Stats(enabled=False)
        pipe = Pipeline(backend)
        take = list(synthetic_take(warmup + frames, seed))
        pipe.reset(len(take))
        times = [_timed_step(pipe, *f)[1] for f in take]
        steady = times[warmup:]
        out[label] = {
            "median_ms": float(np.median(steady)),
            "min_ms": float(np.min(steady)),
            "frames": len(steady),
        }
        if isinstance(backend, PolicyBackend):
            backend.mode.remove()
    return out


def validate(
    preset: str,
    frames: int = 30,
    seed: int = 0,
    device: str = "cpu",
    native: bool = False,
    warmup: int = 0,
    progress: bool = False,
) -> dict:
    """Run one synthetic take in FP32 and under the policy; return the per-frame report and gates."""
    dev = torch.device(device)
    model = build_model(preset, seed=seed, device=dev)
    fp32 = Pipeline(TorchBackend(model))
    policy_backend = PolicyBackend(model, native=native)
    fp16 = Pipeline(policy_backend)
    take = list(synthetic_take(frames + warmup, seed))
    for _ in range(warmup):  # GPU warm-up for timings only: not scored, both pipelines reset afterwards
        fp32.reset(len(take))
        fp16.reset(len(take))
        for f in take[:3]:
            fp32.step(*f)
            fp16.step(*f)
    policy_backend.mode.stats = Fp16Stats()
    take = take[warmup:]
    fp32.reset(len(take))
    fp16.reset(len(take))
    rows = []
    for t, frame in enumerate(take):
        a, ms32 = _timed_step(fp32, *frame)
        b, ms16 = _timed_step(fp16, *frame)
        med = float(np.median(a.logits))
        rows.append(
            FrameReport(
                t,
                iou(a.mask_model, b.mask_model),
                iou(a.logits > med, b.logits > med),
                float(a.mask_model.mean()),
                float(np.mean((a.logits > 0) != (b.logits > 0))),
                float(np.abs(a.logits - b.logits).max()),
                float(a.object_score),
                float(b.object_score),
                ms32,
                ms16,
            )
        )
        if progress:
            r = rows[-1]
            print(
                f"frame {t:3d}  IoU {r.iou_mask:.4f}  half-area IoU {r.iou_half:.4f}  area {r.area_fp32:.3f}"
                f"  flips {r.sign_flips:.2e}  max|dlogit| {r.max_logit_diff:.3g}"
                f"  {r.ms_fp32:.0f}/{r.ms_fp16:.0f} ms",
                file=sys.stderr,
            )
    return summarize(preset, device, native, rows, policy_backend.mode.stats)


def summarize(preset: str, device: str, native: bool, rows: list[FrameReport], stats: Fp16Stats) -> dict:
    gates = {}
    for key in ("iou_mask", "iou_half"):
        vals = [getattr(r, key) for r in rows]
        gates[key] = {
            "min": min(vals),
            "mean": float(np.mean(vals)),
            "pass": min(vals) >= GATE_MIN and float(np.mean(vals)) >= GATE_MEAN,
        }
    skip = min(3, len(rows) - 1)  # first steps include lazy initialisation
    return {
        "preset": preset,
        "device": device,
        "fp16": "native" if native else "emulated",
        "frames": len(rows),
        "gates": gates,
        "pass": all(g["pass"] for g in gates.values()),
        "sign_flips_mean": float(np.mean([r.sign_flips for r in rows])),
        "sign_flips_max": max(r.sign_flips for r in rows),
        "max_logit_diff": max(r.max_logit_diff for r in rows),
        "mask_area_fp32_mean": float(np.mean([r.area_fp32 for r in rows])),
        "object_present_frames": sum(r.object_score_fp32 > 0 for r in rows),
        "activations": stats.to_json(),
        "fp16_range": FP16_MAX,
        "latency_ms": {
            "fp32_median": float(np.median([r.ms_fp32 for r in rows[skip:]])),
            "fp16_median": float(np.median([r.ms_fp16 for r in rows[skip:]])),
        },
        "per_frame": [r.__dict__ for r in rows],
    }


def format_report(rep: dict) -> str:
    lines = [
        f"preset {rep['preset']} on {rep['device']}, FP16 policy {rep['fp16']}, {rep['frames']} frames "
        f"(FP32 mask area {rep['mask_area_fp32_mean']:.3f}, object present in {rep['object_present_frames']})"
    ]
    for key, label in (("iou_mask", "mask IoU (logits > 0)"), ("iou_half", "half-area IoU")):
        g = rep["gates"][key]
        lines.append(
            f"  {label:<24} min {g['min']:.4f} (gate ≥ {GATE_MIN})  mean {g['mean']:.4f} (gate ≥ {GATE_MEAN})"
            f"  {'PASS' if g['pass'] else 'FAIL'}"
        )
    lines.append(
        f"  sign flips: mean {rep['sign_flips_mean']:.2e}, worst frame {rep['sign_flips_max']:.2e};"
        f" max |logit diff| {rep['max_logit_diff']:.4g}"
    )
    lines.append(f"  largest |value| through FP16 per stage (FP16 max {FP16_MAX:.0f}):")
    for stage, a in rep["activations"].items():
        lines.append(
            f"    {stage:<22} {a['max_abs']:>10.4g}  overflowed {a['overflow_elements']}"
            f"  fp16 calls {a['fp16_calls']}, kept fp32 {a['island_calls']}"
        )
    lat = rep["latency_ms"]
    lines.append(f"  step latency median: fp32 {lat['fp32_median']:.1f} ms, fp16 {lat['fp16_median']:.1f} ms")
    lines.append(f"  RESULT {'PASS' if rep['pass'] else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="test")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--native", action="store_true", help="real FP16 kernels (CUDA only)")
    ap.add_argument("--warmup", type=int, default=0, help="unscored warm-up rounds (timings)")
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error("--frames must be ≥ 1")
    rep = validate(
        args.preset, args.frames, args.seed, args.device, args.native, args.warmup, progress=not args.quiet
    )
    print(format_report(rep))
    if args.json:
        from lmeec.files import atomic_write_json

        atomic_write_json(args.json, rep, indent=1)
    return 0 if rep["pass"] else 1


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("LMEEC_THREADS", "2")))
    sys.exit(main())
