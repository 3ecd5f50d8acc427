"""`lmeec check` compares engines with polygraphy's comparator; a failing engine prints runnable polygraphy commands."""

from __future__ import annotations

import shlex
import subprocess
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def fp16_folder(test_engines, tmp_path_factory):
    from lmeec.export.fp16_onnx import write_fp16_folder

    out = tmp_path_factory.mktemp("f16") / "f16"
    write_fp16_folder(test_engines, out)
    return out


def test_failing_engines_print_polygraphy_commands_and_save_their_data(
    fp16_folder, test_engines, tmp_path, capsys, monkeypatch
):
    from lmeec.cli import check, main

    monkeypatch.setitem(check.TOLERANCE, "fp16", 1e-7)  # FP16 rounding exceeds it: every engine fails
    debug = tmp_path / "debug"
    argv = ["check", "--engines", str(fp16_folder), "--backend", "ort", "--onnx", str(test_engines)]
    argv += ["--device", "cpu", "--frames", "3", "--record", "1", "--debug-dir", str(debug)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "engine mask_decoder" in out and "FAIL" in out and "RESULT FAIL" in out
    lines = [line.strip() for line in out.splitlines()]
    run = next(line for line in lines if line.startswith(f"polygraphy run {fp16_folder}/moe_fusion.onnx"))
    bisect = next(line for line in lines if line.startswith("polygraphy debug precision"))
    assert f"{test_engines}/image_encoder.onnx --fp16" in bisect and "--check polygraphy run" in bisect

    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    feeds = load_json(str(debug / "moe_fusion.inputs.json"))
    (name, (golden,)), *_ = RunResults.load(str(debug / "moe_fusion.fp32_outputs.json")).items()
    assert len(feeds) == 1 and sorted(feeds[0]) == ["f_mem", "f_view"] and name == "fp32-onnx"
    assert golden["fused"].shape == (1, 256, 8, 8) and np.abs(golden["fused"]).max() > 0
    # the printed command reproduces the failure on the saved data, and passes at the real tolerance
    args = shlex.split(run)
    exe = [sys.executable, "-c", "import sys; from polygraphy.tools import main; sys.exit(main())"]
    failing = subprocess.run(exe + args[1:], capture_output=True, text=True)
    assert failing.returncode != 0, failing.stdout[-2000:]
    scale = max(1.0, float(np.abs(golden["fused"]).max()))
    args[args.index("--atol") + 1] = f"fused:{0.05 * scale:.3g}"
    passing = subprocess.run(exe + args[1:], capture_output=True, text=True)
    assert passing.returncode == 0, passing.stdout[-2000:]


def test_commands_for_a_tensorrt_plan(fake_export, tmp_path, fake_trt):
    from types import SimpleNamespace

    from conftest import GPU

    from lmeec.cli.check import polygraphy_commands
    from lmeec.export.manifest import read_manifest
    from lmeec.export.trt import build_trt

    build_trt(fake_export, tmp_path / "plans", trt=fake_trt(), gpu=GPU, progress=False)
    tested = SimpleNamespace(
        name="trt", folder=tmp_path / "plans", manifest=read_manifest(tmp_path / "plans")
    )
    run, bisect = polygraphy_commands(tested, "mask_decoder", tmp_path / "plans" / "onnx", "D", {"iou": 0.05})
    check = "--load-inputs D/mask_decoder.inputs.json --load-outputs D/mask_decoder.fp32_outputs.json"
    assert run == (
        f"polygraphy run {tmp_path}/plans/mask_decoder.plan --model-type engine --trt {check} "
        "--rtol 0 --check-error-stat max --atol iou:0.05"
    )
    assert bisect.startswith(f"polygraphy debug precision {tmp_path}/plans/onnx/mask_decoder.onnx --fp16 ")
    assert bisect.endswith(
        f"--check polygraphy run polygraphy_debug.engine --trt {check} --rtol 0 --check-error-stat max --atol iou:0.05"
    )
