"""`lmeec run`: a whole take (or a benchmark split) through exported engines, masks written atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from lmeec.runtime.backend import BACKENDS
from lmeec.runtime.step_options import StepOptions
from lmeec.runtime.step_options import add_arguments as add_step_arguments


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run a take through the engines and write masks",
        description="Either a benchmark split (--annotations) or one take (--source, --source-masks, --target).",
    )
    run.add_argument("--engines", help="exported engine folder (manifest.json)")
    run.add_argument("--backend", choices=BACKENDS, default="ort")
    run.add_argument("--preset", help="expected preset (checked against the manifest)")
    run.add_argument("--checkpoint", help="weights for --backend torch")
    run.add_argument("--device", default="cpu")
    run.add_argument("--threads", type=int, help="CPU threads for torch / ONNX Runtime")
    run.add_argument(
        "--provider", action="append", choices=["cpu", "cuda", "tensorrt"], help="ONNX Runtime provider(s)"
    )
    split = run.add_argument_group("benchmark split (EgoExo4D relations layout)")
    split.add_argument("--annotations", help="relations_{split}.json, processed GT file or folder")
    split.add_argument("--relations", help="raw relations file when --annotations is a processed folder")
    split.add_argument(
        "--frames-root", help="root of {take}/{camera}/{frame}.jpg (default: beside --annotations)"
    )
    split.add_argument("--direction", choices=["ego-exo", "exo-ego", "both"], default="both")
    split.add_argument("--take", action="append", help="only these take uids")
    split.add_argument(
        "--confidence",
        choices=["area", "score"],
        default="area",
        help="visibility confidence: research rule (area > 0.1 %%) or sigmoid(object score)",
    )
    one = run.add_argument_group("one take")
    one.add_argument("--source", help="source-view frames: image folder or video file")
    one.add_argument("--source-masks", help="folder of source masks named like the source frames (PNG)")
    one.add_argument("--target", help="target-view frames: image folder or video file")
    add_step_arguments(run)
    run.add_argument("--out", required=True, help="output folder (written atomically)")
    run.add_argument("--force", action="store_true", help="replace an existing output folder")
    run.add_argument("--no-png", action="store_true", help="skip the PNG masks")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from lmeec.files import atomic_dir
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    split_mode = args.annotations is not None
    take_mode = any(x is not None for x in (args.source, args.source_masks, args.target))
    if split_mode == take_mode:
        raise ValueError(
            "give either --annotations (a benchmark split) or --source/--source-masks/--target (one take)"
        )
    if take_mode and None in (args.source, args.source_masks, args.target):
        raise ValueError("one-take mode needs all of --source, --source-masks and --target")
    backend = open_backend(
        args.backend,
        engines=args.engines,
        preset=args.preset,
        checkpoint=args.checkpoint,
        device=args.device,
        threads=args.threads,
        providers=args.provider,
    )
    pipeline = Pipeline(backend, **StepOptions.from_args(args).apply(backend))
    with atomic_dir(args.out, overwrite=args.force) as out:
        if split_mode:
            frames = _run_split(pipeline, args, out)
        else:
            frames = _run_take(pipeline, args, out)
    print(f"wrote {frames} frame predictions to {args.out}")
    return 0


def _run_split(pipeline, args: argparse.Namespace, out: Path) -> int:
    """Every evaluation unit of the split, in benchmark order; writes predictions.json (submission format)."""
    from tqdm import tqdm

    from lmeec.eval.annotations import DIRECTIONS, load_annotations
    from lmeec.eval.rle import resize_nearest
    from lmeec.eval.submission import SubmissionWriter

    root = args.frames_root or (
        args.annotations if Path(args.annotations).is_dir() else Path(args.annotations).parent
    )
    ann = load_annotations(args.annotations, relations=args.relations, frames_root=root)
    directions = list(DIRECTIONS) if args.direction == "both" else [args.direction]
    units = [u for d in directions for u in ann.units(d) if not args.take or u.take in args.take]
    if not units:
        raise ValueError(f"no evaluation units for direction {args.direction} in {args.annotations}")
    writer, written = SubmissionWriter(), 0
    for unit in tqdm(units, desc="units", unit="unit"):
        frames = list(unit.frames(all_frames=True))
        pipeline.reset(num_frames=len(frames))
        for fr in tqdm(frames, desc=f"{unit.take[:8]} {unit.obj[:12]}", unit="frame", leave=False):
            result = pipeline.step(fr.source_rgb, fr.source_mask, fr.target_rgb)
            if not fr.counted:
                continue
            if result.skipped:  # counted but no usable query mask: report "not visible"
                mask, confidence = np.zeros(unit.target_eval_shape, bool), 0.0
            else:
                mask = resize_nearest(result.mask, unit.target_eval_shape)
                confidence = float(result.visible) if args.confidence == "area" else result.confidence
            writer.add(unit.take, unit.obj, unit.query_cam, unit.target_cam, fr.frame, mask, confidence)
            if not args.no_png:
                _save_png(
                    out
                    / "masks"
                    / unit.take
                    / f"{unit.query_cam}_{unit.target_cam}"
                    / unit.obj
                    / f"{fr.frame}.png",
                    mask,
                )
            written += 1
    writer.save(out / "predictions.json")
    return written


def _run_take(pipeline, args: argparse.Namespace, out: Path) -> int:
    """One take: PNG masks at the target's native size and predictions.json with COCO RLE per frame."""
    from tqdm import tqdm

    from lmeec.eval.rle import encode_rle
    from lmeec.files import atomic_write_json
    from lmeec.runtime.takes import FrameSource, read_mask

    source, target = FrameSource(args.source, "source"), FrameSource(args.target, "target")
    if len(source) != len(target):
        raise ValueError(
            f"source has {len(source)} frames but target has {len(target)}: views must be synchronised"
        )
    masks = Path(args.source_masks)
    if not masks.is_dir():
        raise FileNotFoundError(f"source mask folder {masks} does not exist")
    pipeline.reset(num_frames=len(source))
    frames = {}
    for name, src, tgt in tqdm(
        zip(source.names, source, target, strict=True), total=len(source), unit="frame"
    ):
        result = pipeline.step(src, read_mask(masks, name, src.shape[:2]), tgt)
        if result.skipped:
            frames[name] = {"skipped": True}
            continue
        frames[name] = {
            "skipped": False,
            "mask": encode_rle(result.mask),
            "visible": result.visible,
            "confidence": result.confidence,
            "object_score": result.object_score,
        }
        if not args.no_png:
            _save_png(out / "masks" / f"{name}.png", result.mask)
    doc = {
        "source": str(args.source),
        "target": str(args.target),
        "preset": pipeline.preset.name,
        "frames": frames,
    }
    atomic_write_json(out / "predictions.json", doc)
    return sum(not f["skipped"] for f in frames.values())


def _save_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
