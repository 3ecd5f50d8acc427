"""The GPU step side by side in one process, per preset: the eager FP32 pipeline (host PIL pre-processing)
against device pre/post-processing (lmeec.kernels) with native FP16 and BF16 kernels (torch autocast).

    python benchmarks/gpu_step.py --presets b+,t --device cuda --json OUT.json
    python benchmarks/gpu_step.py --presets test --device cpu --source 96 --target 96x54 --long 20  # logic check

Per variant: p50 ms/frame (frame in -> mask out) at the given frame sizes, mask IoU against the FP32
reference over a 30-frame take (gates: every frame >= 0.98, mean >= 0.99), fresh tensors per steady-state
step, and device memory (allocated; CPU: RSS) over `--long` frames of the fastest variant.
CUDA-graph capture (`--graph`) is not implemented yet, so no captured variant is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from lmeec.model.config import get_preset
from lmeec.model.network import build_model
from lmeec.runtime.alloc import AllocationCounter, rss_mb
from lmeec.runtime.backends.torch import TorchBackend
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.step_options import StepOptions

VARIANTS = {
    "eager-fp32-host": StepOptions(),
    "device-io-fp32": StepOptions(device_io=True),
    "device-io-fp16": StepOptions(device_io=True, precision="fp16"),
    "device-io-bf16": StepOptions(device_io=True, precision="bf16"),
}
IOU_FRAME, IOU_MEAN = 0.98, 0.99


def frames(n: int, source: int, target_hw: tuple[int, int], seed: int = 0):
    """A square moving over fixed noise in both views (the backgrounds are drawn once: large frames)."""
    rng = np.random.default_rng(seed)
    src_bg = rng.integers(0, 90, (source, source, 3), dtype=np.uint8)
    tgt_bg = rng.integers(0, 90, (*target_hw, 3), dtype=np.uint8)
    ks, kt = source / 480, target_hw[1] / 480
    for t in range(n):
        src, tgt = src_bg.copy(), tgt_bg.copy()
        y, x, side = int(ks * (100 + (5 * t) % 200)), int(ks * (80 + (7 * t) % 250)), int(ks * 120)
        src[y : y + side, x : x + side] = (230, 40, 40)
        ty, tx, ts = int(kt * 60), int(kt * (150 + (3 * t) % 200)), int(kt * 40)
        tgt[ty : ty + ts, tx : tx + ts] = (230, 40, 40)
        mask = np.zeros((source, source), bool)
        mask[y : y + side, x : x + side] = True
        yield src, mask, tgt


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def memory_mb(device: torch.device) -> float:
    return torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else (rss_mb() or 0.0)


def make(preset, device: torch.device, options: StepOptions) -> Pipeline:
    backend = TorchBackend(build_model(preset, seed=0, device=device))
    return Pipeline(backend, **options.apply(backend))


def run_preset(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    preset = get_preset(name)
    target_hw = tuple(int(v) for v in args.target.split("x"))[::-1]
    variants = {k: v for k, v in VARIANTS.items() if not (device.type == "cpu" and v.precision == "fp16")}
    out: dict = {"preset": name, "variants": {}}
    pipes = {k: make(preset, device, v) for k, v in variants.items()}
    take = list(frames(args.iou_frames, args.source, target_hw))
    for p in pipes.values():
        p.reset(len(take))
    ref_masks = []
    for k, p in pipes.items():  # IoU against the FP32 reference, one take
        masks = [p.step(*f).mask for f in take]
        if k == "eager-fp32-host":
            ref_masks = masks
        ious = [iou(a, b) for a, b in zip(ref_masks, masks)]
        out["variants"][k] = {
            "iou_min": min(ious),
            "iou_mean": float(np.mean(ious)),
            "iou_pass": min(ious) >= IOU_FRAME and float(np.mean(ious)) >= IOU_MEAN,
        }
    timed = list(frames(8, args.source, target_hw, seed=1))
    for k, p in pipes.items():  # latency (steady state: the take above filled the banks)
        p.reset(None)
        ms = []
        for i in range(args.warmup + args.timed):
            f = timed[i % len(timed)]
            t0 = time.perf_counter()
            p.step(*f)  # returns after the one synchronisation: frame in -> mask out
            if i >= args.warmup:
                ms.append((time.perf_counter() - t0) * 1e3)
        counter = AllocationCounter()
        with counter:
            for f in timed[:4]:
                p.step(*f)
        out["variants"][k].update(p50_ms=float(np.median(ms)), fresh_tensors_per_step=len(counter.fresh) / 4)
    eager = out["variants"]["eager-fp32-host"]["p50_ms"]
    for v in out["variants"].values():
        v["speedup_vs_eager"] = eager / v["p50_ms"]
    fastest = min(out["variants"], key=lambda k: out["variants"][k]["p50_ms"])
    p = pipes[fastest]
    p.reset(None)
    mem = []
    for i in range(args.long):
        p.step(*timed[i % len(timed)])
        mem.append(memory_mb(device))
    after = mem[min(len(mem) - 1, args.warmup) :]
    out["memory"] = {
        "variant": fastest,
        "frames": args.long,
        "first_mb": after[0],
        "last_mb": after[-1],
        "max_mb": max(after),
        "flat": max(after) - after[0] <= (0.0 if device.type == "cuda" else 8.0),
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="b+,t")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--source", type=int, default=1408, help="source (ego) frame side")
    ap.add_argument("--target", default="3840x2160", help="target (exo) frame WxH")
    ap.add_argument("--iou-frames", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--timed", type=int, default=50)
    ap.add_argument("--long", type=int, default=2000, help="frames of the memory run")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    results = [run_preset(n, args, device) for n in args.presets.split(",")]
    ok = True
    for r in results:
        print(f"\n{r['preset']}: {args.source}² source, {args.target} target, {device}")
        print(
            f"{'variant':18s} {'p50 ms':>8s} {'x eager':>8s} {'IoU min':>8s} {'IoU mean':>9s} {'gate':>5s} {'new/step':>9s}"
        )
        for k, v in r["variants"].items():
            print(
                f"{k:18s} {v['p50_ms']:8.2f} {v['speedup_vs_eager']:8.2f} {v['iou_min']:8.4f} "
                f"{v['iou_mean']:9.4f} {'ok' if v['iou_pass'] else 'FAIL':>5s} {v['fresh_tensors_per_step']:9.1f}"
            )
            ok &= v["iou_pass"]
        m = r["memory"]
        print(
            f"memory over {m['frames']} frames ({m['variant']}): {m['first_mb']:.1f} -> {m['last_mb']:.1f} MiB "
            f"(max {m['max_mb']:.1f}) {'flat' if m['flat'] else 'GROWS'}"
        )
        ok &= m["flat"]
    if args.json:
        with open(args.json, "w") as fp:
            json.dump(results, fp, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
