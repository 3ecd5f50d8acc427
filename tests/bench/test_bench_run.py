"""End to end: the API, `lmeec bench` (one backend and side by side), its files, and `lmeec demo`."""

from __future__ import annotations

import csv
import json

import jsonschema
import pytest

from lmeec.cli import main
from lmeec.runtime.pipeline import STAGE_SECTIONS


def test_api_torch_run_writes_valid_json_csv_png(tmp_path, bench_cache, schema):
    """The step options too (device pre/post-processing, BF16), at the frame sizes given; the compare test
    below runs the default path."""
    from lmeec.bench.inputs import engines_cache_dir
    from lmeec.bench.report import format_report, write_outputs
    from lmeec.bench.runner import BenchConfig, run_benchmark
    from lmeec.runtime.step_options import StepOptions

    engines = engines_cache_dir(bench_cache, "test", 0)
    config = BenchConfig(
        preset="test",
        backends=("torch",),
        engines=engines,  # FLOPs from its graphs; the torch weights from the checkpoint it was exported from
        checkpoint=engines.with_name(engines.name + ".pt"),
        frames=2,
        warmup=0,
        threads=2,
        frames_source="random",
        source_size=352,
        target_size=(960, 540),
        step=StepOptions(device_io=True, precision="bf16"),
        cache=bench_cache,
        progress=False,
        log=lambda msg: None,
    )
    result = run_benchmark(config)
    run = result.runs["torch"]
    assert run.frame_index == [0, 1] and len(run.step_ms) == 2
    assert run.stages["bank_attention"][0] is None  # no memory yet on frame 0
    assert all(v is not None for v in run.stages["bank_attention"][1:])
    assert all(run.stages[s][1] is not None for s in STAGE_SECTIONS)
    assert all(v > 0 for v in run.stages["preprocess"]) and all(v > 0 for v in run.stages["postprocess"])
    assert run.describe["precision"] == "bf16"
    assert result.frames["source_hw"] == [352, 352] and result.frames["target_hw"] == [540, 960]
    assert run.summary["step"]["p50"] > 0 and run.summary["rss_max_mb"] > 0
    assert result.costmodel["source"].startswith("onnx graphs")
    assert result.costmodel["sections"]["image_encoder"]["gflop"] > 1
    text = format_report(result)
    for word in ("image encoder", "bank attention", "MoE fusion", "whole step", "frames/s", "growth"):
        assert word in text
    paths = write_outputs(result, tmp_path / "out")
    jsonschema.validate(json.loads(paths["json"].read_text()), schema)
    rows = list(csv.DictReader(paths["frames_csv"].open()))
    assert len(rows) == 2 and rows[0]["bank_attention_ms"] == "" and float(rows[1]["bank_attention_ms"]) > 0
    stages = list(csv.DictReader(paths["stages_csv"].open()))
    assert {r["stage"] for r in stages} >= {"image_encoder", "step", "other"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_prints_both_tables_and_the_ratio(tmp_path, bench_cache, schema, capsys):
    out = tmp_path / "cmp"
    argv = ["bench", "--preset", "test", "--compare", "torch,ort", "--frames", "2", "--warmup", "0"]
    argv += ["--threads", "2", "--cache", str(bench_cache), "--out", str(out), "--no-progress", "--no-plot"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "[torch]" in text and "[ort]" in text and "torch/ort p50" in text
    assert "flat cost" in text and "counted vs analytic FLOPs" in text
    data = json.loads((out / "bench.json").read_text())
    jsonschema.validate(data, schema)
    cmp = data["comparison"]
    assert cmp["stages"]["step"]["p50_ratio"] > 0
    # same weights in both backends (the torch backend loads the checkpoint the engines came from)
    assert cmp["agreement"]["mask_iou_min"] > 0.99 and cmp["agreement"]["logit_max_abs_diff"] < 1e-2
    # the cached export has distinct layers: the graphs do the closed form's work
    assert all(abs(c["rel_diff"]) < 1e-3 for c in data["costmodel"]["checks"].values())
    assert data["costmodel"]["source"].startswith("onnx")
    assert data["runs"]["ort"]["describe"]["threads"]["intra_op"] == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--compare", "torch,torch"], "two different backends"),
        (["--compare", "torch,tpu"], "unknown backend"),
        (["--frames", "0"], "--frames must be at least 1"),
        (["--windows", "3", "--window-fraction", "0.5"], "window fraction"),
        (["--backend", "torch", "--graph", "--device", "cpu"], "--graph needs a CUDA device"),
        (["--precision", "bf16", "--device", "cpu"], "--precision bf16 apply to --backend torch, not ort"),
        (["--backend", "torch", "--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
    ],
)
def test_cli_refuses_bad_arguments(extra, message, capsys, tmp_path):
    assert main(["bench", "--preset", "test", "--no-progress", "--out", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_demo_runs_the_main_job(bench_cache, capsys):
    assert (
        main(["demo", "--preset", "test", "--frames", "3", "--threads", "2", "--cache", str(bench_cache)])
        == 0
    )
    text = capsys.readouterr().out
    assert "RANDOM weights" in text and "ONNX Runtime" in text
    assert "image encoder (2 views)" in text and "whole step" in text
    rows = [line for line in text.splitlines() if line.strip().split(" ")[0].isdigit()]
    assert len(rows) == 3
    overlay = text.strip().splitlines()[-1].removeprefix("overlay: ")
    cv2 = pytest.importorskip("cv2")
    video = cv2.VideoCapture(overlay)
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    video.release()
