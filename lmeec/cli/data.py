"""`lmeec data`: synthetic takes in the EgoExo4D formats, and sanity-baseline predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

from lmeec.eval.annotations import DIRECTIONS, Direction, load_annotations
from lmeec.eval.baselines import OracleReprojection, copy_query, predict
from lmeec.eval.synth import RELATIONS_FILE, SynthConfig, synthesize
from lmeec.files import atomic_dir, check_output


def directions(choice: str) -> list[Direction]:
    """CLI direction choice -> list of directions."""
    return list(DIRECTIONS) if choice == "both" else [choice]  # type: ignore[list-item]


def _synth(args: argparse.Namespace) -> int:
    """Write a synthetic benchmark."""
    config = SynthConfig(
        takes=args.takes,
        frames=args.frames,
        scale=args.scale,
        seed=args.seed,
        video=args.video,
        unannotated=args.unannotated,
    )
    config.validate()
    with atomic_dir(args.out, overwrite=args.force) as tmp:  # never merged into an existing folder
        synthesize(tmp, config)
    path = Path(args.out) / RELATIONS_FILE
    print(f"wrote {config.takes} takes: annotations {path}, frames under {Path(args.out)}")
    return 0


def _baseline(args: argparse.Namespace) -> int:
    """Write baseline predictions as a submission file."""
    check_output(
        args.out, force=args.force, inputs=[args.annotations, args.relations, args.root], folder=False
    )
    annotations = load_annotations(args.annotations, relations=args.relations)
    if args.kind == "copy":
        predictor = copy_query
    else:
        predictor = OracleReprojection(args.root or Path(args.annotations).parent)
    path = predict(annotations, predictor, directions(args.direction)).save(args.out)
    print(f"wrote {args.kind} predictions {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `data` verb."""
    data = subparsers.add_parser("data", help="synthetic EgoExo4D-format takes and baseline predictions")
    verbs = data.add_subparsers(dest="data_command", required=True, metavar="VERB")
    synth = verbs.add_parser("synth", help="render synthetic takes in the raw and processed formats")
    synth.add_argument("--out", required=True, help="output folder (a new one, written atomically)")
    synth.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    synth.add_argument("--takes", type=int, default=SynthConfig.takes)
    synth.add_argument(
        "--frames", type=int, default=SynthConfig.frames, help="annotated frames per take (1 fps)"
    )
    synth.add_argument("--scale", type=float, default=SynthConfig.scale, help="native size / real size")
    synth.add_argument("--seed", type=int, default=SynthConfig.seed)
    synth.add_argument("--video", action="store_true", help="also write an MP4 per camera (needs opencv)")
    synth.add_argument(
        "--unannotated",
        type=float,
        default=SynthConfig.unannotated,
        help="fraction of frames each camera leaves unannotated per object (cameras then list different "
        "annotated frames, as in the real splits)",
    )
    synth.set_defaults(func=_synth)

    base = verbs.add_parser("baseline", help="write sanity-baseline predictions as a submission file")
    base.add_argument("kind", choices=("copy", "oracle"), help="copy the query mask, or oracle reprojection")
    base.add_argument("--annotations", required=True, help=f"annotations (e.g. DIR/{RELATIONS_FILE})")
    base.add_argument("--relations", help="raw relations file, when --annotations is a processed folder")
    base.add_argument("--root", help="synthetic benchmark folder with scene.json per take (oracle)")
    base.add_argument("--direction", choices=(*DIRECTIONS, "both"), default="both")
    base.add_argument("--out", required=True, help="submission JSON to write")
    base.add_argument("--force", action="store_true", help="replace an existing file")
    base.set_defaults(func=_baseline)
