"""Checkpoints in every accepted format: round trip, inspection, refusal with the keys named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmeec import Correspondence
from lmeec.cli import main
from lmeec.model.checkpoint import read_checkpoint, save_checkpoint
from lmeec.model.network import build_model
from tests.conftest import synthetic_pair


def _outputs(tracker: Correspondence, n: int = 3):
    rng = np.random.default_rng(3)
    tracker.reset()
    return [tracker.step(*synthetic_pair(rng, t)).logits for t in range(n)]


@pytest.fixture(scope="module")
def reference(test_model):
    tracker = Correspondence("test", seed=123)  # weights differ from a fresh seed-0 model
    return tracker, _outputs(tracker)


@pytest.mark.parametrize("fmt", ["lmeec-training", "raw"])
def test_round_trip_gives_identical_outputs(tmp_path, capsys, reference, fmt):
    tracker, want = reference
    path = save_checkpoint(tracker.model, tmp_path / "ckpt.pt", fmt)
    assert main(["checkpoint", "inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == fmt and info["has_mv_moe"] and info["fits_presets"] == ["t", "test"]
    loaded = Correspondence("test", path, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(want, _outputs(loaded)))


def test_module_prefix_is_accepted(tmp_path, reference):
    tracker, want = reference
    state = {f"module.{k}": v for k, v in tracker.model.state_dict().items()}
    torch.save({"model": state, "optimizer": {"state": {}}, "epoch": 3}, tmp_path / "ddp.pt")
    assert read_checkpoint(tmp_path / "ddp.pt").format == "lmeec-training"
    assert all(
        np.array_equal(a, b) for a, b in zip(want, _outputs(Correspondence("test", tmp_path / "ddp.pt")))
    )


def test_sam21_checkpoint_loads_with_default_moe_and_a_warning(tmp_path, reference):
    tracker, _ = reference
    path = save_checkpoint(tracker.model, tmp_path / "sam21.pt", "sam2.1")
    assert read_checkpoint(path).format == "sam2.1"
    with pytest.warns(UserWarning, match="without MV-MoE"):
        loaded = Correspondence("test", path, seed=7)
    fresh = build_model("test", seed=7)
    for k, v in loaded.model.state_dict().items():
        source = fresh if k.startswith("MV_MoE.") else tracker.model
        assert torch.equal(v, source.state_dict()[k]), k


def test_missing_key_and_wrong_shape_are_both_named(tmp_path, capsys):
    state = build_model("test", seed=0).state_dict()
    del state["no_obj_ptr"]
    state["memory_encoder.out_proj.weight"] = torch.zeros(32, 256, 1, 1)
    torch.save({"model": state}, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        Correspondence("test", tmp_path / "bad.pt")
    message = str(err.value)
    assert "no_obj_ptr" in message and "missing" in message
    assert "memory_encoder.out_proj.weight [32, 256, 1, 1] in file vs [64, 256, 1, 1] in model" in message
    assert main(["checkpoint", "inspect", str(tmp_path / "bad.pt")]) == 1
    assert "fits no preset" in capsys.readouterr().out


def test_checkpoint_for_another_preset_is_refused(tmp_path):
    save_checkpoint(build_model("test"), tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"does not fit preset 'b\+'.*shape mismatch"):
        Correspondence("b+", tmp_path / "t.pt")


def test_unreadable_files_give_clear_errors(tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"epoch": 1}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no state dict of tensors"):
        read_checkpoint(tmp_path / "empty.pt")
    assert main(["checkpoint", "inspect", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
