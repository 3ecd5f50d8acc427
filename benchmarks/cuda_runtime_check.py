"""Runtime checks on a CUDA device: glue allocations, flat device memory, parity with the CPU reference.

    python benchmarks/cuda_runtime_check.py --preset t --frames 200 [--device cuda] [--json OUT.json]

1. Glue only (a backend whose graphs are no-ops): steady-state steps must create no tensors on the device.
2. The torch backend over `--frames` frames: allocated device memory after each step must be constant
   after warm-up; reserved (cached) memory must not grow; step latency from CUDA events.
3. Parity: the first 12 frames on the device against the CPU reference tracker (TF32 off).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from frames import moving_square

from lmeec import Correspondence
from lmeec.model.config import get_preset
from lmeec.model.network import build_model
from lmeec.runtime.alloc import AllocationCounter
from lmeec.runtime.backend import Backend
from lmeec.runtime.backends.torch import TorchBackend
from lmeec.runtime.pipeline import Pipeline

WARMUP = 20


class GlueOnly(Backend):
    """Binds every graph to a no-op: what is left of a step is the runtime's own work."""

    name = "glue-only"

    def __init__(self, preset, device) -> None:
        self.preset, self.device = preset, device

    def bind(self, graph, feeds, fetches):
        return lambda: None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="t")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    preset = get_preset(args.preset)
    report: dict = {"preset": preset.name, "device": torch.cuda.get_device_name(device) if cuda else "cpu"}
    ok = True

    glue = Pipeline(GlueOnly(preset, device))
    counter = AllocationCounter()
    for t, (src, mask, tgt) in enumerate(moving_square(40)):
        if t >= WARMUP:
            with counter:
                glue.step(src, mask, tgt)
        else:
            glue.step(src, mask, tgt)
    report["glue_allocations_after_warmup"] = len(counter.fresh)
    ok &= not counter.fresh
    print(f"[1] glue-only steps {WARMUP + 1}-40: {len(counter.fresh)} tensor allocations {counter.fresh[:5]}")

    pipeline = Pipeline(TorchBackend(build_model(preset, seed=0, device=device)))
    pipeline.reset()
    allocated, latencies = [], []
    for src, mask, tgt in moving_square(args.frames):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        pipeline.step(src, mask, tgt)
        if cuda:
            end.record()
            torch.cuda.synchronize()
            latencies.append(start.elapsed_time(end))
            allocated.append(torch.cuda.memory_allocated(device))
        else:
            latencies.append(1e3 * (time.perf_counter() - t0))
    if cuda:
        steady = allocated[WARMUP:]
        report["allocated_bytes_min_max_after_warmup"] = [min(steady), max(steady)]
        report["max_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
        ok &= max(steady) == min(steady)
        print(
            f"[2] allocated after each step, frames {WARMUP + 1}-{args.frames}: min {min(steady)} max {max(steady)}"
            f" bytes; peak reserved {torch.cuda.max_memory_reserved(device) / 2**20:.0f} MiB"
        )
    report["step_ms_median_first_last_100"] = [
        float(np.median(latencies[WARMUP:120])),
        float(np.median(latencies[-100:])),
    ]
    print(
        f"    step latency (torch backend FP32): median frames {WARMUP + 1}-120 {report['step_ms_median_first_last_100'][0]:.2f} ms,"
        f" last 100 {report['step_ms_median_first_last_100'][1]:.2f} ms"
    )

    reference = Correspondence(preset, seed=0, device="cpu")
    device_pipe = Pipeline(TorchBackend(build_model(preset, seed=0, device=device)))
    worst, equal = 0.0, 1.0
    for src, mask, tgt in moving_square(12):
        a, b = reference.step(src, mask, tgt), device_pipe.step(src, mask, tgt)
        worst = max(worst, float(np.abs(a.logits - b.logits).max()))
        equal = min(equal, float((a.mask == b.mask).mean()))
    report["parity_vs_cpu_reference"] = {"max_logit_diff": worst, "min_mask_agreement": equal}
    ok &= worst <= 1e-2 and equal >= 0.999
    print(
        f"[3] {args.device} pipeline vs CPU reference, 12 frames: max |logit diff| {worst:.2e}, min mask agreement {equal:.5f}"
    )
    report["pass"] = bool(ok)
    print("PASS" if ok else "FAIL")
    if args.json:
        with open(args.json, "w") as fp:
            json.dump(report, fp, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
