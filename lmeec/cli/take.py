"""`lmeec run` on your own video: one prompt instead of a mask per frame, live captures, overlay pictures.

Hooked into `lmeec run` when --prompt-* or a live view (camera index, stream URL, --live) is given (the plain
one-take mode with --source-masks draws its own --overlay).
Outputs as the one-take mode (masks/NAME.png, predictions.json) plus source_masks/NAME.png (the source mask
used: given, or tracked from the prompt), all written atomically; a live take that stops (Ctrl-C, or one
view ending) keeps what was written so far.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image

from lmeec.cli.options import resolve_device
from lmeec.cli.split import save_png


def add_arguments(run: argparse.ArgumentParser) -> None:
    """The prompted / live / overlay options of `lmeec run`."""
    g = run.add_argument_group("your own video (one prompt, live views, pictures)")
    g.add_argument("--prompt-mask", help="PNG mask of the object on the prompt frame (source view)")
    g.add_argument("--prompt-box", help="x0,y0,x1,y1 box around the object on the prompt frame (pixels)")
    g.add_argument(
        "--prompt-points",
        nargs="+",
        metavar="X,Y,LABEL",
        help="clicks on the prompt frame: label 1 object, 0 not",
    )
    g.add_argument("--prompt-frame", type=int, default=0, help="source frame index of the prompt (default 0)")
    g.add_argument("--tracker-checkpoint", help="SAM 2.1 checkpoint (t, s, b+ or l) for the source tracker")
    g.add_argument(
        "--tracker-size", type=int, help="tracker image size (default: 1024 with a checkpoint, else LM-EEC's)"
    )
    g.add_argument(
        "--tracker-backend",
        choices=["torch", "ort"],
        help="who runs the tracker's per-frame stages (default: ort with --tracker-engines, else torch)",
    )
    g.add_argument("--tracker-engines", help="exported tracker folder (`lmeec export tracker-onnx`)")
    g.add_argument(
        "--share-encoder",
        action="store_true",
        help="encode the source frame once for tracker and LM-EEC (same trunk and size; --backend torch)",
    )
    g.add_argument("--overlay", help="side-by-side pictures: out.mp4 or a folder of PNGs")
    g.add_argument(
        "--live", action="store_true", help="read --source/--target as streams of unknown length (OpenCV)"
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether this run goes through this module rather than the plain one-take loop."""
    live = any(spec is not None and _is_live(spec) for spec in (args.source, args.target))
    return bool(args.prompt_mask or args.prompt_box or args.prompt_points or args.live or live)


def _is_live(spec: str) -> bool:
    from lmeec.runtime.live import is_live

    return is_live(spec)


def parse_prompt(args: argparse.Namespace):
    """The Prompt from --prompt-mask / --prompt-box / --prompt-points (None without one)."""
    from lmeec.model.source_tracker import Prompt

    given = [x for x in (args.prompt_mask, args.prompt_box, args.prompt_points) if x]
    if len(given) > 1 and args.prompt_mask:
        raise ValueError("give --prompt-mask, or --prompt-box and/or --prompt-points, not both kinds")
    if not given:
        return None
    if args.prompt_mask:
        path = Path(args.prompt_mask)
        if not path.is_file():
            raise FileNotFoundError(f"prompt mask {path} does not exist")
        with Image.open(path) as image:
            return Prompt(mask=np.asarray(image.convert("L")) > 0)
    box = None
    if args.prompt_box:
        box = tuple(_numbers(args.prompt_box, 4, "--prompt-box x0,y0,x1,y1"))
    points = tuple(
        (x, y, int(lab))
        for x, y, lab in (_numbers(p, 3, "--prompt-points x,y,label") for p in args.prompt_points or ())
    )
    return Prompt(box=box, points=points)


def _numbers(text: str, n: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} comma-separated numbers, got {text!r}")
    return values


def cmd_run_take(args: argparse.Namespace) -> int:
    """Run one take (files or live views) from a prompt, optionally writing an overlay."""
    from lmeec.cli.split import open_pipeline, pipeline_options

    if args.annotations is not None or args.source is None or args.target is None:
        raise ValueError("a prompted or live run needs --source and --target (and no --annotations)")
    prompt = parse_prompt(args)
    if args.share_encoder and args.backend != "torch":
        raise ValueError("--share-encoder runs LM-EEC on the PyTorch reference: use it with --backend torch")
    if prompt is None:  # only live views come here without a prompt
        raise ValueError(
            "live views need a prompt on the source view (--prompt-mask/--prompt-box/--prompt-points); "
            "--source-masks reads mask files named like the frames of a file take"
        )
    if args.source_masks is not None:
        raise ValueError(
            "give either a prompt (--prompt-mask/--prompt-box/--prompt-points) or --source-masks"
        )
    live = args.live or _is_live(args.source) or _is_live(args.target)
    names, pairs, length = _open_views(args, live)
    if length is not None and not 0 <= args.prompt_frame < length:
        raise ValueError(f"--prompt-frame {args.prompt_frame} is not in the video (frames 0 to {length - 1})")
    pipeline = open_pipeline(**pipeline_options(args))  # device auto resolved as for plain runs
    stepper = _stepper(args, pipeline, prompt, length)
    random_weights = _random_weights(args)
    overlay = None
    if args.overlay:
        from lmeec.cli.overlay import Overlay

        overlay = Overlay(args.overlay, random_weights=random_weights)
    with overlay or nullcontext():
        frames, stopped = _run(
            stepper, names, pairs, overlay, args, live, pipeline.preset.name, random_weights
        )
    written = overlay.close() if overlay is not None else None
    print(f"wrote {sum(not f['skipped'] for f in frames.values())} frame predictions to {args.out}")
    if written is not None:
        print(f"overlay: {written}")
    if stopped is not None:
        raise stopped
    return 0


def _run(stepper, names, pairs, overlay, args, live, preset, random_weights):
    """The take into an atomic output folder; a Ctrl-C or a stopped stream keeps the frames done so far."""
    from lmeec.files import atomic_dir, atomic_write_json
    from lmeec.runtime.live import StreamStopped

    stopped: StreamStopped | None = None
    frames: dict[str, dict] = {}
    with atomic_dir(args.out, overwrite=args.force) as out:
        try:
            _loop(stepper, zip(names, pairs), out, frames, overlay, args, live)
        except KeyboardInterrupt:
            print(f"\nstopped (Ctrl-C) after {len(frames)} frames; writing what was done", file=sys.stderr)
        except StreamStopped as exc:
            stopped = exc  # keep the frames so far, then fail
        doc = {
            "source": str(args.source),
            "target": str(args.target),
            "preset": preset,
            "prompt_frame": args.prompt_frame,
            "random_weights": random_weights,
            "frames": frames,
        }
        atomic_write_json(out / "predictions.json", doc)
    return frames, stopped


def _open_views(args: argparse.Namespace, live: bool) -> tuple[Iterator[str], Iterator, int | None]:
    """Frame names, (source, target) pairs and the take length (None when live)."""
    import itertools

    if live:
        from lmeec.runtime.live import frame_pairs

        return (f"{i:06d}" for i in itertools.count()), frame_pairs(args.source, args.target), None
    from lmeec.runtime.takes import FrameSource

    source, target = FrameSource(args.source, "source"), FrameSource(args.target, "target")
    if len(source) != len(target):
        raise ValueError(
            f"source has {len(source)} frames but target has {len(target)}: views must be synchronised"
        )
    return iter(source.names), zip(source, target), len(source)


def _stepper(args: argparse.Namespace, pipeline, prompt, length: int | None):
    """A PromptedCorrespondence: the source tracker from the prompt, LM-EEC (the pipeline) to the target."""
    from lmeec.model.prompted import PromptedCorrespondence
    from lmeec.runtime.source_tracking import open_source_tracker

    device = resolve_device(args.device, "torch")
    trunk = _tracker_trunk(args.tracker_checkpoint, pipeline.preset.name)
    size = args.tracker_size or (None if args.tracker_checkpoint else pipeline.preset.image_size)
    kind = args.tracker_backend or ("ort" if args.tracker_engines else "torch")
    if kind == "torch" and args.tracker_engines:
        raise ValueError("--tracker-engines is read by --tracker-backend ort, not torch")
    tracker, _ = open_source_tracker(
        kind,
        engines=args.tracker_engines,
        trunk=trunk,
        checkpoint=args.tracker_checkpoint,
        image_size=size,
        device=device,
        threads=args.threads,
    )
    correspondence = _shared_reference(args, pipeline, device) if args.share_encoder else pipeline
    prompted = PromptedCorrespondence(correspondence, tracker, share_encoder=args.share_encoder)
    prompted.reset(prompt, args.prompt_frame, num_frames=length)
    return prompted


def _shared_reference(args: argparse.Namespace, pipeline, device):
    """LM-EEC for --share-encoder: the PyTorch reference with the torch backend's weights, whose image
    features of the source frame the tracker can take (the exported pipeline encodes both views in one graph)."""
    import warnings

    from lmeec.model.tracker import Correspondence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: already said for the pipeline
        reference = Correspondence(pipeline.preset, device=device)
    reference.model.load_state_dict(pipeline.backend.model.state_dict())  # the very weights of the pipeline
    reference.weights = pipeline.backend.weights
    return reference


def _tracker_trunk(checkpoint: str | None, lmeec_preset: str) -> str:
    """The SAM 2.1 trunk a tracker checkpoint fits (random weights: LM-EEC's own trunk)."""
    from lmeec.model.checkpoint import MOE_PREFIX, check_fit, read_checkpoint
    from lmeec.model.source_tracker import TRACKER_TRUNKS, tracker_preset

    if checkpoint is None:
        return lmeec_preset if lmeec_preset in (*TRACKER_TRUNKS, "test") else "t"
    state = {k: v for k, v in read_checkpoint(checkpoint).state_dict.items() if not k.startswith(MOE_PREFIX)}
    for trunk in TRACKER_TRUNKS:
        if check_fit(state, tracker_preset(trunk), allow_missing_moe=True).fits:
            return trunk
    raise ValueError(f"{checkpoint} fits none of the SAM 2.1 trackers ({', '.join(TRACKER_TRUNKS)})")


def _random_weights(args: argparse.Namespace) -> bool:
    """Whether any model of this run has untrained weights (engines record their checkpoint)."""
    if args.tracker_checkpoint is None:
        return True
    if args.engines:
        from lmeec.export.manifest import read_manifest

        return "random_seed" in read_manifest(args.engines).checkpoint
    return args.checkpoint is None


def _loop(stepper, named_pairs, out: Path, frames: dict, overlay, args, live: bool) -> None:
    """Step every pair, write its masks, add its overlay picture, print a running rate on live takes."""
    try:
        _steps(stepper, named_pairs, out, frames, overlay, args, live)
    finally:
        if live and frames:
            print(file=sys.stderr)  # end the running status line


def _steps(stepper, named_pairs, out: Path, frames: dict, overlay, args, live: bool) -> None:
    from lmeec.eval.rle import encode_rle

    started, last_report = time.perf_counter(), 0.0
    for name, (src, tgt) in named_pairs:
        t0 = time.perf_counter()
        result = stepper.step(src, tgt)
        source_mask = result.source.mask if result.source is not None else None
        ms = 1000 * (time.perf_counter() - t0)
        r = result.target
        if source_mask is not None:
            save_png(out / "source_masks" / f"{name}.png", source_mask)
        if r.skipped:
            frames[name] = {"skipped": True, "ms": round(ms, 2)}
        else:
            frames[name] = {
                "skipped": False,
                "mask": encode_rle(r.mask),
                "visible": r.visible,
                "confidence": r.confidence,
                "object_score": r.object_score,
                "ms": round(ms, 2),
            }
            if not args.no_png:
                save_png(out / "masks" / f"{name}.png", r.mask)
        if overlay is not None:
            score = None if r.skipped else r.object_score
            overlay.add(r.frame_index, src, [source_mask], tgt, [None if r.skipped else r.mask], [score], ms)
        now = time.perf_counter()
        if live and now - last_report >= 1.0:
            fps = len(frames) / (now - started)
            print(f"\rframe {r.frame_index}  {fps:5.1f} fps  latency {ms:6.1f} ms", end="", file=sys.stderr)
            last_report = now
