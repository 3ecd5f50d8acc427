"""GPU check of the FP16 policy with PyTorch + CUDA only (no TensorRT, no onnxruntime-gpu).

    python benchmarks/gpu_check.py                      # preset t, 30 frames, cuda, native FP16
    python benchmarks/gpu_check.py --device cpu --frames 3   # the same code path, FP16 emulated

Builds the preset with seeded random weights, runs one synthetic take through the pipeline in FP32 and
with the FP16 policy (native: real torch.float16 conv/linear/matmul kernels, FP32 islands), prints
per-frame mask IoU against FP32, min/mean and the gates, sign flips, max |logit diff|, the largest
magnitudes through FP16 per stage, and the median step latency (CUDA events after warm-up, measured in a
separate run without activation bookkeeping). Writes $OUT/gpu_check.json when OUT is set.
Exit status: 0 if the gates pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lmeec.bench.precision import format_report, latency, validate  # noqa: E402
from lmeec.files import atomic_write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FP16 policy vs FP32 on a GPU with PyTorch")
    ap.add_argument("--preset", default="t")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--latency-frames", type=int, default=20)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; use --device cpu", file=sys.stderr)
        return 2
    native = dev.type == "cuda"
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # FP32 baseline means FP32
        torch.backends.cudnn.allow_tf32 = False
    t0 = time.perf_counter()
    rep = validate(args.preset, args.frames, args.seed, args.device, native=native, warmup=1)
    print(
        "\n".join(
            f"frame {r['frame']:3d}  IoU {r['iou_mask']:.4f}  half-area IoU {r['iou_half']:.4f}"
            f"  flips {r['sign_flips']:.2e}  max|dlogit| {r['max_logit_diff']:.3g}"
            for r in rep["per_frame"]
        )
    )
    print(format_report(rep))
    lat_frames = args.latency_frames if dev.type == "cuda" else min(args.latency_frames, 2)
    lat = latency(
        args.preset, lat_frames, args.seed, args.device, native, warmup=3 if dev.type == "cuda" else 1
    )
    print(
        f"latency ({'CUDA events' if dev.type == 'cuda' else 'wall clock'}, median of {lat['fp32']['frames']} steps"
        f" after warm-up): fp32 {lat['fp32']['median_ms']:.1f} ms, fp16 policy {lat['fp16_policy']['median_ms']:.1f} ms"
    )
    rep["latency"] = lat
    rep["environment"] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    out = os.environ.get("OUT")
    if out:
        path = Path(out) / f"gpu_check_{args.preset.replace('+', 'plus')}.json"  # '+' does not travel back
        atomic_write_json(path, rep, indent=1)
        print(f"wrote {path}")
    return 0 if rep["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
