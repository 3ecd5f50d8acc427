"""§2 weight provenance: recorded in checkpoints lmeec writes, in manifests and in every output; a one-line
warning wherever masks come from random weights."""

from __future__ import annotations

import json

import pytest

from lmeec.model.checkpoint import read_checkpoint
from tests.faults.conftest import errors, run_take_args


def _warnings(lines):
    return [ln for ln in lines if ": warning: " in ln and "RANDOM weights" in ln]


def test_run_records_and_warns_random_weights(sandbox, cli, test_engines):
    out = sandbox / "o"
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", out))
    assert rc == 0
    (warning,) = _warnings(lines)
    assert "seed 0" in warning and "NOT meaningful" in warning
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["weights"]["weights"] == "random" and doc["weights"]["seed"] == 0
    assert json.loads((out / "run.json").read_text())["weights"] == doc["weights"]


def test_run_torch_backend_without_checkpoint_warns(sandbox, cli):
    args = ["run", "--backend", "torch", "--preset", "test", "--source", sandbox / "data" / "src"]
    args += ["--source-masks", sandbox / "data" / "masks", "--target", sandbox / "data" / "tgt"]
    rc, lines = cli(*args, "--out", sandbox / "o", "--no-progress")
    assert rc == 0, lines
    assert len(_warnings(lines)) == 1
    weights = json.loads((sandbox / "o" / "predictions.json").read_text())["weights"]
    assert weights == {"weights": "random", "seed": 0}


def test_random_checkpoint_carries_its_provenance_into_the_export(tmp_path, cli):
    ckpt = tmp_path / "r.pt"
    rc, lines = cli("checkpoint", "random", "--preset", "test", "--seed", "3", "--out", ckpt)
    assert rc == 0
    assert read_checkpoint(ckpt).provenance == {"weights": "random", "seed": 3, "preset": "test"}
    rc, lines = cli(
        "export", "onnx", "--preset", "test", "--checkpoint", ckpt, "--out", tmp_path / "e", "--no-simplify"
    )
    assert rc == 0, lines
    (warning,) = _warnings(lines)
    assert "seed 3" in warning and "r.pt" in warning
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())["checkpoint"]
    assert manifest["weights"] == "random" and manifest["seed"] == 3 and len(manifest["sha256"]) == 64
    assert "random_seed" not in manifest  # the torch backend must load the file, not rebuild from a seed
    # The torch backend then asks for the file, and does not call it "trained weights".
    rc, lines = cli("run", "--backend", "torch", "--engines", tmp_path / "e", "--source", "x",
                    "--source-masks", "y", "--target", "z", "--out", tmp_path / "o")  # fmt: skip
    (line,) = errors(lines)
    assert rc == 2 and "exported from checkpoint" in line and "r.pt" in line and "trained" not in line


def test_correspondence_without_checkpoint_warns():
    from lmeec.model.tracker import Correspondence

    with pytest.warns(UserWarning, match=r"RANDOM weights \(seed 4\)") as record:
        tracker = Correspondence("test", seed=4)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert tracker.weights == {"weights": "random", "seed": 4}
