"""§2 low-severity faults: messages in our words naming the file, refusals up front, honest % of peak."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.conftest import synthetic_pair
from tests.faults.conftest import errors, run_take_args, snapshot, write_take


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_checkpoint_errors_are_one_line(tmp_path, cli, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    rc, lines = cli("checkpoint", "inspect", path)
    assert rc == 2 and len(lines) == 1, lines
    assert "bad.pt: not a readable PyTorch checkpoint" in lines[0]
    assert "weights_only" not in lines[0] and not lines[0].rstrip().endswith("(101))")


def test_truncated_jpeg_names_the_file(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d")
    src, _, _ = synthetic_pair(np.random.default_rng(0), 1)
    Image.fromarray(src).save(data / "src" / "1.jpg", quality=90)
    (data / "src" / "1.png").unlink()
    raw = (data / "src" / "1.jpg").read_bytes()
    (data / "src" / "1.jpg").write_bytes(raw[: len(raw) // 2])
    before = snapshot(tmp_path)
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 2
    (line,) = errors(lines)
    assert "1.jpg: cannot read this image" in line
    assert snapshot(tmp_path) == before


def test_annotation_fault_is_not_blamed_on_predictions(tmp_path, cli):
    from lmeec.eval.rle import encode_mask_lz
    from lmeec.eval.synth import load_synth

    assert (
        cli("data", "synth", "--out", tmp_path / "s", "--takes", "1", "--frames", "4", "--scale", "0.1")[0]
        == 0
    )
    relations = tmp_path / "s" / "relations_synth.json"
    assert cli("data", "baseline", "copy", "--annotations", relations, "--out", tmp_path / "p.json")[0] == 0
    unit = next(
        u for u in load_synth(tmp_path / "s").units("ego-exo") if any(map(u.gt_visible, u.counted_frames))
    )
    frame = [f for f in unit.counted_frames if unit.gt_visible(f)][-1]
    doc = json.loads(relations.read_text())
    h, w = unit.target_native
    doc["annotations"][unit.take]["object_masks"][unit.obj][unit.target_cam]["annotation"][str(frame)] = {
        "width": w + 8, "height": h, "encodedMask": encode_mask_lz(np.ones((h, w + 8), bool))
    }  # fmt: skip
    relations.write_text(json.dumps(doc))
    rc, lines = cli(
        "eval", "--annotations", relations, "--predictions", tmp_path / "p.json", "--direction", "ego-exo"
    )
    assert rc == 2
    (line,) = errors(lines)
    assert "annotation fault" in line and "relations_synth.json" in line and f"frame {frame}" in line
    assert "prediction" not in line


def test_reset_with_a_fractional_frame_count_is_refused(test_engines):
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    pipeline = Pipeline(open_backend("ort", engines=test_engines))
    for bad in (2.5, "3", True):
        with pytest.raises(ValueError, match="whole number of frames"):
            pipeline.reset(num_frames=bad)
    pipeline.reset(num_frames=np.int64(3))  # numpy integers are whole numbers


def test_one_frame_take_without_runtime_warning(test_engines):
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    pipeline = Pipeline(open_backend("ort", engines=test_engines))
    pipeline.reset(num_frames=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = pipeline.step(*synthetic_pair(np.random.default_rng(0), 0))
    assert not result.skipped and result.mask.shape == (54, 96)


def test_threads_zero_in_our_words(tmp_path, cli, test_engines):
    for verb in (run_take_args(test_engines, tmp_path, tmp_path / "o"), ["bench"], ["demo"]):
        rc, lines = cli(*verb, "--threads", "0")
        assert rc == 2 and lines[-1].endswith("argument --threads: must be at least 1, got 0"), lines


def test_run_no_progress_prints_no_bar(sandbox, cli, test_engines):
    rc, lines = cli(*run_take_args(test_engines, sandbox / "data", sandbox / "o"))
    assert rc == 0
    assert not any("frame/s" in ln or "it/s" in ln or "%|" in ln for ln in lines)


def test_percent_of_peak_never_above_100(test_engines):
    from lmeec.bench.costmodel import cost_table
    from lmeec.bench.runner import BackendRun

    run = BackendRun("ort", {}, "cpu")
    run.summary = {"image_encoder": {"p50": 1e-3}, "step": {"p50": 1.0}}  # an encoder "faster" than the peak
    table = cost_table("test", test_engines, {"ort": run}, peak_gflops=1.0)
    fractions = [
        b["fraction_of_peak"]
        for r in [*table["sections"].values(), table["step"]]
        for b in r["backends"].values()
    ]
    assert max(fractions) == pytest.approx(1.0) and all(f <= 1.0 for f in fractions)
    assert table["peak_gflops"] > 1.0 and "raised to" in table["peak_note"]


def test_vanishing_mask_warns(test_engines):
    from lmeec.model.tracker import Correspondence
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline

    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)  # 4× the test preset's 128 input
    tgt = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((512, 512), bool)
    mask[100, 100] = True  # one pixel: 1/16 after the antialiased resize, below 0.5
    with pytest.warns(UserWarning, match="RANDOM"):
        tracker = Correspondence("test")
    for runner in (tracker, Pipeline(open_backend("ort", engines=test_engines))):
        runner.reset()
        with pytest.warns(
            UserWarning, match=r"frame 0: the source mask \(1 pixels\) vanishes at the model's 128×128"
        ):
            runner.step(src, mask, tgt)


def test_check_ort_defaults_to_this_machine(test_engines, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the default on a machine without CUDA")
    rc, lines = cli(
        "check", "--engines", test_engines, "--backend", "ort", "--onnx", test_engines, "--frames", "3"
    )
    assert rc == 0, lines


def test_one_provider_spelling():
    from lmeec.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for verb in ("run", "check", "bench"):
        options = {s for a in sub[verb]._actions for s in a.option_strings}
        assert {"--provider", "--device"} <= options and "--providers" not in options, verb
    args = parser.parse_args(["check", "--engines", "e", "--backend", "ort", "--provider", "cuda,tensorrt"])
    assert args.provider == ["cuda", "tensorrt"] and args.device == "auto"
