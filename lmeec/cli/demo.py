"""`lmeec demo`: the main job on a fresh machine — synthesise an ego-exo take, export a preset (RANDOM
weights), run it frame by frame with ONNX Runtime, print each frame and the per-stage latency table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmeec.cli.options import add_threads_option
from lmeec.model.config import PRESETS


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="synthetic take -> ONNX export (random weights) -> ONNX Runtime, with the stage table",
    )
    demo.add_argument("--preset", default="t", choices=list(PRESETS), help="model preset (default t)")
    demo.add_argument("--frames", type=int, default=10, help="frames of the synthetic take (default 10)")
    demo.add_argument("--engines", help="an exported folder to run instead (e.g. trained weights)")
    demo.add_argument("--seed", type=int, default=0, help="random-weight and scene seed (default 0)")
    add_threads_option(demo, "ONNX Runtime and torch")
    demo.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    demo.add_argument("--cache", help="cache for the take and the export (default ~/.cache/lmeec)")
    demo.add_argument(
        "--peak-gflops",
        type=float,
        help="device peak GFLOP/s for the %% of peak column (default: measured here)",
    )
    demo.add_argument(
        "--overlay", help="side-by-side pictures (.mp4 or folder; default: one MP4 in the cache)"
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from lmeec.bench.costmodel import cost_table, measure_peak_gflops
    from lmeec.bench.inputs import default_cache, ensure_engines
    from lmeec.bench.report import stage_table
    from lmeec.bench.runner import STEP, MeasuredPipeline
    from lmeec.eval.synth import SynthConfig, load_synth, synthesize
    from lmeec.runtime.backend import open_backend

    if args.frames < 1:
        raise ValueError("--frames must be at least 1")
    cache = Path(args.cache) if args.cache else default_cache()
    device = torch.device(args.device)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    config = SynthConfig(takes=1, frames=max(4, args.frames), seed=args.seed)
    take_dir = cache / "synth" / f"demo-f{config.frames}-seed{args.seed}"
    if not (take_dir / "relations_synth.json").is_file():
        log(f"synthesising a take ({config.frames} annotated frames) in {take_dir}")
        synthesize(take_dir, config)
    unit = max(load_synth(take_dir).units("ego-exo"), key=lambda u: len(u.query.masks))

    if args.engines:
        engines = Path(args.engines)
        weights = f"engines {engines}"
    else:
        engines, _ = ensure_engines(args.preset, args.seed, cache, log)
        weights = f"RANDOM weights (seed {args.seed}) — the masks are NOT meaningful, the timings are"
    if args.threads:
        torch.set_num_threads(args.threads)
    backend = open_backend("ort", engines=engines, preset=args.preset, device=device, threads=args.threads)
    measured = MeasuredPipeline("ort", backend, device)
    info = backend.describe()
    print(f"lmeec demo: preset {args.preset}, {weights}")
    print(
        f"  take {unit.take} object '{unit.obj}' {unit.query_cam} -> {unit.target_cam} ({take_dir}); "
        f"ONNX Runtime {info.get('onnxruntime')} on {', '.join(info.get('providers', []))}, "
        f"threads {args.threads or 'default'}"
    )
    print(
        f"{'frame':>6} {'status':>8} {'banks':>6} {'ptrs':>4} {'score':>7} {'conf':>5} {'visible':>7}"
        f" {'area%':>6} {'step ms':>8} {'encoder ms':>10}"
    )
    overlay = _overlay(args, cache, random_weights=not args.engines)
    for i, fr in enumerate(unit.frames(all_frames=True)):
        if i >= args.frames:
            break
        if fr.source_mask is None or not fr.source_mask.any():
            r = measured.pipeline.step(fr.source_rgb, fr.source_mask, fr.target_rgb)  # skipped: no query mask
            print(f"{fr.frame:>6} {'skipped':>8}   (no source mask at this frame)")
            if overlay:
                overlay.add(r.frame_index, fr.source_rgb, [None], fr.target_rgb, [None], [None], 0.0)
            continue
        r = measured.step((fr.source_rgb, fr.source_mask, fr.target_rgb), record=True)
        run = measured.run
        if overlay:
            overlay.add(
                r.frame_index,
                fr.source_rgb,
                [fr.source_mask],
                fr.target_rgb,
                [r.mask],
                [r.object_score],
                run.step_ms[-1],
            )
        print(
            f"{fr.frame:>6} {'ok':>8} {r.bank_sizes[0]}+{r.bank_sizes[1]:<4} {len(r.pointer_t_diffs):>4}"
            f" {r.object_score:>7.2f} {r.confidence:>5.2f} {str(r.visible):>7} {100 * r.mask.mean():>6.2f}"
            f" {run.step_ms[-1]:>8.1f} {run.stages['image_encoder'][-1]:>10.1f}"
        )
    written = overlay.close() if overlay else "not written (needs OpenCV: pip install 'lmeec[video]')"
    run = measured.run
    if not run.step_ms:
        print("no frame had a source mask: nothing was timed")
        return 1
    run.finish(windows=1, fraction=1.0)
    peak, note = (
        (args.peak_gflops, "given (--peak-gflops)") if args.peak_gflops else measure_peak_gflops(device)
    )
    costmodel = cost_table(args.preset, engines, {"ort": run}, peak, peak_note=note)
    print()
    print(stage_table(run, costmodel))
    print(
        f"(a short, cold run: {run.summary[STEP]['count']} timed frames, the first ones included; "
        f"`lmeec bench --preset {args.preset} --backend ort` gives warmed-up figures, JSON, CSV and a plot)"
    )
    print(f"overlay: {written}")
    return 0


def _overlay(args: argparse.Namespace, cache: Path, random_weights: bool):
    """The demo's pictures: --overlay, or an MP4 in the cache that the demo itself rewrites each run."""
    from lmeec.cli.overlay import Overlay

    try:
        import cv2  # noqa: F401
    except ImportError:
        if args.overlay:
            raise RuntimeError("--overlay needs OpenCV: pip install 'lmeec[video]'") from None
        return None
    if args.overlay:
        return Overlay(args.overlay, random_weights=random_weights, fps=2.0)
    path = cache / "overlay" / f"demo-{args.preset}-f{args.frames}-seed{args.seed}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # written by an earlier demo run (the cache is lmeec's own)
    return Overlay(path, random_weights=random_weights, fps=2.0)
