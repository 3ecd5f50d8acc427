"""The session table: each slot gives what a single-session `Pipeline` gives, a full table refuses a new
session, ended and timed-out sessions free their slots."""

from __future__ import annotations

import numpy as np
import pytest

from lmeec.runtime.backend import open_backend
from lmeec.runtime.pipeline import Pipeline
from lmeec.serve.sessions import SessionError, SessionTable
from tests.conftest import synthetic_pair


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def backend(test_engines):
    return open_backend("ort", engines=test_engines, threads=1)


def frames(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return [synthetic_pair(rng, t) for t in range(n)]


def test_interleaved_sessions_match_their_own_pipeline_runs(backend):
    streams = {11: frames(1, 6), 22: frames(2, 6)}
    streams[22][2] = (
        streams[22][2][0],
        np.zeros_like(streams[22][2][1]),
        streams[22][2][2],
    )  # a skipped frame
    table = SessionTable(backend, max_sessions=2)
    served = {s: [] for s in streams}
    for t in range(6):
        for s, fr in streams.items():
            served[s].append(table.step(s, t == 0, t == 5, *fr[t]))
    assert table.open_sessions == []
    for s, fr in streams.items():
        alone = Pipeline(backend)
        alone.reset()
        for got, f in zip(served[s], fr, strict=True):
            want = alone.step(*f)
            assert got.skipped == want.skipped
            if not want.skipped:
                assert np.array_equal(got.mask, want.mask) and np.array_equal(got.logits, want.logits)
                assert got.object_score == want.object_score
    assert served[22][2].skipped and not served[11][2].skipped


def test_a_full_table_refuses_and_ending_frees_a_slot(backend):
    table = SessionTable(backend, max_sessions=2)
    f = frames(3, 1)[0]
    table.step(1, True, False, *f)
    table.step(2, True, False, *f)
    with pytest.raises(SessionError, match=r"server full: 2 sessions open \(--max-sessions 2\)"):
        table.step(3, True, False, *f)
    table.step(1, False, True, *f)  # session 1's last frame
    table.step(3, True, False, *f)
    assert table.open_sessions == [2, 3]
    with pytest.raises(SessionError, match="session 1 is not open"):
        table.step(1, False, False, *f)


def test_idle_sessions_time_out(backend):
    clock = Clock()
    table = SessionTable(backend, max_sessions=1, timeout_s=10, clock=clock)
    f = frames(4, 1)[0]
    table.step(1, True, False, *f)
    clock.now = 9.0
    with pytest.raises(SessionError, match="server full"):
        table.step(2, True, False, *f)
    clock.now = 19.5
    table.step(2, True, False, *f)  # session 1 was idle 10.5 s: its slot is 2's now
    assert table.open_sessions == [2]
    with pytest.raises(SessionError, match="timed out after 10 s idle"):
        table.step(1, False, False, *f)


def test_serve_refuses_a_folder_without_engines(tmp_path, capsys):
    from lmeec.cli import main

    assert main(["serve", "--engines", str(tmp_path / "none"), "--http-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmeec serve: error:")
    assert "none/manifest.json: not an exported engine folder" in err or "tritonserver not found" in err
