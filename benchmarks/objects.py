"""Several objects: one batched pass per take vs K separate passes (the research code's way), per stage.

    python benchmarks/objects.py --preset test --frames 20 [--objects 1,2,4,8] [--backend ort] [--device cuda]

For each K, the same take of N frames (synthetic ego-exo frames, the source mask shifted per object) is run
as one pass with K objects (the image encoder once per frame pair, later stages batched) and as K
single-object passes; both interleaved `--repeats` times, the median per-take time kept. Also reported: a
K = 1 pass on the largest profile's graphs (7 padded objects), the cost the fixed-maximum-K alternative
would pay. Writes the table and a JSON beside it (--out).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lmeec.bench.inputs import default_cache, ensure_engines, synth_frames
from lmeec.bench.runner import object_masks
from lmeec.bench.timers import make_timer
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import STAGE_SECTIONS, Pipeline

GROUPS = {  # report columns: stage sections summed per column
    "pre": ("preprocess",),
    "image_enc": ("image_encoder",),
    "mem_enc": ("memory_encoder",),
    "bank_upd": ("bank_update",),
    "attention": ("view_attention", "bank_attention"),
    "moe": ("moe_fusion",),
    "decoder": ("mask_decoder",),
    "post": ("postprocess",),
}


def run_pass(pipeline: Pipeline, timer, frames: list, masks: list) -> tuple[float, dict[str, float]]:
    """One pass over the take: wall seconds and per-stage seconds (masks[t] is H×W or [K, H, W])."""
    objects = 1 if masks[0].ndim == 2 else masks[0].shape[0]
    pipeline.reset(num_frames=len(frames), num_objects=objects)
    stages = dict.fromkeys(STAGE_SECTIONS, 0.0)
    t0 = time.perf_counter()
    for (src, _, tgt), mask in zip(frames, masks):
        timer.start_step()
        pipeline.step(src, mask, tgt)
        for name, ms in timer.finish_step().items():
            stages[name] += ms / 1e3
    pipeline.backend.synchronize()
    return time.perf_counter() - t0, stages


def grouped(stages: dict[str, float], frames: int) -> dict[str, float]:
    """ms per frame per report column."""
    return {g: 1e3 * sum(stages.get(s, 0.0) for s in names) / frames for g, names in GROUPS.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="test")
    ap.add_argument("--engines", help="exported folder with --max-objects >= max K (default: cached export)")
    ap.add_argument("--backend", default="ort", choices=["ort", "torch", "trt"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--objects", default="1,2,4,8", help="K values (default 1,2,4,8)")
    ap.add_argument("--frames", type=int, default=20, help="frames per take (default 20)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats, median kept (default 2)")
    ap.add_argument("--threads", type=int, help="intra-op threads (default: the libraries')")
    ap.add_argument("--out", help="JSON results file")
    args = ap.parse_args()
    ks = sorted({int(k) for k in args.objects.split(",")})
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    cache = default_cache()
    engines = args.engines
    if engines is None and args.backend != "torch":
        engines, _ = ensure_engines(args.preset, 0, cache, print, objects=max(ks))
    backend = open_backend(
        args.backend,
        engines=engines,
        preset=args.preset if engines is None else None,
        seed=0 if engines is None else None,
        device=device,
        threads=args.threads,
    )
    source = synth_frames(cache)
    frames = [source[i] for i in range(args.frames)]
    timer = make_timer(device)
    batched, single = Pipeline(backend, timer.section), Pipeline(backend, timer.section)
    run_pass(single, timer, frames[:3], [m for _, m, _ in frames[:3]])  # warm both up (first-size buffers)
    run_pass(batched, timer, frames[:3], [object_masks(m, max(ks)) for _, m, _ in frames[:3]])

    cpu = _cpu_model()
    print(f"preset {args.preset}, backend {args.backend} on {device} ({cpu}), {args.frames} frames per take")
    print(f"engines: {engines or 'torch stages, seed 0'}; torch threads {torch.get_num_threads()}")
    cols = list(GROUPS)
    head = f"{'K':>2} {'mode':<9} {'s/take':>8} {'speed-up':>8} | " + " ".join(f"{c:>9}" for c in cols)
    print("per-stage columns: ms per frame (all objects of the pass)")
    print(head)
    print("-" * len(head))
    rows = []
    for k in ks:
        masks = [object_masks(m, k) for _, m, _ in frames]
        times = {"batched": [], "separate": []}
        stages = {"batched": [], "separate": []}
        for _ in range(args.repeats):
            wall, st = run_pass(batched, timer, frames, masks)
            times["batched"].append(wall)
            stages["batched"].append(st)
            wall, st = 0.0, dict.fromkeys(STAGE_SECTIONS, 0.0)
            for obj in range(k):
                w, s = run_pass(single, timer, frames, [m[obj] for m in masks])
                wall += w
                st = {n: st[n] + s[n] for n in st}
            times["separate"].append(wall)
            stages["separate"].append(st)
        med = {mode: float(np.median(v)) for mode, v in times.items()}
        speedup = med["separate"] / med["batched"]
        row = {"objects": k, "seconds_per_take": med, "speedup": speedup, "ms_per_frame": {}}
        for mode in ("batched", "separate"):
            i = int(np.argsort(times[mode])[len(times[mode]) // 2])
            per = grouped(stages[mode][i], args.frames)
            row["ms_per_frame"][mode] = per
            sp = f"{speedup:8.2f}x" if mode == "batched" else " " * 9
            print(f"{k:>2} {mode:<9} {med[mode]:8.3f} {sp}| " + " ".join(f"{per[c]:9.2f}" for c in cols))
        rows.append(row)

    # the fixed-maximum-K alternative: one object on the largest profile's graphs (others padded)
    kmax = max(ks)
    padded = [np.concatenate([m[None], np.zeros((kmax - 1, *m.shape), bool)]) for _, m, _ in frames]
    plain = [m for _, m, _ in frames]
    t_pad = float(np.median([run_pass(batched, timer, frames, padded)[0] for _ in range(args.repeats)]))
    t_one = float(np.median([run_pass(single, timer, frames, plain)[0] for _ in range(args.repeats)]))
    print(
        f"K=1 on the K={kmax} graphs (fixed maximum, {kmax - 1} padded objects): {t_pad:.3f} s/take vs "
        f"{t_one:.3f} s on the K=1 graphs ({t_pad / t_one:.2f}x)"
    )
    doc = {
        "preset": args.preset,
        "backend": args.backend,
        "device": str(device),
        "cpu": cpu,
        "frames": args.frames,
        "repeats": args.repeats,
        "rows": rows,
        "k1_on_max_profile": {"max_objects": kmax, "seconds_per_take": t_pad, "k1_graphs_seconds": t_one},
        "python": platform.python_version(),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2))
        print(f"wrote {args.out}")
    return 0


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


if __name__ == "__main__":
    sys.exit(main())
