"""Flat memory over a long take: resident memory at frame 100 vs the last frame, and tensor allocations.

    python benchmarks/long_run.py --preset test --frames 2000 [--engines DIR] [--backend ort] [--objects 8]

Random frames (a new ego/exo pair every frame, one moving square as the object). Exits 1 if resident
memory grows by more than --max-growth % between frame 100 and the last frame, or if any step after
warm-up allocates a tensor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from frames import moving_square

from lmeec.bench.runner import object_masks
from lmeec.export.onnx import export_onnx
from lmeec.model.network import build_model
from lmeec.runtime.alloc import AllocationCounter, rss_mb
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline

WARMUP = 20  # frames before allocation counting starts (warm-up is 7; a margin for first-size buffers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="test")
    ap.add_argument(
        "--engines", help="exported folder (default: export seeded random weights to a temp folder)"
    )
    ap.add_argument("--backend", default="ort", choices=["ort", "torch"])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--objects", type=int, default=1, help="objects per step, one batched pass (default 1)")
    ap.add_argument("--every", type=int, default=250, help="print memory every N frames (default 250)")
    ap.add_argument(
        "--max-growth", type=float, default=5.0, help="allowed RSS growth in %% (frame 100 -> last)"
    )
    args = ap.parse_args()
    if args.frames <= 100:
        ap.error("--frames must exceed 100")

    with tempfile.TemporaryDirectory() as tmp:
        engines = args.engines or Path(tmp) / "engines"
        if args.engines is None:
            print(f"exporting preset {args.preset} with seeded RANDOM weights to {engines} …", flush=True)
            export_onnx(
                build_model(args.preset, seed=0),
                engines,
                checkpoint=None,
                seed=0,
                progress=False,
                max_objects=args.objects,
            )
        pipeline = Pipeline(open_backend(args.backend, engines=engines))
        pipeline.reset(num_objects=args.objects)  # a live stream: no known length
        counter, rss, latencies = AllocationCounter(), {}, []
        for t, (src, mask, tgt) in enumerate(moving_square(args.frames, ego=192)):
            if args.objects > 1:
                mask = object_masks(mask, args.objects)
            t0 = time.perf_counter()
            if t >= WARMUP:
                with counter:
                    pipeline.step(src, mask, tgt)
            else:
                pipeline.step(src, mask, tgt)
            latencies.append(time.perf_counter() - t0)
            if t + 1 in (100, args.frames):
                rss[t + 1] = rss_mb()
            if (t + 1) % args.every == 0:
                print(
                    f"frame {t + 1:>6}: RSS {rss_mb():8.1f} MiB, "
                    f"median step {1e3 * np.median(latencies[-args.every :]):7.1f} ms",
                    flush=True,
                )
    first, last = rss[100], rss[args.frames]
    growth = 100.0 * (last - first) / first
    print(
        f"resident memory at frame 100: {first:.1f} MiB; at frame {args.frames}: {last:.1f} MiB "
        f"({growth:+.2f} %)"
    )
    print(
        f"median step: frames 1-100 {1e3 * np.median(latencies[:100]):.1f} ms, "
        f"last 100 {1e3 * np.median(latencies[-100:]):.1f} ms"
    )
    print(
        f"tensors allocated by steps {WARMUP + 1}…{args.frames}: {len(counter.fresh)}"
        + (f" (first: {counter.fresh[:5]})" if counter.fresh else "")
    )
    ok = growth <= args.max_growth and not counter.fresh
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
