"""Per-frame cost of the prompted mode: source tracker vs LM-EEC step, with and without a shared encoder.

PyTorch reference on this machine's CPU, random weights, the tracker at LM-EEC's image size (so the encoder
can be shared). Interleaved runs, median per-frame milliseconds after the prompt frame.

    python benchmarks/prompt_cost.py --preset t --frames 8 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lmeec.model.prompted import PromptedCorrespondence
from lmeec.model.source_tracker import Prompt, SourceTracker
from lmeec.model.tracker import Correspondence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="t")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    source = [rng.integers(0, 255, (360, 480, 3), dtype=np.uint8) for _ in range(args.frames)]
    target = [rng.integers(0, 255, (270, 480, 3), dtype=np.uint8) for _ in range(args.frames)]
    mask = np.zeros((360, 480), bool)
    mask[100:250, 150:300] = True

    def pair() -> tuple[Correspondence, SourceTracker]:  # each variant keeps its own take state
        c = Correspondence(args.preset)
        return c, SourceTracker(args.preset, image_size=c.preset.image_size)

    correspondence, tracker = pair()
    runs = {
        "separate": PromptedCorrespondence(*pair()),
        "shared": PromptedCorrespondence(*pair(), share_encoder=True),
    }
    times: dict[str, list[float]] = {"lmeec step (given mask)": [], "tracker step": []}
    times |= {f"prompted, {k} encoder": [] for k in runs}
    for run in runs.values():
        run.reset(Prompt(mask=mask), 0, num_frames=args.frames)
        run.step(source[0], target[0])  # the prompt frame (not timed)
    correspondence.reset(num_frames=args.frames)
    tracker.reset(num_frames=args.frames)
    tracker.prompt(source[0], Prompt(mask=mask))
    correspondence.step(source[0], mask, target[0])
    for t in range(1, args.frames):  # interleaved, so that a busy moment hits every variant alike
        src, tgt = source[t], target[t]
        steps = {
            "lmeec step (given mask)": lambda s=src, g=tgt: correspondence.step(s, mask, g),
            "tracker step": lambda s=src: tracker.step(s),
        }
        steps |= {f"prompted, {k} encoder": (lambda r=r, s=src, g=tgt: r.step(s, g)) for k, r in runs.items()}
        for key, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(1000 * (time.perf_counter() - t0))
    print(
        f"preset {args.preset} at {correspondence.preset.image_size}, {args.threads} threads, "
        f"{args.frames - 1} timed frames, median (min) ms per frame"
    )
    for key, values in times.items():
        print(f"  {key:<28} {statistics.median(values):8.1f} ({min(values):.1f})")


if __name__ == "__main__":
    main()
