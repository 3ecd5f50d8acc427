"""§2 SIGTERM / SIGINT during `lmeec run`: exit 143 / 130 with one line, no temp output left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import run_take_args, snapshot, write_take

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_signal_leaves_no_partial_output(sig, code, word, tmp_path, test_engines):
    data = write_take(tmp_path / "d", names=tuple(str(i) for i in range(150)))
    before = snapshot(tmp_path)
    argv = [sys.executable, "-m", "lmeec.cli", *map(str, run_take_args(test_engines, data, tmp_path / "o"))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # wait until masks are being written
        temps = [p for p in tmp_path.glob(".o.*.tmp") if len(list((p / "masks").glob("*.png"))) >= 2]
        if temps:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln]
    assert lines == [
        f"lmeec run: {'terminated' if code == 143 else 'interrupted'} ({word}); no partial output was kept"
    ]
    assert snapshot(tmp_path) == before  # no .o.*.tmp, no o/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
