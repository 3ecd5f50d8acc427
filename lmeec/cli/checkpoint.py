"""`lmeec checkpoint …`: inspect a checkpoint, or write a seeded random-weight one for tests and demos."""

from __future__ import annotations

import argparse
import json

from lmeec.model.checkpoint import Format, fitting_presets, read_checkpoint, save_checkpoint
from lmeec.model.config import PRESETS


def add_parser(sub: argparse._SubParsersAction) -> None:
    ckpt = sub.add_parser("checkpoint", help="inspect or create checkpoints")
    verbs = ckpt.add_subparsers(dest="verb", required=True, metavar="VERB")
    inspect = verbs.add_parser("inspect", help="print what a checkpoint holds and which presets it fits")
    inspect.add_argument("file")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=cmd_inspect)
    random = verbs.add_parser("random", help="write a seeded random-weight checkpoint (tests and demos only)")
    random.add_argument("--preset", default="test", choices=list(PRESETS))
    random.add_argument("--seed", type=int, default=0)
    random.add_argument("--format", default="lmeec-training", choices=["lmeec-training", "sam2.1", "raw"])
    random.add_argument("--out", required=True, help="checkpoint file to write")
    random.add_argument("--force", action="store_true", help="replace an existing file")
    random.set_defaults(func=cmd_random)


def cmd_inspect(args: argparse.Namespace) -> int:
    ckpt = read_checkpoint(args.file)
    tensors = ckpt.state_dict.values()
    info = {
        "file": str(ckpt.path),
        "format": ckpt.format,
        "tensors": len(ckpt.state_dict),
        "elements": int(sum(t.numel() for t in tensors)),
        "dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in tensors}),
        "has_mv_moe": ckpt.has_moe,
        "fits_presets": fitting_presets(ckpt),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        print(f"{key:>14}: {', '.join(value) if isinstance(value, list) else value}")
    if not info["fits_presets"]:
        print("    warning: fits no preset")
        return 1
    return 0


def cmd_random(args: argparse.Namespace) -> int:
    from lmeec.files import check_output
    from lmeec.model.network import build_model

    fmt: Format = args.format
    check_output(args.out, force=args.force, folder=False)
    provenance = {"weights": "random", "seed": args.seed, "preset": args.preset}
    path = save_checkpoint(build_model(args.preset, seed=args.seed), args.out, fmt, provenance)
    note = "" if fmt != "raw" else "; a raw state dict cannot carry lmeec's random-weights marker"
    print(f"wrote {path} ({args.preset}, seed {args.seed}, {fmt}; RANDOM weights, not a trained model{note})")
    return 0
