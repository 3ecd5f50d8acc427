"""Engine pipeline vs the reference tracker over one synthetic take, frame by frame.

    python benchmarks/parity.py --preset t --frames 30 [--engines DIR] [--backend ort]

Gates (the export issue's): per-frame max |logit diff| <= 1e-3, >= 99.9 % of mask pixels equal, identical
visibility decisions. Empty source masks at frames 3 and 9 exercise the gap rules. Exits 1 on failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from frames import moving_square

from lmeec import Correspondence
from lmeec.export.manifest import read_manifest
from lmeec.export.onnx import export_onnx
from lmeec.model.network import build_model
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="test")
    ap.add_argument("--engines", help="exported folder with seeded random weights (default: export seed 0)")
    ap.add_argument("--backend", default="ort", choices=["ort", "torch"])
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engines = Path(args.engines) if args.engines else Path(tmp) / "engines"
        if args.engines is None:
            print(f"exporting preset {args.preset} (seeded RANDOM weights) …", flush=True)
            export_onnx(build_model(args.preset, seed=0), engines, checkpoint=None, seed=0, progress=False)
        seed = read_manifest(engines).checkpoint.get("random_seed")
        reference = Correspondence(args.preset, seed=seed)
        pipeline = Pipeline(open_backend(args.backend, engines=engines, preset=args.preset))
        reference.reset(args.frames)
        pipeline.reset(args.frames)
        ok, worst = True, 0.0
        print(
            f"{'frame':>5} {'banks':>5} {'max|dlogit|':>11} {'mask eq %':>9} {'vis':>5} {'ref ms':>7} {'eng ms':>7}"
        )
        for src, mask, tgt in moving_square(args.frames, empty=(3, 9)):
            t0 = time.perf_counter()
            a = reference.step(src, mask, tgt)
            t1 = time.perf_counter()
            b = pipeline.step(src, mask, tgt)
            t2 = time.perf_counter()
            if a.skipped or b.skipped:
                ok &= a.skipped == b.skipped
                print(f"{a.frame_index:>5} skipped")
                continue
            diff = float(np.abs(a.logits - b.logits).max())
            equal = 100.0 * float((a.mask == b.mask).mean())
            same = (
                a.visible == b.visible
                and a.bank_sizes == b.bank_sizes
                and a.pointer_t_diffs == b.pointer_t_diffs
            )
            ok &= diff <= 1e-3 and equal >= 99.9 and same
            worst = max(worst, diff)
            print(
                f"{a.frame_index:>5} {a.bank_sizes[0]:>5} {diff:>11.2e} {equal:>9.3f} {str(same):>5}"
                f" {1e3 * (t1 - t0):>7.0f} {1e3 * (t2 - t1):>7.0f}"
            )
    print(f"worst max |logit diff| {worst:.2e}; gates {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
