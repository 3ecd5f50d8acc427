"""`lmeec run`: a whole take (or a benchmark split) through exported engines, masks written atomically."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from lmeec.cli.split import open_pipeline, pipeline_options, predict_unit, save_png, split_units, write_split
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
    ray = run.add_argument_group(
        "Ray: a split's units on a local or existing cluster (pip install lmeec[ray])"
    )
    ray.add_argument("--ray", action="store_true", help="run the split's units on Ray actors (resumable)")
    ray.add_argument("--address", help="existing cluster: auto or ray://host:port (default: a local Ray)")
    ray.add_argument("--workers", type=int, default=2, help="actors, each holding one opened backend")
    ray.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor (with --device cuda)")
    one = run.add_argument_group("one take")
    one.add_argument("--source", help="source-view frames: image folder or video file")
    one.add_argument("--source-masks", help="folder of source masks named like the source frames (PNG)")
    one.add_argument("--target", help="target-view frames: image folder or video file")
    run.add_argument("--out", required=True, help="output folder (written atomically)")
    run.add_argument("--force", action="store_true", help="replace an existing output folder")
    run.add_argument("--no-png", action="store_true", help="skip the PNG masks")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from lmeec.files import atomic_dir

    split_mode = args.annotations is not None
    take_mode = any(x is not None for x in (args.source, args.source_masks, args.target))
    if split_mode == take_mode:
        raise ValueError(
            "give either --annotations (a benchmark split) or --source/--source-masks/--target (one take)"
        )
    if take_mode and None in (args.source, args.source_masks, args.target):
        raise ValueError("one-take mode needs all of --source, --source-masks and --target")
    if args.ray:
        if take_mode:
            raise ValueError("--ray runs a benchmark split: give --annotations")
        from lmeec.cli.run_ray import run_split_on_ray

        return run_split_on_ray(args)
    pipeline = open_pipeline(**pipeline_options(args))
    with atomic_dir(args.out, overwrite=args.force) as out:
        if split_mode:
            units = split_units(args)
            frames = write_split(
                units, partial(predict_unit, pipeline, confidence=args.confidence), out, args
            )
        else:
            frames = _run_take(pipeline, args, out)
    print(f"wrote {frames} frame predictions to {args.out}")
    return 0


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
            save_png(out / "masks" / f"{name}.png", result.mask)
    doc = {
        "source": str(args.source),
        "target": str(args.target),
        "preset": pipeline.preset.name,
        "frames": frames,
    }
    atomic_write_json(out / "predictions.json", doc)
    return sum(not f["skipped"] for f in frames.values())
