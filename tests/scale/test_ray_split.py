"""`lmeec run --ray` on a synthetic split of 6 takes: byte-identical to the serial run, also when a worker is
killed mid-run and when a stopped run is continued. Each take's 3 objects walk the same frames, so each take
is one pass (the test engines hold 3 objects)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lmeec[ray]')")

from lmeec.cli import main  # noqa: E402
from lmeec.cli.run_ray import journal_folder  # noqa: E402
from lmeec.eval.synth import SynthConfig, synthesize  # noqa: E402
from lmeec.scale import scheduler  # noqa: E402

SPLIT = SynthConfig(takes=6, frames=4, scale=0.1, seed=5)
# the interrupted runs use half the split (the whole split's byte-identity is the first test's)
HALF = 3


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (runs join it rather than starting their own)."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def split(tmp_path_factory, test_engines):
    """The split, its serial run, and the run arguments without --out."""
    root = tmp_path_factory.mktemp("split")
    relations = synthesize(root / "synth", SPLIT)
    args = ["run", "--engines", str(test_engines), "--annotations", str(relations), "--direction", "ego-exo"]
    assert main([*args, "--threads", "1", "--out", str(root / "serial")]) == 0
    takes = list(json.loads(relations.read_bytes())["annotations"])
    return args, root / "serial", takes


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _same_as_serial_for(takes: list[str], out: Path, serial: Path) -> None:
    """The Ray run of some takes wrote exactly the serial run's predictions and PNGs for them."""
    got, want = (
        json.loads((d / "predictions.json").read_bytes())["ego-exo"]["results"] for d in (out, serial)
    )
    assert list(got) == takes and got == {t: want[t] for t in takes}
    for take in takes:
        assert _files(out / "masks" / take) == _files(serial / "masks" / take)


def _with_on_unit(monkeypatch, hook) -> None:
    """Run `hook(progress)` after each finished unit (besides the CLI's own progress bar)."""
    real = scheduler.run_units

    def run_units(*a, on_unit=None, **kw):
        def both(progress):
            on_unit(progress)
            hook(progress)

        return real(*a, on_unit=both, **kw)

    monkeypatch.setattr(scheduler, "run_units", run_units)


def test_two_workers_write_what_the_serial_run_writes(split, local_ray, tmp_path, capsys):
    args, serial, _ = split
    expected = _files(serial)
    assert len(expected) > 40 and "predictions.json" in expected  # submission + one PNG per counted frame
    assert main([*args, "--ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    assert "on 2 Ray workers" in capsys.readouterr().out
    got = _files(tmp_path / "ray")
    # run.json says how each run ran (Ray workers vs one process); the weights it records are the same
    assert json.loads(got.pop("run.json"))["weights"] == json.loads(expected.pop("run.json"))["weights"]
    assert got == expected  # the submission, every PNG and the output marker, byte for byte
    assert not journal_folder(tmp_path / "ray").exists()


def test_a_killed_worker_is_replaced_and_the_output_is_the_same(
    split, local_ray, tmp_path, monkeypatch, capsys
):
    args, serial, takes = split
    args += [a for t in takes[:HALF] for a in ("--take", t)]
    killed = []

    def kill_the_worker_given_the_next_pass(progress):
        # the scheduler hands a worker its next pass before reporting the finished one, so with 3 passes on
        # 2 workers the worker that just finished is mid-pass (the other one may already be idle)
        if not killed:
            killed.append(progress.worker_pid)
            os.kill(progress.worker_pid, signal.SIGKILL)

    _with_on_unit(monkeypatch, kill_the_worker_given_the_next_pass)
    assert main([*args, "--ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    assert killed and "1 workers lost and replaced" in capsys.readouterr().out
    _same_as_serial_for(takes[:HALF], tmp_path / "ray", serial)


def test_a_stopped_run_continues_from_its_finished_units(split, local_ray, tmp_path, monkeypatch, capsys):
    args, serial, takes = split
    args += [a for t in takes[:HALF] for a in ("--take", t)]
    out = tmp_path / "ray"

    def stop_after_two(progress):
        if progress.done == 2:
            raise KeyboardInterrupt

    _with_on_unit(monkeypatch, stop_after_two)
    assert main([*args, "--ray", "--workers", "2", "--out", str(out)]) == 130  # Ctrl-C: lmeec's exit code
    assert "the same command continues the run" in capsys.readouterr().out
    assert not out.exists()
    assert len(list(journal_folder(out).glob("*.json"))) == 1 + 2  # run.json + two passes
    # other settings cannot continue it
    assert main([*args, "--confidence", "score", "--ray", "--out", str(out)]) == 2
    assert "other settings (confidence)" in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*args, "--ray", "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out  # the one pass left runs on one worker
    assert f"{3 * HALF} units in {HALF - 2} passes on 1 Ray workers, 2 passes resumed" in printed
    _same_as_serial_for(takes[:HALF], out, serial)
    assert not journal_folder(out).exists()


def test_a_worker_that_cannot_open_the_backend_fails_the_run_cleanly(split, local_ray, tmp_path, capsys):
    args, _, _ = split
    args = [a if not a.endswith("test-seed0") else str(tmp_path / "missing") for a in args]
    assert main([*args, "--ray", "--workers", "1", "--out", str(tmp_path / "ray")]) == 2
    err = capsys.readouterr().err
    assert "lmeec run: error:" in err and "missing/manifest.json: no such file" in err
    assert not (tmp_path / "ray").exists()
