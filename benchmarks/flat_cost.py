"""Flat-cost proof: a long run, per-frame latency and memory in windows at the start, middle and end,
and their growth from the first to the last window.

    python benchmarks/flat_cost.py                                  # 5,000 frames of the test preset, ort
    python benchmarks/flat_cost.py --backend torch --frames 1000

Exit status 1 when latency or resident memory grows more than --max-growth-pct (default 5 %) between the
first and the last window, so the script can gate a release.
"""

from __future__ import annotations

import argparse
import sys

from lmeec.bench.report import flat_cost_table, format_report, write_outputs
from lmeec.bench.runner import BenchConfig, run_benchmark


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="test")
    p.add_argument("--backend", default="ort")
    p.add_argument("--engines")
    p.add_argument("--frames", type=int, default=5000)
    p.add_argument("--warmup", type=int, default=20, help="frames first, unmeasured (the banks fill in 7)")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--frames-source", choices=["synth", "random"], default="random")
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--window-fraction", type=float, default=0.1)
    p.add_argument("--ort-spinning", choices=["on", "off"], default="off")
    p.add_argument("--max-growth-pct", type=float, default=5.0)
    p.add_argument("--out", default="bench-results/flat-cost")
    args = p.parse_args(argv)
    result = run_benchmark(
        BenchConfig(
            preset=args.preset,
            backends=(args.backend,),
            engines=args.engines,
            frames=args.frames,
            warmup=args.warmup,
            threads=args.threads,
            device=args.device,
            frames_source=args.frames_source,
            windows=args.windows,
            window_fraction=args.window_fraction,
            ort_spinning=args.ort_spinning == "on",
        )
    )
    print(format_report(result, flat=False))
    run = result.runs[args.backend]
    print()
    print(flat_cost_table(run))
    paths = write_outputs(result, args.out)
    print("\nwrote " + ", ".join(str(x) for x in paths.values()))
    fc = run.flat_cost
    growth = {k: fc[k] for k in ("growth_step_p50_pct", "growth_rss_p50_pct", "growth_cuda_used_p50_pct")}
    over = {k: v for k, v in growth.items() if v is not None and v > args.max_growth_pct}
    verdict = "FLAT" if not over else f"GROWS ({', '.join(f'{k} {v:+.2f}%' for k, v in over.items())})"
    print(f"flat-cost verdict (limit +{args.max_growth_pct:g}% first -> last window): {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
