"""`lmeec checkpoint …` and `lmeec demo`: the reference model from the command line."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

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
    random.add_argument("--out", required=True)
    random.set_defaults(func=cmd_random)

    demo = sub.add_parser("demo", help="run the reference tracker over a synthetic take and print each frame")
    demo.add_argument("--preset", default="test", choices=list(PRESETS))
    demo.add_argument("--checkpoint", help="weights (default: seeded random weights)")
    demo.add_argument("--frames", type=int, default=10)
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(func=cmd_demo)


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
    from lmeec.model.network import build_model

    fmt: Format = args.format
    path = save_checkpoint(build_model(args.preset, seed=args.seed), args.out, fmt)
    print(f"wrote {path} ({args.preset}, seed {args.seed}, {fmt}; RANDOM weights, not a trained model)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lmeec.model.tracker import Correspondence

    if args.frames < 1:
        raise ValueError("--frames must be at least 1")
    tracker = Correspondence(args.preset, args.checkpoint, device=args.device)
    print(f"preset {args.preset}; weights: {args.checkpoint or 'seeded RANDOM (masks are not meaningful)'}")
    tracker.reset(num_frames=args.frames)
    rng = np.random.default_rng(0)
    print(
        f"{'frame':>5} {'skipped':>7} {'banks':>7} {'ptrs':>4} {'score':>7} {'conf':>5} {'visible':>7} {'area%':>6} {'ms':>7}"
    )
    for t in range(args.frames):
        src, mask, tgt = _moving_square(rng, t)
        t0 = time.perf_counter()
        r = tracker.step(src, mask, tgt)
        ms = (time.perf_counter() - t0) * 1e3
        if r.skipped:
            print(f"{t:>5} {'yes':>7}")
            continue
        banks = f"{r.bank_sizes[0]}+{r.bank_sizes[1]}"
        print(
            f"{t:>5} {'no':>7} {banks:>7} {len(r.pointer_t_diffs):>4} {r.object_score:>7.3f} {r.confidence:>5.2f}"
            f" {str(r.visible):>7} {100 * r.mask.mean():>6.2f} {ms:>7.1f}"
        )
    return 0


def _moving_square(rng, t: int):
    """A square ego view and a 16:9 exo view of a red square that drifts with t."""
    src = rng.integers(0, 80, (192, 192, 3), dtype=np.uint8)
    tgt = rng.integers(0, 80, (108, 192, 3), dtype=np.uint8)
    y, x = 40 + 2 * t % 60, 50 + 3 * t % 80
    src[y : y + 50, x : x + 50] = (230, 30, 30)
    tgt[40 : 40 + 16, 60 + t % 40 : 76 + t % 40] = (230, 30, 30)
    mask = np.zeros(src.shape[:2], bool)
    mask[y : y + 50, x : x + 50] = True
    return src, mask, tgt
