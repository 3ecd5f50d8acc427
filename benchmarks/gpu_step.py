"""The GPU step side by side in one process, per preset: the eager FP32 pipeline (host PIL pre-processing,
the reference) against the captured FP16 and BF16 pipelines (device pre/post-processing by lmeec.kernels,
native half-precision kernels, one CUDA graph per step variant).

    python benchmarks/gpu_step.py --presets b+,t --json OUT.json              # on a CUDA machine
    python benchmarks/gpu_step.py --smoke                                      # logic check on a CPU

Per variant: p50 ms/frame (frame in -> mask out) at the given frame sizes, first-frame time (captures, and
compilation with --compile), mask IoU against the FP32 reference over a 30-frame take (gates: every frame
>= 0.98, mean >= 0.99), allocations per steady-state step (torch.cuda.memory_stats; gate 0 for captured
variants) and captures made in the steady state (gate 0). Then device memory over --long frames of the
FP16 graph (gate: flat) and the glue kernels timed alone against host PIL. A check that raises is printed
with its traceback and recorded, and the script goes on to the next; the exit status is 1 if any check
raised or any gate failed (--smoke: only if a check raised; its tiny sizes and random weights gate nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lmeec.kernels.resample import FrameResize, MaskResize
from lmeec.kernels.upsample import LogitsToMask
from lmeec.model.config import get_preset
from lmeec.model.network import build_model
from lmeec.model.preprocess import resize_rgb8
from lmeec.runtime.backends.torch import TorchBackend
from lmeec.runtime.pipeline import Pipeline
from lmeec.runtime.step_options import StepOptions

IOU_FRAME, IOU_MEAN = 0.98, 0.99
REFERENCE = "eager-fp32-host"
SMOKE = dict(presets="test", device="cpu", source=96, target="128x72", iou_frames=9, distinct=4, warmup=9)
SMOKE.update(timed=2, alloc_steps=2, long=10, reps=2)


def variants(device: torch.device, compile_too: bool) -> dict[str, StepOptions]:
    out = {REFERENCE: StepOptions()}
    halves = ("fp16", "bf16") if device.type == "cuda" else ("bf16",)  # fp16 kernels need CUDA
    for half in halves:
        out[f"graph-{half}-device"] = StepOptions(device_io=True, precision=half, graph=True)
    if compile_too:
        out[f"compiled-graph-{halves[0]}-device"] = StepOptions(
            device_io=True, precision=halves[0], graph=True, compile=True
        )
    return out


class Take:
    """A red square moving over fixed noise in both views (backgrounds drawn once: the frames are large)."""

    def __init__(self, source: int, target_hw: tuple[int, int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.src_bg = rng.integers(0, 90, (source, source, 3), dtype=np.uint8)
        self.tgt_bg = rng.integers(0, 90, (*target_hw, 3), dtype=np.uint8)
        self.source, self.target_hw = source, target_hw

    def frame(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ks, kt = self.source / 480, self.target_hw[1] / 480
        src, tgt = self.src_bg.copy(), self.tgt_bg.copy()
        y, x, side = int(ks * (100 + (5 * t) % 200)), int(ks * (80 + (7 * t) % 250)), int(ks * 120)
        src[y : y + side, x : x + side] = (230, 40, 40)
        ty, tx, ts = int(kt * 60), int(kt * (150 + (3 * t) % 200)), max(1, int(kt * 40))
        tgt[ty : ty + ts, tx : tx + ts] = (230, 40, 40)
        mask = np.zeros((self.source, self.source), bool)
        mask[y : y + side, x : x + side] = True
        return src, mask, tgt


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def allocations(device: torch.device) -> int:
    return torch.cuda.memory_stats(device)["allocation.all.allocated"] if device.type == "cuda" else 0


def memory_mb(device: torch.device) -> float:
    return torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else 0.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn: Callable[[], object], device: torch.device, reps: int) -> float:
    """Median wall time of `fn` in ms, synchronised around each call."""
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run_variant(preset, options: StepOptions, device, take: list, timing: list, args) -> tuple[dict, list]:
    """One pipeline: the IoU take (masks returned), latency, steady-state allocations and captures."""
    backend = TorchBackend(build_model(preset, seed=0, device=device))
    pipe = Pipeline(backend, options=options)
    pipe.reset(len(take))
    t0 = time.perf_counter()
    masks = [pipe.step(*take[0]).mask]
    out: dict = {"first_step_s": time.perf_counter() - t0}
    masks += [pipe.step(*f).mask for f in take[1:]]
    pipe.reset(None)  # a live stream: every variant of the take again, then the steady state
    for i in range(args.warmup):
        pipe.step(*timing[i % len(timing)])
    captures = pipe.graphs.captures if pipe.graphs else 0
    ms = []
    for i in range(args.timed):
        t0 = time.perf_counter()
        pipe.step(*timing[i % len(timing)])  # returns after the step's one synchronisation
        ms.append((time.perf_counter() - t0) * 1e3)
    sync(device)
    before, steps = allocations(device), args.alloc_steps
    for i in range(steps):
        pipe.step(*timing[i % len(timing)])
    out.update(
        p50_ms=float(np.median(ms)),
        allocations_per_step=(allocations(device) - before) / steps,
        steady_captures=(pipe.graphs.captures - captures) if pipe.graphs else 0,
        captures=pipe.graphs.captures if pipe.graphs else 0,
        describe=backend.describe(),
    )
    return out, masks


def long_run(preset, options: StepOptions, device, timing: list, frames: int) -> dict:
    """Device memory after each of `frames` steps of one live stream (after 20 frames of warm-up)."""
    pipe = Pipeline(TorchBackend(build_model(preset, seed=0, device=device)), options=options)
    pipe.reset(None)
    mem = []
    for i in range(frames):
        pipe.step(*timing[i % len(timing)])
        mem.append(memory_mb(device))
    after = mem[min(20, len(mem) - 1) :]
    return {
        "frames": frames,
        "first_mb": after[0],
        "last_mb": after[-1],
        "max_mb": max(after),
        "flat": max(after) == after[0] == min(after),
        "captures": pipe.graphs.captures if pipe.graphs else 0,
    }


def kernel_times(preset, device, take: list, reps: int) -> dict:
    """The glue kernels alone (lmeec.kernels on the device) against host PIL, ms each."""
    s, (src, mask, tgt) = preset.image_size, take[0]
    out = {}
    out["host_pil_source_ms"] = timed_ms(lambda: resize_rgb8(src, s), torch.device("cpu"), reps)
    out["host_pil_target_ms"] = timed_ms(lambda: resize_rgb8(tgt, s), torch.device("cpu"), reps)
    images = torch.empty(2, 3, s, s, device=device)
    for name, frame, i in (("source", src, 0), ("target", tgt, 1)):
        resize = FrameResize(frame.shape[:2], s, device)
        on_device = torch.from_numpy(frame).to(device)
        out[f"device_{name}_resize_ms"] = timed_ms(
            lambda r=resize, f=on_device, i=i: r.normalized(f, images[i]), device, reps
        )
        out["impl"] = resize.impl
    mask_resize = MaskResize(mask.shape, s, device)
    mask_dev = torch.from_numpy(mask.astype(np.uint8)).to(device)
    mask_out = torch.empty(s, s, device=device)
    out["device_mask_resize_ms"] = timed_ms(lambda: mask_resize(mask_dev, mask_out), device, reps)
    to_mask = LogitsToMask(preset.low_res, tgt.shape[:2], device)
    logits = torch.randn(preset.low_res, preset.low_res, device=device)
    packed = torch.empty(to_mask.out_shape(pack=True), dtype=torch.uint8, device=device)
    host = torch.empty(packed.shape, dtype=torch.uint8, pin_memory=device.type == "cuda")

    def mask_out_and_back() -> None:
        to_mask(logits, packed, pack=True)
        host.copy_(packed, non_blocking=True)

    out["device_logits_to_mask_and_copy_back_ms"] = timed_ms(mask_out_and_back, device, reps)
    return out


def run_preset(name: str, args, device: torch.device, report: dict) -> None:
    preset = get_preset(name)
    target_hw = tuple(int(v) for v in args.target.split("x"))[::-1]
    source = Take(args.source, target_hw)
    take = [source.frame(t) for t in range(args.iou_frames)]
    timing = take[: args.distinct]
    rep = report.setdefault(name, {"variants": {}})

    def check(what: str, fn: Callable[[], dict]) -> dict | None:
        print(f"  {name}: {what} …", flush=True)
        try:
            return fn()
        except Exception as err:  # loud, recorded, and on to the next check
            traceback.print_exc()
            print(f"FAILED {name}: {what}: {err!r}", flush=True)
            report["errors"].append(f"{name}: {what}: {err!r}")
            return None

    reference = None
    for vname, options in variants(device, args.compile).items():
        got = check(vname, lambda o=options: run_variant(preset, o, device, take, timing, args))
        if got is None:
            continue
        res, masks = got
        if vname == REFERENCE:
            reference = masks
        elif reference is not None:
            ious = [iou(a, b) for a, b in zip(reference, masks, strict=True)]
            res.update(iou_min=min(ious), iou_mean=float(np.mean(ious)))
            res["iou_pass"] = res["iou_min"] >= IOU_FRAME and res["iou_mean"] >= IOU_MEAN
        if options.graph and device.type == "cuda":
            res["alloc_pass"] = res["allocations_per_step"] == 0 and res["steady_captures"] == 0
        rep["variants"][vname] = res
    eager = rep["variants"].get(REFERENCE, {}).get("p50_ms")
    for res in rep["variants"].values():
        res["speedup_vs_eager"] = eager / res["p50_ms"] if eager else None
    fastest = next((k for k in rep["variants"] if k.startswith("graph-")), None)
    if fastest and args.long:
        rep["memory"] = check(
            f"memory over {args.long} frames ({fastest})",
            lambda: long_run(preset, variants(device, False)[fastest], device, timing, args.long),
        )
        if rep["memory"]:
            rep["memory"]["variant"] = fastest
    rep["kernels"] = check("glue kernels vs host PIL", lambda: kernel_times(preset, device, take, args.reps))
    print_preset(name, rep, args)


def print_preset(name: str, rep: dict, args) -> None:
    print(f"\n{name}: {args.source}² source, {args.target} target")
    print(
        f"{'variant':28s} {'p50 ms':>8s} {'x eager':>8s} {'first s':>8s} {'IoU min':>8s} {'IoU mean':>9s}"
        f" {'allocs/step':>11s} {'captures':>8s} {'gates':>6s}"
    )
    for k, v in rep["variants"].items():
        gates = [v[g] for g in ("iou_pass", "alloc_pass") if g in v]
        iou_min, iou_mean = v.get("iou_min"), v.get("iou_mean")
        print(
            f"{k:28s} {v['p50_ms']:8.2f} {v['speedup_vs_eager'] or 0:8.2f} {v['first_step_s']:8.2f} "
            f"{'' if iou_min is None else f'{iou_min:.4f}':>8s} {'' if iou_mean is None else f'{iou_mean:.4f}':>9s} "
            f"{v['allocations_per_step']:11.1f} {v['captures']:8d} {('ok' if all(gates) else 'FAIL') if gates else '':>6s}"
        )
    m = rep.get("memory")
    if m:
        print(
            f"memory over {m['frames']} frames ({m['variant']}): {m['first_mb']:.1f} -> {m['last_mb']:.1f} MiB "
            f"(max {m['max_mb']:.1f}, {m['captures']} captures) {'flat' if m['flat'] else 'GROWS'}"
        )
    kt = rep.get("kernels")
    if kt:
        times = ", ".join(f"{k} {v:.2f}" for k, v in kt.items() if k != "impl")
        print(f"glue kernels ({kt['impl']}), ms: {times}")


def gates_failed(report: dict, device: torch.device) -> list[str]:
    failed = []
    for name, rep in report.items():
        if name in ("errors", "setup"):
            continue
        for k, v in rep["variants"].items():
            failed += [f"{name} {k} {g}" for g in ("iou_pass", "alloc_pass") if v.get(g) is False]
        if device.type == "cuda" and rep.get("memory") and not rep["memory"]["flat"]:
            failed.append(f"{name} memory not flat")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="b+,t")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--source", type=int, default=1408, help="source (ego) frame side")
    ap.add_argument("--target", default="3840x2160", help="target (exo) frame WxH")
    ap.add_argument("--iou-frames", type=int, default=30)
    ap.add_argument("--distinct", type=int, default=8, help="distinct frames cycled in the timed runs")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--timed", type=int, default=50)
    ap.add_argument("--alloc-steps", type=int, default=20, help="steady-state steps counted for allocations")
    ap.add_argument("--long", type=int, default=2000, help="frames of the memory run (0: skip)")
    ap.add_argument("--reps", type=int, default=20, help="repetitions of each glue-kernel timing")
    ap.add_argument("--compile", action="store_true", help="also a torch.compile'd captured variant (slow)")
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes, the test preset, the CPU: a logic check"
    )
    ap.add_argument("--json", help="write the report here")
    if "--smoke" in (sys.argv[1:] if argv is None else argv):  # defaults only: options given still apply
        ap.set_defaults(**SMOKE)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":  # the FP32 reference really FP32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    report: dict = {"errors": [], "setup": {"device": str(device), "args": vars(args)}}
    if device.type == "cuda":
        report["setup"]["gpu"] = torch.cuda.get_device_name(device)
    report["setup"]["torch"] = torch.__version__
    for name in args.presets.split(","):
        run_preset(name, args, device, report)
    failed = gates_failed(report, device)
    if args.json:
        Path(args.json).write_text(json.dumps({**report, "gates_failed": failed}, indent=1, default=str))
    for line in report["errors"]:
        print(f"ERROR {line}")
    for line in failed:
        print(f"GATE FAILED {line}")
    if report["errors"] or (failed and not args.smoke):
        return 1
    print("all checks ran" + ("" if args.smoke else ", all gates passed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
