"""`lmeec bench`: per-stage latency and memory of the runtime, one backend or two side by side."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lmeec.cli.options import (
    add_device_options,
    add_step_options,
    add_threads_option,
    positive_int,
    resolve_device,
)
from lmeec.model.config import PRESETS
from lmeec.runtime.backend import BACKENDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="per-stage latency/memory benchmark (tables, JSON, CSV, PNG)",
        description="Time every stage of the step and the whole step (p50/p90/p99/max, frames/s, memory), "
        "versus frame index; with --compare, two backends interleaved in one process over the same frames.",
    )
    p.add_argument("--preset", default="test", choices=list(PRESETS))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--backend", choices=BACKENDS, default="ort")
    which.add_argument("--compare", metavar="A,B", help="two backends side by side, e.g. torch,ort")
    p.add_argument("--engines", help="exported engine folder (default: export RANDOM weights into the cache)")
    p.add_argument("--checkpoint", help="weights for the torch backend (default: those of the engines)")
    p.add_argument("--seed", type=int, default=0, help="random-weight seed (default 0)")
    p.add_argument("--frames", type=int, default=50, help="measured frames (default 50)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured frames first (default 3)")
    p.add_argument(
        "--objects",
        type=int,
        default=1,
        metavar="K",
        help="objects per step in one batched pass (default 1); benchmarks/objects.py compares K passes",
    )
    add_threads_option(p, "torch and ONNX Runtime intra-op")
    add_device_options(p)
    add_step_options(p)
    p.add_argument("--frames-source", choices=["synth", "random"], default="synth")
    p.add_argument(
        "--source-size",
        type=positive_int,
        default=1408,
        metavar="S",
        help="random frames: S×S source frames (default 1408, EgoExo4D's Aria frames)",
    )
    p.add_argument(
        "--target-size",
        type=frame_size,
        default=(3840, 2160),
        metavar="WxH",
        help="random frames: target frame width x height (default 3840x2160, EgoExo4D's exo cameras)",
    )
    p.add_argument("--windows", type=int, default=3, help="flat-cost windows: start, middle, end (default 3)")
    p.add_argument(
        "--window-fraction", type=float, default=0.1, help="each window's share of the frames (default 0.1)"
    )
    p.add_argument(
        "--peak-gflops",
        type=float,
        help="device peak GFLOP/s for the cost model (default: measured FP32 matrix-product rate here)",
    )
    p.add_argument(
        "--reference-ms", type=float, help="a stated reference ms/frame to print speed-ups against"
    )
    p.add_argument(
        "--ort-spinning",
        choices=["on", "off"],
        default="off",
        help="ONNX Runtime thread spin-waiting (off by default: it starves the host work between graphs)",
    )
    p.add_argument(
        "--cache", help="engines and synthetic-take cache (default $LMEEC_CACHE_DIR or ~/.cache/lmeec)"
    )
    p.add_argument("--out", help="results folder (default bench-results/<preset>-<backends>-<time>)")
    p.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)


def parse_backends(args: argparse.Namespace) -> tuple[str, ...]:
    if not args.compare:
        return (args.backend,)
    names = tuple(n.strip() for n in args.compare.split(",") if n.strip())
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"--compare takes two different backends, e.g. torch,ort; got {args.compare!r}")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return names


def frame_size(text: str) -> tuple[int, int]:
    """argparse type for WxH frame sizes."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 3840x2160, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return w, h


def config_from_args(args: argparse.Namespace):
    from lmeec.bench.runner import BenchConfig
    from lmeec.runtime.step_options import StepOptions

    return BenchConfig(
        preset=args.preset,
        backends=parse_backends(args),
        engines=args.engines,
        checkpoint=args.checkpoint,
        seed=args.seed,
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        device=resolve_device(
            args.device, "ort" if "ort" in parse_backends(args) else parse_backends(args)[0]
        ),
        providers=args.provider,
        frames_source=args.frames_source,
        cache=args.cache,
        windows=args.windows,
        window_fraction=args.window_fraction,
        peak_gflops=args.peak_gflops,
        reference_ms=args.reference_ms,
        progress=not args.no_progress,
        ort_spinning=args.ort_spinning == "on",
        objects=args.objects,
        step=StepOptions(
            device_io=args.device_io, precision=args.precision, compile=args.compile, graph=args.graph
        ),
        source_size=args.source_size,
        target_size=args.target_size,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from lmeec.bench.report import format_report, write_outputs
    from lmeec.bench.runner import run_benchmark
    from lmeec.files import atomic_dir, check_output

    config = config_from_args(args)
    out = Path(args.out) if args.out else default_out(config)
    config.check()  # bad arguments first, then the output path, then the run
    inputs = [args.engines, args.checkpoint, args.cache]
    check_output(out, force=args.force, inputs=inputs)  # fail before the run, not after it
    result = run_benchmark(config)
    print(format_report(result))
    with atomic_dir(out, overwrite=args.force, inputs=inputs) as tmp:
        paths = write_outputs(result, tmp, plot=not args.no_plot)
    print("\nwrote " + ", ".join(str(out / p.name) for p in paths.values()))
    return 0


def default_out(config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("bench-results") / f"{config.preset}-{'-vs-'.join(config.backends)}-{stamp}"
