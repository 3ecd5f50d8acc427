"""benchmarks/gpu_step.py runs end to end on a CPU (`--smoke`: the test preset, tiny frames), so the GPU
session's script has no logic error the lent machine would be the first to find."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_step.py"


def test_gpu_step_smoke_runs_every_check(tmp_path, capsys):
    main = runpy.run_path(str(SCRIPT), run_name="gpu_step")["main"]
    out = tmp_path / "gpu_step.json"
    argv = ["--smoke", "--iou-frames", "2", "--warmup", "1", "--timed", "1", "--alloc-steps", "1"]
    assert main([*argv, "--long", "1", "--reps", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["errors"] == []
    variants = report["test"]["variants"]
    assert list(variants) == ["eager-fp32-host", "graph-bf16-device"]
    captured = variants["graph-bf16-device"]
    assert 0 <= captured["iou_min"] <= captured["iou_mean"] <= 1 and captured["p50_ms"] > 0
    assert (
        captured["describe"]["precision"] == "bf16" and captured["captures"] == 3
    )  # frames 0, 1, then 2 in the live stream
    assert (
        report["test"]["memory"]["frames"] == 1 and report["test"]["kernels"]["device_source_resize_ms"] > 0
    )
    text = capsys.readouterr().out
    assert "graph-bf16-device" in text and "glue kernels (torch)" in text
