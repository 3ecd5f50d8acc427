"""Per-frame cost of the prompted mode: source tracker vs LM-EEC step, separate vs shared encoder, torch vs ort.

Random weights, the tracker at LM-EEC's image size (so the encoder can be shared), this machine's CPU.
All rows run interleaved frame by frame (a busy moment hits every row alike); median (min) ms per frame
after the prompt frame. Rows:
  lmeec step             the reference Correspondence with a given source mask (image encoder on both views)
  tracker step (torch)   SourceTracker, its stages eager (image encoder on the source view + memory path)
  tracker step (ort)     the same stages exported to ONNX, run by the ort backend (with --ort)
  tracker memory path    the tracker given the source features (what it adds when the encoder is shared)
  prompted, separate     tracker + LM-EEC, each encoding the source frame
  prompted, shared       tracker + LM-EEC with --share-encoder: the source frame encoded once

    python benchmarks/tracker_cost.py --preset t --frames 4 --threads 2 --ort
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from lmeec.model.preprocess import frame_to_tensor
from lmeec.model.prompted import PromptedCorrespondence
from lmeec.model.source_tracker import Prompt, SourceTracker
from lmeec.model.tracker import Correspondence


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="t")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ort", action="store_true", help="also the tracker's stages on ONNX Runtime")
    parser.add_argument("--tracker-engines", help="exported tracker folder (default: export one now)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # random weights: said in the header below

    rng = np.random.default_rng(0)
    source = [rng.integers(0, 255, (360, 480, 3), dtype=np.uint8) for _ in range(args.frames)]
    target = [rng.integers(0, 255, (270, 480, 3), dtype=np.uint8) for _ in range(args.frames)]
    mask = np.zeros((360, 480), bool)
    mask[100:250, 150:300] = True

    def lmeec() -> Correspondence:
        return Correspondence(args.preset)

    size = lmeec().preset.image_size

    def tracker() -> SourceTracker:
        return SourceTracker(args.preset, image_size=size)

    trackers = {"tracker step (torch)": tracker(), "tracker memory path": tracker()}
    if args.ort:
        from lmeec.export.onnx import export_tracker_onnx
        from lmeec.runtime.source_tracking import open_source_tracker

        folder = args.tracker_engines
        if folder is None:
            folder = Path(tempfile.mkdtemp()) / "tracker"
            t0 = time.perf_counter()
            export_tracker_onnx(tracker().model, folder, None, seed=0, simplify=False, progress=False)
            print(f"exported the tracker stages in {time.perf_counter() - t0:.0f} s")
        trackers["tracker step (ort)"] = open_source_tracker("ort", engines=folder, threads=args.threads)[0]
    correspondence = lmeec()
    runs = {
        "prompted, separate": PromptedCorrespondence(lmeec(), tracker()),
        "prompted, shared": PromptedCorrespondence(lmeec(), tracker(), share_encoder=True),
    }
    for run in runs.values():
        run.reset(Prompt(mask=mask), 0, num_frames=args.frames)
        run.step(source[0], target[0])  # the prompt frame (not timed)
    for tr in trackers.values():
        tr.reset(num_frames=args.frames)
        tr.prompt(source[0], Prompt(mask=mask))
    correspondence.reset(num_frames=args.frames)
    correspondence.step(source[0], mask, target[0])
    encoder = trackers["tracker memory path"].model
    with torch.no_grad():  # the source features, computed outside the timed memory-path row
        features = [encoder.encode_frames(frame_to_tensor(f, size)[None]) for f in source]

    times: dict[str, list[float]] = {"lmeec step": []} | {k: [] for k in trackers} | {k: [] for k in runs}
    for t in range(1, args.frames):
        src, tgt = source[t], target[t]
        steps = {"lmeec step": lambda s=src, g=tgt: correspondence.step(s, mask, g)}
        for key, tr in trackers.items():
            shared = features[t] if key == "tracker memory path" else None
            steps[key] = lambda tr=tr, s=src, f=shared: tr.step(s, features=f)
        steps |= {k: (lambda r=r, s=src, g=tgt: r.step(s, g)) for k, r in runs.items()}
        for key, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(1000 * (time.perf_counter() - t0))
    print(
        f"CPU {cpu_model()}, {args.threads} threads; preset {args.preset} at {size}, RANDOM weights; "
        f"frames 360x480 -> 270x480; {args.frames - 1} timed frames; ms per frame, median (min)"
    )
    for key, values in times.items():
        print(f"  {key:<24} {statistics.median(values):9.1f} ({min(values):.1f})")


if __name__ == "__main__":
    main()
