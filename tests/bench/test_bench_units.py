"""Benchmark building blocks: timers, statistics, flat-cost windows, FLOP counts that must agree."""

from __future__ import annotations

import time

import pytest
import torch

from lmeec.bench.runner import BackendRun, growth_pct, summarize, window_bounds
from lmeec.bench.timers import CpuSectionTimer
from lmeec.runtime.alloc import rss_mb


def test_cpu_timer_accumulates_sections_and_resets_per_step():
    timer = CpuSectionTimer()
    timer.start_step()
    with timer.section("a"):
        time.sleep(0.01)
    with timer.section("b"):
        pass
    with timer.section("a"):
        time.sleep(0.005)
    t = timer.finish_step()
    assert set(t) == {"a", "b"} and t["a"] >= 14.0 and t["b"] < t["a"]
    timer.start_step()
    assert timer.finish_step() == {}


def test_summary_statistics_and_missing_stages():
    s = summarize([float(v) for v in range(1, 101)] + [None])
    assert s["count"] == 100 and s["p50"] == pytest.approx(50.5) and s["max"] == 100.0
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert summarize([None, None]) is None


def test_windows_cover_start_middle_end():
    assert window_bounds(100, 3, 0.1) == [(0, 10), (45, 55), (90, 100)]
    assert window_bounds(5000, 3, 0.1) == [(0, 500), (2250, 2750), (4500, 5000)]
    assert window_bounds(2, 3, 0.1) == [(0, 1), (0, 1), (1, 2)]
    assert growth_pct(100.0, 103.0) == pytest.approx(3.0) and growth_pct(None, 1.0) is None


def test_flat_cost_reports_growth_first_to_last_window():
    run = BackendRun("torch", {}, "cpu")
    n = 100
    run.frame_index = list(range(n))
    run.step_ms = [10.0] * 10 + [11.0] * 80 + [12.0] * 10
    run.stages = {k: [1.0] * n for k in run.stages}
    run.rss_mb = [500.0] * 90 + [505.0] * 10
    run.finish(windows=3, fraction=0.1)
    fc = run.flat_cost
    assert [w["step_p50_ms"] for w in fc["windows"]] == [10.0, 11.0, 12.0]
    assert fc["growth_step_p50_pct"] == pytest.approx(20.0)
    assert fc["growth_rss_mb"] == pytest.approx(5.0) and fc["growth_rss_p50_pct"] == pytest.approx(1.0)
    assert run.summary["other"]["p50"] == pytest.approx(11.0 - 9.0)  # median step minus nine 1 ms stages
    assert run.summary["fps"] == pytest.approx(n / (sum(run.step_ms) / 1e3))


def test_rss_is_read():
    assert rss_mb() is None or rss_mb() > 10


def test_flops_onnx_torch_and_closed_form_agree(tmp_path, test_model):
    """MV-MoE and both memory attentions: ONNX graph count == torch FlopCounterMode == closed form."""
    from lmeec.bench.costmodel import analytic_flops, onnx_flops, torch_flops
    from lmeec.export.onnx import export_stage
    from lmeec.model.stages import build_stages

    names = ("moe_fusion", "memory_attention_view", "memory_attention_bank")
    stages = build_stages(test_model)
    analytic = analytic_flops("test")
    counted_torch = torch_flops(test_model, names)
    for name in names:
        path = tmp_path / f"{name}.onnx"
        export_stage(stages[name], path, simplify=False)
        counted_onnx = onnx_flops(path)["flops"]
        assert counted_onnx == analytic[name] == counted_torch[name], name
    assert all(p.requires_grad for p in test_model.parameters())  # restored after counting


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_event_timer_times_queued_work():
    from lmeec.bench.timers import CudaEventTimer

    device = torch.device("cuda")
    timer = CudaEventTimer(device)
    a = torch.randn(4096, 4096, device=device)
    torch.cuda.synchronize()
    timer.start_step()
    with timer.section("matmul"):
        for _ in range(10):
            a @ a
    with timer.section("empty"):
        pass
    t0 = time.perf_counter()
    ms = timer.finish_step()
    waited = (time.perf_counter() - t0) * 1e3
    assert ms["matmul"] > 10 * ms["empty"] and ms["matmul"] > 0.5
    assert waited > 0  # finish_step waited for the queued work, not the section's host time
