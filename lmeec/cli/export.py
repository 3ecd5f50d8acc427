"""`lmeec export onnx`: the model as static-shape ONNX graphs plus a manifest."""

from __future__ import annotations

import argparse
import warnings

from lmeec.model.config import PRESETS


def add_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export static-shape graphs")
    formats = export.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="one ONNX file per stage and manifest.json")
    onnx.add_argument("--preset", required=True, choices=list(PRESETS))
    onnx.add_argument("--checkpoint", help="SAM 2.1 or LM-EEC checkpoint (omit only with --random-weights)")
    onnx.add_argument(
        "--random-weights", type=int, metavar="SEED", help="export seeded random weights instead"
    )
    onnx.add_argument(
        "--compression",
        choices=["drop", "mean"],
        default="drop",
        help="bank compression: released (drop) or intended (mean)",
    )
    onnx.add_argument(
        "--source-mask",
        choices=["research", "sam2"],
        default="research",
        help="source-mask encoding: released quirk (0 / 4.62) or SAM 2's ±10",
    )
    onnx.add_argument(
        "--max-objects",
        type=int,
        default=8,
        metavar="K",
        help="most objects tracked at once: per-object stages are exported for K = 1, 2, 4, … up to K (default 8)",
    )
    onnx.add_argument("--out", required=True, help="engine folder to create")
    onnx.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    onnx.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    onnx.set_defaults(func=cmd_onnx)

    tracker = formats.add_parser("tracker-onnx", help="the source tracker's per-frame stages as ONNX")
    tracker.add_argument("--trunk", required=True, help="SAM 2.1 trunk: t, s, b+, l (or test)")
    tracker.add_argument("--checkpoint", help="SAM 2.1 checkpoint (omit only with --random-weights)")
    tracker.add_argument("--random-weights", type=int, metavar="SEED", help="export seeded random weights")
    tracker.add_argument(
        "--size", type=int, help="tracker image size (default: 1024, as SAM 2.1 was trained)"
    )
    tracker.add_argument("--out", required=True, help="engine folder to create")
    tracker.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    tracker.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    tracker.set_defaults(func=cmd_tracker_onnx)


def cmd_onnx(args: argparse.Namespace) -> int:
    from lmeec.export.onnx import export_onnx
    from lmeec.files import check_output
    from lmeec.model.checkpoint import describe_weights, is_random, load_into, random_weights_warning
    from lmeec.model.config import get_preset
    from lmeec.model.network import build_model

    if (args.checkpoint is None) == (args.random_weights is None):
        raise ValueError("give exactly one of --checkpoint FILE or --random-weights SEED")
    check_output(args.out, force=args.force, inputs=[args.checkpoint])
    preset = get_preset(args.preset).with_compression(args.compression).with_source_mask(args.source_mask)
    model = build_model(preset, seed=args.random_weights)
    checkpoint = load_into(model, args.checkpoint) if args.checkpoint else None
    manifest = export_onnx(
        model,
        args.out,
        checkpoint,
        seed=args.random_weights,
        simplify=not args.no_simplify,
        overwrite=args.force,
        max_objects=args.max_objects,
    )
    weights = describe_weights(manifest.checkpoint)
    if is_random(manifest.checkpoint):
        warnings.warn(random_weights_warning(manifest.checkpoint), stacklevel=1)
    print(f"exported {len(manifest.graphs)} graphs for preset {preset.name} from {weights} to {args.out}")
    for name, g in manifest.graphs.items():
        shapes = ", ".join(f"{s.name}{list(s.shape)}" for s in g.inputs)
        print(f"  {name:<26} {g.extra.get('nodes', '?'):>5} nodes  {shapes}")
    return 0


def cmd_tracker_onnx(args: argparse.Namespace) -> int:
    from lmeec.export.onnx import export_tracker_onnx
    from lmeec.files import check_output
    from lmeec.model.checkpoint import describe_weights
    from lmeec.model.source_tracker import SourceTracker

    if (args.checkpoint is None) == (args.random_weights is None):
        raise ValueError("give exactly one of --checkpoint FILE or --random-weights SEED")
    check_output(args.out, force=args.force, inputs=[args.checkpoint])
    seed = args.random_weights or 0
    tracker = SourceTracker(args.trunk, args.checkpoint, image_size=args.size, seed=seed)
    manifest = export_tracker_onnx(
        tracker.model,
        args.out,
        tracker.checkpoint,
        seed=args.random_weights,
        simplify=not args.no_simplify,
        overwrite=args.force,
    )
    size = tracker.preset.image_size
    print(
        f"exported {len(manifest.graphs)} tracker graphs ({tracker.preset.name} at {size}) "
        f"from {describe_weights(manifest.checkpoint)} to {args.out}"
    )
    return 0
