"""Side by side: two backends interleaved frame by frame in one process over the same frames.

    python benchmarks/compare.py --preset test --frames 200            # torch vs ort, the test preset
    python benchmarks/compare.py --preset b+ --frames 20 --threads 2   # the paper's model on this CPU

Prints both stage tables and their ratios; writes bench.json (see lmeec/bench/bench_result.schema.json), frames.csv,
stages.csv and bench.png into --out.
"""

from __future__ import annotations

import argparse
import sys

from lmeec.bench.report import format_report, write_outputs
from lmeec.bench.runner import BenchConfig, run_benchmark


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="test")
    p.add_argument("--backends", default="torch,ort", help="two backends, comma-separated")
    p.add_argument("--engines", help="exported folder (default: cached random-weight export)")
    p.add_argument("--checkpoint", help="torch weights matching --engines")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ort-spinning", choices=["on", "off"], default="off")
    p.add_argument("--peak-gflops", type=float)
    p.add_argument("--reference-ms", type=float, help="stated reference ms/frame (e.g. the research code's)")
    p.add_argument("--out", default="bench-results/compare")
    args = p.parse_args(argv)
    config = BenchConfig(
        preset=args.preset,
        backends=tuple(b.strip() for b in args.backends.split(",")),
        engines=args.engines,
        checkpoint=args.checkpoint,
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        device=args.device,
        peak_gflops=args.peak_gflops,
        reference_ms=args.reference_ms,
        ort_spinning=args.ort_spinning == "on",
    )
    if len(config.backends) != 2:
        p.error("--backends takes two names")
    result = run_benchmark(config)
    print(format_report(result))
    paths = write_outputs(result, args.out)
    print("\nwrote " + ", ".join(str(x) for x in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
