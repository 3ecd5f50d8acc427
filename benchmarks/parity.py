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

from lmeec import Correspondence
from lmeec.export.manifest import read_manifest
from lmeec.export.onnx import export_onnx
from lmeec.model.network import build_model
from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline


def frames(n: int, seed: int = 0):
    """An ego view (square) and an exo view (16:9) of a red square moving over textured noise."""
    rng = np.random.default_rng(seed)
    for t in range(n):
        src = rng.integers(0, 90, (480, 480, 3), dtype=np.uint8)
        tgt = rng.integers(0, 90, (270, 480, 3), dtype=np.uint8)
        y, x = 100 + (5 * t) % 200, 80 + (7 * t) % 250
        src[y : y + 120, x : x + 120] = (230, 40, 40)
        tgt[100:140, 150 + (3 * t) % 200 : 190 + (3 * t) % 200] = (230, 40, 40)
        mask = np.zeros((480, 480), bool)
        if t not in (3, 9):
            mask[y : y + 120, x : x + 120] = True
        yield src, mask, tgt


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
        for src, mask, tgt in frames(args.frames):
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
