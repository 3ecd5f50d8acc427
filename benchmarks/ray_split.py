"""Wall time of `lmeec run` on a synthetic split, serial vs `--ray --workers N`, and whether the outputs are
byte-identical.

    python benchmarks/ray_split.py --engines ENGINES --takes 6 --workers 2
"""

from __future__ import annotations

import argparse
import filecmp
import os
import tempfile
import time
from pathlib import Path

from lmeec.cli import main as lmeec
from lmeec.eval.synth import SynthConfig, synthesize


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if files != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", required=True)
    parser.add_argument("--takes", type=int, default=6)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        relations = synthesize(root / "synth", SynthConfig(takes=args.takes, frames=args.frames, scale=0.25))
        common = ["run", "--engines", args.engines, "--annotations", str(relations)]
        t0 = time.perf_counter()
        assert lmeec([*common, "--out", str(root / "serial")]) == 0
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert lmeec([*common, "--ray", "--workers", str(args.workers), "--out", str(root / "ray")]) == 0
        ray = time.perf_counter() - t0
        identical = same_tree(root / "serial", root / "ray")
    print(
        f"{args.takes} takes, {os.cpu_count()} CPUs: serial {serial:.1f} s, Ray {args.workers} workers {ray:.1f} s "
        f"(x{serial / ray:.2f}, Ray start-up included); outputs byte-identical: {identical}"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
