"""`lmeec run`: a whole take (or a benchmark split) through exported engines, masks written atomically."""

from __future__ import annotations

import argparse
import time
import warnings
from contextlib import nullcontext
from functools import partial
from pathlib import Path

from lmeec.cli import take as own_video
from lmeec.cli.options import add_device_options, add_step_options, add_threads_option
from lmeec.cli.split import (
    PassPredictions,
    object_passes,
    open_pipeline,
    pipeline_options,
    predict_pass,
    save_png,
    split_units,
    write_split,
)
from lmeec.runtime.backend import BACKENDS


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
    add_device_options(run)
    add_step_options(run)
    add_threads_option(run)
    split = run.add_argument_group("benchmark split (EgoExo4D relations layout)")
    split.add_argument("--annotations", help="relations_{split}.json, processed GT file or folder")
    split.add_argument("--relations", help="raw relations file when --annotations is a processed folder")
    split.add_argument(
        "--frames-root", help="root of {take}/{camera}/{frame}.jpg (default: beside --annotations)"
    )
    split.add_argument("--direction", choices=["ego-exo", "exo-ego", "both"], default="both")
    split.add_argument(
        "--take", action="append", help="only these take uids (the file then covers only them)"
    )
    split.add_argument(
        "--confidence",
        choices=["area", "score"],
        default="area",
        help="visibility confidence: research rule (area > 0.1 %%) or sigmoid(object score)",
    )
    ray = run.add_argument_group(
        "Ray: a split's units on a local or existing cluster (pip install lmeec[ray])"
    )
    ray.add_argument("--ray", action="store_true", help="run the split's units on Ray actors (resumable)")
    ray.add_argument("--address", help="existing cluster: auto or ray://host:port (default: a local Ray)")
    ray.add_argument("--workers", type=int, default=2, help="actors, each holding one opened backend")
    ray.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor (with --device cuda)")
    one = run.add_argument_group("one take")
    one.add_argument(
        "--source",
        help="source-view frames: image folder, video file, camera index (0) or stream URL (rtsp://…)",
    )
    one.add_argument(
        "--source-masks",
        help="folder of source masks named like the frames (7.png, 0007.png or 000007.png for frame 7; PNG/JPG): "
        "binary (one object), index/palette PNGs (one value per object), or one subfolder per object",
    )
    one.add_argument(
        "--target", help="target-view frames: image folder, video file, camera index or stream URL"
    )
    one.add_argument(
        "--skip-unpaired",
        action="store_true",
        help="skip (with a warning) frames present in one view only, instead of refusing the take",
    )
    one.add_argument(
        "--mask-threshold",
        type=float,
        metavar="T",
        help="binarise masks as value >= T (default: masks must hold 0/1 or 0/255 only)",
    )
    run.add_argument("--out", required=True, help="output folder (written atomically)")
    run.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    run.add_argument("--no-png", action="store_true", help="skip the PNG masks")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    own_video.add_arguments(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if own_video.wanted(args):  # one prompt or live views: lmeec/cli/take.py
        return own_video.cmd_run_take(args)
    if args.share_encoder:
        raise ValueError("--share-encoder shares the source frame with the tracker: it needs a prompt")
    from lmeec.files import atomic_dir, atomic_write_json, check_output
    from lmeec.model.checkpoint import is_random, random_weights_warning
    from lmeec.runtime.takes import open_take

    split_mode = args.annotations is not None
    take_mode = any(x is not None for x in (args.source, args.source_masks, args.target))
    if split_mode == take_mode:
        raise ValueError(
            "give either --annotations (a benchmark split) or --source/--source-masks/--target (one take)"
        )
    if take_mode and None in (args.source, args.source_masks, args.target):
        raise ValueError("one-take mode needs all of --source, --source-masks and --target")
    if args.overlay and split_mode:
        raise ValueError("--overlay draws one take: give --source, --source-masks (or a prompt) and --target")
    inputs = [args.engines, args.checkpoint, args.source, args.source_masks, args.target]
    inputs += [args.annotations, args.relations, args.frames_root]
    check_output(args.out, force=args.force, inputs=inputs)  # before any work: fail early, destroy nothing
    if args.ray:
        if take_mode:
            raise ValueError("--ray runs a benchmark split: give --annotations")
        from lmeec.cli.run_ray import run_split_on_ray

        return run_split_on_ray(args, inputs)
    pipeline = open_pipeline(**pipeline_options(args))
    backend = pipeline.backend
    take = (
        open_take(args.source, args.source_masks, args.target, args.skip_unpaired, args.mask_threshold)
        if take_mode
        else None
    )
    if is_random(backend.weights):
        warnings.warn(random_weights_warning(backend.weights), stacklevel=1)
    overlay = None
    if args.overlay:
        from lmeec.cli.overlay import Overlay

        overlay = Overlay(args.overlay, random_weights=is_random(backend.weights))
    with overlay or nullcontext(), atomic_dir(args.out, overwrite=args.force, inputs=inputs) as out:
        if split_mode:
            split = split_units(args)
            passes = object_passes(split.units, backend.max_objects)
            predict = partial(
                predict_pass, pipeline, confidence=args.confidence, progress=not args.no_progress
            )
            frames = write_split(split, PassPredictions(passes, predict), out, args)
        else:
            frames = _run_take(pipeline, take, args, out, overlay)
        atomic_write_json(
            out / "run.json", {"weights": backend.weights, "backend": backend.describe()}, indent=1
        )
    print(f"wrote {frames} frame predictions to {args.out}")
    if overlay is not None and (written := overlay.close()) is not None:
        print(f"overlay: {written}")
    return 0


def _run_take(pipeline, take, args: argparse.Namespace, out: Path, overlay=None) -> int:
    """One take: PNG masks at the target's native size and predictions.json with COCO RLE per frame.

    Several objects (index PNGs or one mask folder per object) run as one pass; their outputs go to
    masks/<id>/ and predictions.json's "objects". `overlay`: one picture per frame pair, objects tinted."""
    from tqdm import tqdm

    from lmeec.eval.rle import encode_rle
    from lmeec.files import atomic_write_json

    masks = take.masks
    pipeline.reset(num_frames=len(take.names), num_objects=len(masks.ids))
    frames: dict[str, dict] = {obj: {} for obj in masks.ids}
    for name, src, tgt in tqdm(take.pairs(), total=len(take.names), unit="frame", disable=args.no_progress):
        t0 = time.perf_counter()
        source_masks = masks.read(name, src.shape[:2])
        results = pipeline.step(src, source_masks, tgt)
        if overlay is not None:
            overlay.add(
                results[0].frame_index,
                src,
                source_masks,
                tgt,
                [None if r.skipped else r.mask for r in results],
                [None if r.skipped else r.object_score for r in results],
                1000 * (time.perf_counter() - t0),
            )
        for obj, result in zip(masks.ids, results, strict=True):
            if result.skipped:
                frames[obj][name] = {"skipped": True}
                continue
            frames[obj][name] = {
                "skipped": False,
                "mask": encode_rle(result.mask),
                "visible": result.visible,
                "confidence": result.confidence,
                "object_score": result.object_score,
            }
            if not args.no_png:
                folder = out / "masks" if masks.single else out / "masks" / obj
                save_png(folder / f"{name}.png", result.mask)
    doc = {
        "source": str(args.source),
        "target": str(args.target),
        "preset": pipeline.preset.name,
        "weights": pipeline.backend.weights,
    }
    if masks.single:
        doc["frames"] = frames[masks.ids[0]]
    else:
        doc["objects"] = {obj: {"frames": f} for obj, f in frames.items()}
    atomic_write_json(out / "predictions.json", doc)
    return sum(not f["skipped"] for per_object in frames.values() for f in per_object.values())
