"""§2 data loss: --out never overlaps the working directory or an input, --force replaces only lmeec's own
outputs (marker file), single-file outputs are not overwritten silently, and refusals come before the work."""

from __future__ import annotations

import json

from lmeec.files import MARKER
from tests.faults.conftest import errors, run_take_args, snapshot


def _assert_refused(rc, lines, *words):
    assert rc == 2, lines
    (line,) = errors(lines)
    for word in words:
        assert word in line, line


def test_out_is_the_working_directory(sandbox, cli, test_engines):
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", "."), "--force")
    _assert_refused(rc, lines, "working directory")
    assert snapshot(sandbox) == before


def test_out_is_an_ancestor_of_the_working_directory(sandbox, cli, test_engines, monkeypatch):
    monkeypatch.chdir(sandbox / "work" / "notes")
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "work"), "--force")
    _assert_refused(rc, lines, "working directory", str(sandbox / "work"))
    assert snapshot(sandbox) == before


def test_out_equal_to_an_input(sandbox, cli, test_engines):
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "data" / "masks"), "--force")
    _assert_refused(rc, lines, "overlaps the input", "masks")
    assert snapshot(sandbox) == before


def test_out_inside_an_input(sandbox, cli, test_engines):
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "data" / "src" / "o"))
    _assert_refused(rc, lines, "overlaps the input", "src")
    assert snapshot(sandbox) == before


def test_out_containing_an_input(sandbox, cli, test_engines):
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "data"), "--force")
    _assert_refused(rc, lines, "overlaps the input")
    assert snapshot(sandbox) == before


def test_out_containing_the_engines(sandbox, cli, test_engines, tmp_path):
    import shutil

    engines = shutil.copytree(test_engines, tmp_path / "box" / "engines")
    before = snapshot(tmp_path)
    rc, lines = cli(*run_take_args(engines, sandbox / "data", tmp_path / "box"), "--force")
    _assert_refused(rc, lines, "overlaps the input", "engines")
    assert snapshot(tmp_path) == before


def test_force_refuses_a_folder_lmeec_did_not_write(sandbox, cli, test_engines):
    user = sandbox / "work" / "results"
    user.mkdir()
    (user / "thesis.tex").write_text("do not delete")
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", user), "--force")
    _assert_refused(rc, lines, "not written by lmeec", MARKER, "results")
    assert snapshot(sandbox) == before


def test_existing_out_without_force(sandbox, cli, test_engines):
    (sandbox / "out").mkdir()
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "out"))
    _assert_refused(rc, lines, "already exists", "--force")
    assert snapshot(sandbox) == before


def test_force_replaces_a_previous_lmeec_output(sandbox, cli, test_engines):
    out = sandbox / "out"
    assert cli(*run_take_args(test_engines, sandbox / "data", out))[0] == 0
    assert (out / MARKER).is_file()
    first = snapshot(out)
    (out / "stale.txt").write_text("from an older run")
    rc, _ = cli(*run_take_args(test_engines, sandbox / "data", out), "--force")
    assert rc == 0
    assert snapshot(out) == first  # replaced as a whole: same predictions, the stale file gone
    assert not [p for p in sandbox.iterdir() if p.name.endswith((".tmp", ".old"))]


def test_force_with_out_a_file_fails_before_the_run(sandbox, cli, test_engines):
    target = sandbox / "work" / "predictions.json"
    target.write_text("{}")
    before = snapshot(sandbox)
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", target), "--force")
    _assert_refused(rc, lines, "is a file", "predictions.json")
    assert snapshot(sandbox) == before


def test_export_force_refuses_a_user_folder(sandbox, cli):
    user = sandbox / "work" / "notes"
    before = snapshot(sandbox)
    rc, lines = cli("export", "onnx", "--preset", "test", "--random-weights", "0", "--out", user, "--force")
    _assert_refused(rc, lines, "not written by lmeec")
    assert snapshot(sandbox) == before


def test_checkpoint_random_does_not_overwrite(sandbox, cli):
    path = sandbox / "work" / "sentinel.txt"
    before = snapshot(sandbox)
    rc, lines = cli("checkpoint", "random", "--preset", "test", "--out", path)
    _assert_refused(rc, lines, "already exists", "sentinel.txt")
    assert snapshot(sandbox) == before
    rc, lines = cli("checkpoint", "random", "--preset", "test", "--out", sandbox / "ckpt.pt", "--force")
    assert rc == 0  # a new path: written
    rc, lines = cli("checkpoint", "random", "--preset", "test", "--out", sandbox / "work", "--force")
    _assert_refused(rc, lines, "working directory")


def test_data_synth_refuses_an_existing_folder(sandbox, cli):
    out = sandbox / "work" / "notes"
    before = snapshot(sandbox)
    rc, lines = cli("data", "synth", "--out", out, "--takes", "1", "--frames", "4", "--scale", "0.1")
    _assert_refused(rc, lines, "already exists")
    assert snapshot(sandbox) == before
    rc, lines = cli(
        "data", "synth", "--out", out, "--takes", "1", "--frames", "4", "--scale", "0.1", "--force"
    )
    _assert_refused(rc, lines, "not written by lmeec")
    assert snapshot(sandbox) == before


def test_data_synth_force_replaces_whole(sandbox, cli):
    out = sandbox / "synth"
    args = ["data", "synth", "--out", out, "--frames", "4", "--scale", "0.1"]
    assert cli(*args, "--takes", "2")[0] == 0
    two = {p.name for p in out.iterdir()}
    assert cli(*args, "--takes", "1", "--seed", "5", "--force")[0] == 0
    takes = json.loads((out / "relations_synth.json").read_text())["annotations"]
    dirs = {p.name for p in out.iterdir() if p.is_dir()}
    assert dirs == set(takes) and len(takes) == 1  # nothing of the first run merged in
    assert two != {p.name for p in out.iterdir()}


def test_data_baseline_does_not_overwrite(sandbox, cli):
    assert (
        cli("data", "synth", "--out", sandbox / "s", "--takes", "1", "--frames", "4", "--scale", "0.1")[0]
        == 0
    )
    before = snapshot(sandbox)
    rc, lines = cli("data", "baseline", "copy", "--annotations", sandbox / "s" / "relations_synth.json",
                    "--out", sandbox / "work" / "sentinel.txt")  # fmt: skip
    _assert_refused(rc, lines, "already exists", "sentinel.txt")
    assert snapshot(sandbox) == before


def test_bench_out_refused_before_the_run(sandbox, cli, test_engines):
    before = snapshot(sandbox)
    args = [
        "bench",
        "--preset",
        "test",
        "--engines",
        test_engines,
        "--frames",
        "1",
        "--no-progress",
        "--no-plot",
    ]
    rc, lines = cli(*args, "--out", sandbox / "work")
    _assert_refused(rc, lines, "working directory")
    rc, lines = cli(*args, "--out", sandbox / "work" / "sentinel.txt" / "res")  # a file as parent: unwritable
    _assert_refused(rc, lines, "cannot write")
    assert not any("step" in ln for ln in lines)  # refused before measuring anything
    assert snapshot(sandbox) == before
