"""Fault-suite helpers: a sandbox of sentinel files that must survive, a tiny one-take layout, the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lmeec.cli import main
from tests.conftest import synthetic_pair


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes), to compare before and after a command."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_take(root: Path, names=("0", "1", "2"), masks=None, mask_suffix=".png") -> Path:
    """src/, tgt/ and masks/ under root: frames named `names`, masks for `masks` (default: every frame)."""
    rng = np.random.default_rng(0)
    for sub in ("src", "tgt", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for t, name in enumerate(names):
        src, mask, tgt = synthetic_pair(rng, t)
        Image.fromarray(src).save(root / "src" / f"{name}.png")
        Image.fromarray(tgt).save(root / "tgt" / f"{name}.png")
        if masks is None or name in masks:
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{name}{mask_suffix}")
    return root


@pytest.fixture()
def sandbox(tmp_path, monkeypatch):
    """tmp/work (the working directory, holding sentinel files) and tmp/data (a take); returns tmp."""
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "sentinel.txt").write_text("keep me")
    (work / "notes" / "n.txt").write_text("keep me too")
    write_take(tmp_path / "data")
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture()
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stderr lines)."""

    def run(*argv) -> tuple[int, list[str]]:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse refusals
            rc = exc.code
        err = capsys.readouterr().err
        return rc, [ln for ln in err.splitlines() if ln.strip()]

    return run


def run_take_args(engines: Path, data: Path, out) -> list:
    return ["run", "--engines", engines, "--source", data / "src", "--source-masks", data / "masks",
            "--target", data / "tgt", "--out", out, "--no-progress"]  # fmt: skip


def errors(lines: list[str]) -> list[str]:
    """The error lines of a CLI's stderr (warnings are allowed beside them)."""
    return [ln for ln in lines if ": error: " in ln]
