"""One headset's session against `lmeec serve` (tritonclient over HTTP): source frame + its object mask and
the target frame in, the object's target mask out, frame by frame. Frames here are image files.

    lmeec serve --engines engines/onnx --max-sessions 4 &
    python examples/triton_client.py --url 127.0.0.1:8000 --source src/ --source-masks masks/ --target tgt/
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from lmeec.runtime.takes import FrameSource, read_mask
from lmeec.serve.client import HeadsetClient


def main() -> None:
    parser = argparse.ArgumentParser(description="stream one take to lmeec serve")
    parser.add_argument("--url", default="127.0.0.1:8000")
    parser.add_argument("--source", required=True, help="source-view frames (folder or video)")
    parser.add_argument("--source-masks", required=True, help="source masks named like the frames (PNG)")
    parser.add_argument("--target", required=True, help="target-view frames (folder or video)")
    args = parser.parse_args()
    source, target = FrameSource(args.source, "source"), FrameSource(args.target, "target")
    client = HeadsetClient(args.url, session=random.getrandbits(63))  # any id unique among open sessions
    last = len(source) - 1
    for t, (name, src, tgt) in enumerate(zip(source.names, source, target, strict=True)):
        mask = read_mask(Path(args.source_masks), name, src.shape[:2])
        if mask is None:
            mask = np.zeros(src.shape[:2], bool)  # no mask: the server skips the frame, time advances
        r = client.step(src, mask, tgt, last=t == last)
        area = "skipped" if r.skipped else f"{r.mask.mean():.2%} of the frame"
        print(f"{name}: object score {r.object_score:+.2f}, mask {area}")
    client.close()


if __name__ == "__main__":
    main()
