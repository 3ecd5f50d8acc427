"""Benchmark reports: stage tables for the terminal, results JSON, CSVs and a PNG (all written atomically)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from lmeec.bench.runner import OTHER, STEP, BackendRun, BenchResult
from lmeec.files import atomic_path, atomic_write_bytes, atomic_write_json
from lmeec.runtime.pipeline import STAGE_SECTIONS

LABELS = {
    "preprocess": "pre-processing",
    "image_encoder": "image encoder (2 views)",
    "memory_encoder": "memory encoder",
    "bank_update": "bank update/compression",
    "view_attention": "view attention",
    "bank_attention": "bank attention",
    "moe_fusion": "MoE fusion",
    "mask_decoder": "mask decoder",
    "postprocess": "post-processing",
    OTHER: "other (glue)",
    STEP: "whole step",
}
ROWS = (*STAGE_SECTIONS, OTHER, STEP)
FLOP_CHECK_TOLERANCE = 0.01


def _f(value: float | None, fmt: str = "{:.2f}", width: int = 8) -> str:
    return f"{'-' if value is None else fmt.format(value):>{width}}"


def header(result: BenchResult) -> str:
    c, env = result.config, result.environment
    gpu = env.get("gpu")
    device = (
        f"{gpu['name']} (CUDA {gpu['cuda']})" if gpu else f"{env['cpu']} ({env['cpu_affinity']} usable cores)"
    )
    frames = result.frames
    lines = [
        f"lmeec bench — preset {c['preset']}, backend(s) {', '.join(c['backends'])}, device {c['device']}: {device}",
        f"  weights: {result.weights}",
        f"  frames: {c['frames']} measured after {c['warmup']} warm-up; {frames['source']} frames "
        f"({frames['distinct_frames']} distinct, cycled; source {frames['source_hw']}, target {frames['target_hw']})"
        + (f"; {c['objects']} objects per step, one batched pass" if c.get("objects", 1) > 1 else ""),
        f"  threads: requested {c['threads'] or 'default'}; "
        + "; ".join(f"{n}: {run.describe.get('threads')}" for n, run in result.runs.items())
        + f"; load average {', '.join(f'{x:.2f}' for x in env.get('load_average') or [])}",
        f"  clock: {next(iter(result.runs.values())).clock}; git {str(env['git']['commit'])[:10]}"
        + (" (dirty)" if env["git"].get("dirty") else ""),
    ]
    return "\n".join(lines)


def stage_table(run: BackendRun, costmodel: dict | None) -> str:
    """p50/p90/p99/max/mean per stage and for the step, share of the step, FLOPs and % of peak."""
    s = run.summary
    step_mean = s[STEP]["mean"]
    sections = (costmodel or {}).get("sections", {})
    head = (
        f"{'stage':<26}{'runs':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}"
        f"{'share':>7}{'GFLOP':>8}{'ideal ms':>9}{'% peak':>8}"
    )
    lines = [f"[{run.name}] {describe_backend(run)}", head, "-" * len(head)]
    for name in ROWS:
        st = s.get(name)
        if st is None:
            lines.append(f"{LABELS[name]:<26}{0:>6}  (did not run)")
            continue
        cost = sections.get(name) if name != STEP else (costmodel or {}).get("step")
        gflop = cost["gflop"] if cost else None
        ideal = cost["ideal_ms"] if cost else None
        frac = cost["backends"].get(run.name, {}).get("fraction_of_peak") if cost else None
        if name == STEP:
            lines.append("-" * len(head))
        lines.append(
            f"{LABELS[name]:<26}{st['count']:>6}{_f(st['p50'], width=9)}{_f(st['p90'], width=9)}"
            f"{_f(st['p99'], width=9)}{_f(st['max'], width=9)}{_f(st['mean'], width=9)}"
            f"{_f(100 * st['mean'] / step_mean, '{:.1f}%', 7)}{_f(gflop, '{:.2f}')}"
            f"{_f(ideal, width=9)}{_f(None if frac is None else 100 * frac, '{:.1f}%')}"
        )
    mem = f"peak RSS {s['rss_max_mb']:.0f} MiB" if s.get("rss_max_mb") else "RSS unavailable"
    if s.get("cuda_peak_allocated_mb") is not None:
        mem += (
            f", CUDA peak allocated (torch) {s['cuda_peak_allocated_mb']:.0f} MiB, "
            f"device used {s['cuda_used_max_mb']:.0f} MiB"
        )
    lines.append(f"{s['fps']:.2f} frames/s (1000 / mean step); {mem}")
    return "\n".join(lines)


def describe_backend(run: BackendRun) -> str:
    d = {k: v for k, v in run.describe.items() if k not in ("backend", "threads")}
    return ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in d.items())


def comparison_table(result: BenchResult) -> str:
    cmp = result.comparison
    a, b = cmp["baseline"], cmp["candidate"]
    ra, rb = result.runs[a].summary, result.runs[b].summary
    head = f"{'stage':<26}{a + ' p50':>12}{b + ' p50':>12}{f'{a}/{b} p50':>14}{f'{a}/{b} mean':>15}"
    lines = [
        f"side by side ({cmp['order']}); ratio > 1: {b} is faster",
        head,
        "-" * len(head),
    ]
    for name in ROWS:
        r = cmp["stages"].get(name)
        if r is None:
            continue
        if name == STEP:
            lines.append("-" * len(head))
        lines.append(
            f"{LABELS[name]:<26}{_f(ra[name]['p50'], width=12)}{_f(rb[name]['p50'], width=12)}"
            f"{_f(r['p50_ratio'], '{:.2f}×', 14)}{_f(r['mean_ratio'], '{:.2f}×', 15)}"
        )
    ort = result.runs.get("ort")
    if ort is not None and ort.describe.get("spinning"):
        lines.append(
            "note: ONNX Runtime's threads spin-wait between runs (--ort-spinning on), taking cores from the "
            "torch work in between"
        )
    ag = cmp["agreement"]
    lines.append(
        f"outputs: mask IoU {a} vs {b} min {ag['mask_iou_min']:.4f} (mean {ag['mask_iou_mean']:.4f}), "
        f"largest logit difference {ag['logit_max_abs_diff']:.2e}"
    )
    return "\n".join(lines)


def flat_cost_table(run: BackendRun) -> str:
    fc = run.flat_cost
    head = f"{'window':<8}{'frames':>14}{'step p50 ms':>13}{'step p90 ms':>13}{'RSS p50 MiB':>13}"
    cuda = any(w["cuda_used_p50_mb"] is not None for w in fc["windows"])
    if cuda:
        head += f"{'CUDA used MiB':>15}"
    lines = [f"[{run.name}] flat cost: per-window medians", head]
    names = ["start", *[f"mid{i}" for i in range(1, len(fc["windows"]) - 1)], "end"][: len(fc["windows"])]
    if len(fc["windows"]) == 3:
        names = ["start", "middle", "end"]
    for label, w in zip(names, fc["windows"]):
        line = (
            f"{label:<8}{w['first_frame']:>7}-{w['last_frame']:<6}{_f(w['step_p50_ms'], width=13)}"
            f"{_f(w['step_p90_ms'], width=13)}{_f(w['rss_p50_mb'], '{:.1f}', 13)}"
        )
        if cuda:
            line += _f(w["cuda_used_p50_mb"], "{:.1f}", 15)
        lines.append(line)
    growth = f"growth first -> last window: latency {_f(fc['growth_step_p50_pct'], '{:+.2f}%', 0)}"
    growth += f", RSS {_f(fc['growth_rss_p50_pct'], '{:+.2f}%', 0)}"
    if fc.get("growth_rss_mb") is not None:
        growth += f" ({fc['growth_rss_mb']:+.1f} MiB)"
    if fc.get("growth_cuda_used_p50_pct") is not None:
        growth += f", CUDA used {fc['growth_cuda_used_p50_pct']:+.2f}%"
    lines.append(growth)
    return "\n".join(lines)


def costmodel_notes(result: BenchResult) -> str:
    cm = result.costmodel
    if not cm:
        return "cost model: not available"
    peak = cm["peak_gflops"]
    lines = [
        f"cost model: FLOPs from {cm['source']}; {cm['flop_rule']}",
        f"  peak {peak:.0f} GFLOP/s ({cm['peak_note']})" if peak else "  no peak rate given (--peak-gflops)",
    ]
    checks = cm.get("checks") or {}
    if checks:
        parts = [f"{k} {100 * v['rel_diff']:+.2f}%" for k, v in checks.items()]
        lines.append(f"  counted vs analytic FLOPs: {', '.join(parts)}")
        off = [k for k, v in checks.items() if abs(v["rel_diff"]) > FLOP_CHECK_TOLERANCE]
        if off:
            lines.append(
                f"  WARNING: {', '.join(off)} do(es) less/more work than the closed form — e.g. a random-weight "
                "export whose identical (cloned) layers were merged; such timings understate a trained model"
            )
    # where the time goes: the stages that hold most of the step, and how far each is from the peak
    for name, run in result.runs.items():
        s = run.summary
        ranked = sorted((n for n in (*STAGE_SECTIONS, OTHER) if s.get(n)), key=lambda n: -s[n]["mean"])[:3]
        parts = []
        for n in ranked:
            frac = cm["sections"].get(n, {}).get("backends", {}).get(name, {}).get("fraction_of_peak")
            share = 100 * s[n]["mean"] / s[STEP]["mean"]
            parts.append(f"{LABELS[n]} {share:.0f}%" + (f" at {100 * frac:.0f}% of peak" if frac else ""))
        lines.append(f"  [{name}] most time: {'; '.join(parts)}")
    return "\n".join(lines)


def reference_line(result: BenchResult) -> str | None:
    ref = result.config.get("reference_ms")
    if not ref:
        return None
    parts = [f"{n} {ref / r.summary[STEP]['p50']:.2f}×" for n, r in result.runs.items()]
    return f"speed-up vs the stated reference {ref:g} ms/frame (given, not measured here): {', '.join(parts)}"


def format_report(result: BenchResult, flat: bool = True) -> str:
    blocks = [header(result)]
    blocks += [stage_table(run, result.costmodel) for run in result.runs.values()]
    if result.comparison:
        blocks.append(comparison_table(result))
    if flat:
        blocks += [flat_cost_table(run) for run in result.runs.values()]
    blocks.append(costmodel_notes(result))
    if (ref := reference_line(result)) is not None:
        blocks.append(ref)
    return "\n\n".join(blocks)


# --- files ----------------------------------------------------------------------------------------------


def _csv_bytes(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def frames_csv(result: BenchResult) -> bytes:
    """One row per backend and measured frame: step, every stage, glue, memory (ms, MiB; empty = not run)."""
    cols = ["backend", "frame", "step_ms", *[f"{s}_ms" for s in STAGE_SECTIONS], "other_ms", "rss_mb"]
    cols += ["cuda_peak_allocated_mb", "cuda_used_mb"]
    rows: list[list] = [cols]

    def cell(v):
        return "" if v is None else f"{v:.4f}"

    for name, run in result.runs.items():
        other = run.other_ms()
        for i, frame in enumerate(run.frame_index):
            row = [name, frame, cell(run.step_ms[i]), *[cell(run.stages[s][i]) for s in STAGE_SECTIONS]]
            row += [cell(other[i]), cell(run.rss_mb[i])]
            row += [
                cell(run.cuda_peak_allocated_mb[i] if run.cuda_peak_allocated_mb else None),
                cell(run.cuda_used_mb[i] if run.cuda_used_mb else None),
            ]
            rows.append(row)
    return _csv_bytes(rows)


def stages_csv(result: BenchResult) -> bytes:
    """One row per backend and stage: latency statistics, FLOPs, ideal time and fraction of peak."""
    cols = ["backend", "stage", "count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"]
    cols += ["gflop", "ideal_ms", "fraction_of_peak"]
    rows: list[list] = [cols]
    sections = (result.costmodel or {}).get("sections", {})
    for name, run in result.runs.items():
        for stage in ROWS:
            st = run.summary.get(stage)
            if st is None:
                continue
            cost = (result.costmodel or {}).get("step") if stage == STEP else sections.get(stage)
            frac = cost["backends"].get(name, {}).get("fraction_of_peak") if cost else None
            row = [
                name,
                stage,
                st["count"],
                *(f"{st[k]:.4f}" for k in ("mean", "p50", "p90", "p99", "min", "max")),
            ]
            row += [
                "" if not cost else f"{cost['gflop']:.6f}",
                "" if not cost or cost["ideal_ms"] is None else f"{cost['ideal_ms']:.4f}",
                "" if frac is None else f"{frac:.4f}",
            ]
            rows.append(row)
    return _csv_bytes(rows)


def write_outputs(result: BenchResult, out: Path | str, plot: bool = True) -> dict[str, Path]:
    """bench.json, frames.csv, stages.csv and bench.png into `out`; returns their paths."""
    out = Path(out)
    paths = {
        "json": atomic_write_json(out / "bench.json", result.to_json(), indent=1),
        "frames_csv": atomic_write_bytes(out / "frames.csv", frames_csv(result)),
        "stages_csv": atomic_write_bytes(out / "stages.csv", stages_csv(result)),
    }
    if plot:
        paths["png"] = write_plot(result, out / "bench.png")
    return paths


# --- the picture ----------------------------------------------------------------------------------------

COLORS = {
    "preprocess": "#9e9e9e",
    "image_encoder": "#1f77b4",
    "memory_encoder": "#ff7f0e",
    "bank_update": "#8c564b",
    "view_attention": "#2ca02c",
    "bank_attention": "#98df8a",
    "moe_fusion": "#d62728",
    "mask_decoder": "#9467bd",
    "postprocess": "#c7c7c7",
    OTHER: "#f7b6d2",
}
BACKEND_COLORS = ("#1f77b4", "#d62728", "#2ca02c")


def _rolling_median(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or x.size < k:
        return x
    pad = k // 2
    padded = np.pad(x, (pad, k - 1 - pad), mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1)


def write_plot(result: BenchResult, path: Path | str) -> Path:
    """Stage breakdown (stacked bars), % of peak per stage, latency and memory versus frame index."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result.runs
    names = list(runs)
    fig = plt.figure(figsize=(13, 10.5), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, height_ratios=[1.1, 1.2, 0.8], width_ratios=[1.5, 1])
    c = result.config
    fig.suptitle(
        f"lmeec bench — preset {c['preset']}, {' vs '.join(names)} on {c['device']}, "
        f"{c['frames']} frames, threads {c['threads'] or 'default'}"
        + ("  (RANDOM weights)" if "RANDOM" in result.weights else ""),
        fontsize=12,
    )

    # 1. where the time goes: mean ms per stage, stacked (adds up to the mean step)
    ax = fig.add_subplot(grid[0, 0])
    parts = [*STAGE_SECTIONS, OTHER]
    longest = max(runs[n].summary[STEP]["mean"] for n in names)
    for row, name in enumerate(names):
        left = 0.0
        s = runs[name].summary
        step_mean = s[STEP]["mean"]
        for stage in parts:
            st = s.get(stage)
            if not st:
                continue
            # mean over every measured frame (a stage that skipped frame 0 counts 0 there)
            width = st["mean"] * st["count"] / s[STEP]["count"]
            ax.barh(
                row,
                width,
                left=left,
                color=COLORS[stage],
                edgecolor="white",
                label=LABELS[stage] if row == 0 else None,
            )
            if width / longest > 0.06:
                ax.text(
                    left + width / 2,
                    row,
                    f"{width:.0f}" if width >= 10 else f"{width:.1f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white",
                )
            left += width
        ax.text(left, row, f"  {step_mean:.1f} ms ({s['fps']:.2f} fps)", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("mean ms per frame")
    ax.set_title("stage breakdown")
    ax.set_xlim(0, longest * 1.35)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)

    # 2. how close each stage is to the device's peak
    ax = fig.add_subplot(grid[0, 1])
    cm = result.costmodel
    if cm and cm.get("peak_gflops"):
        stages = [s for s in cm["sections"] if any(cm["sections"][s]["backends"].values())]
        y = np.arange(len(stages))
        h = 0.8 / len(names)
        for i, name in enumerate(names):
            vals = [
                100 * (cm["sections"][s]["backends"].get(name, {}).get("fraction_of_peak") or 0)
                for s in stages
            ]
            ax.barh(y + i * h, vals, height=h, color=BACKEND_COLORS[i % 3], label=name)
            for yy, v in zip(y + i * h, vals):
                ax.text(v, yy, f" {v:.0f}%", va="center", fontsize=7)
        ax.set_yticks(
            y + h * (len(names) - 1) / 2,
            [f"{LABELS[s]}\n{cm['sections'][s]['gflop']:.2f} GFLOP" for s in stages],
            fontsize=8,
        )
        ax.invert_yaxis()
        ax.set_xlabel(f"% of peak ({cm['peak_gflops']:.0f} GFLOP/s, {cm['peak_note'].split(':')[0]}) at p50")
        ax.set_title("achieved fraction of peak")
        ax.legend(fontsize=8)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no cost model\n(give --peak-gflops)", ha="center", va="center")

    # 3. latency versus frame, with the flat-cost windows shaded
    ax = fig.add_subplot(grid[1, :])
    for i, name in enumerate(names):
        r = runs[name]
        x, yv = np.array(r.frame_index), np.array(r.step_ms)
        color = BACKEND_COLORS[i % 3]
        ax.plot(x, yv, color=color, alpha=0.3, lw=0.7)
        k = max(1, min(51, len(yv) // 20))
        ax.plot(
            x,
            _rolling_median(yv, k),
            color=color,
            lw=2,
            label=f"{name} step (rolling median of {k})" if k > 1 else f"{name} step",
        )
        enc = np.array([v if v is not None else np.nan for v in r.stages["image_encoder"]])
        ax.plot(
            x,
            _rolling_median(enc, k) if k > 1 else enc,
            color=color,
            lw=1,
            ls="--",
            label=f"{name} image encoder",
        )
    first = runs[names[0]]
    for w in first.flat_cost["windows"]:
        ax.axvspan(w["first_frame"] - 0.5, w["last_frame"] + 0.5, color="#ffd54f", alpha=0.25, lw=0)
    ax.set_xlabel("frame index (shaded: flat-cost windows)")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    growth = ", ".join(
        f"{n} {runs[n].flat_cost['growth_step_p50_pct']:+.1f}%"
        for n in names
        if runs[n].flat_cost.get("growth_step_p50_pct") is not None
    )
    ax.set_title(f"latency per frame (growth of the median first -> last window: {growth})")
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)

    # 4. memory versus frame
    ax = fig.add_subplot(grid[2, :])
    rss = [v for v in first.rss_mb]
    if any(v is not None for v in rss):
        ax.plot(
            first.frame_index,
            [np.nan if v is None else v for v in rss],
            color="#444",
            lw=1.2,
            label="process RSS",
        )
    ax.set_ylabel("RSS MiB")
    ax.set_xlabel("frame index")
    title = "resident memory (one process" + (", both backends)" if len(names) > 1 else ")")
    if first.cuda_used_mb:
        ax2 = ax.twinx()
        for i, name in enumerate(names):
            ax2.plot(
                runs[name].frame_index,
                runs[name].cuda_used_mb,
                color=BACKEND_COLORS[i % 3],
                lw=1,
                ls=":",
                label=f"CUDA used ({name})",
            )
        ax2.set_ylabel("CUDA MiB")
        ax2.legend(fontsize=8, loc="upper right")
    g = first.flat_cost.get("growth_rss_mb")
    if g is not None:
        title += f"; growth first -> last window {g:+.1f} MiB ({first.flat_cost['growth_rss_p50_pct']:+.2f}%)"
    ax.set_title(title)
    lo, hi = (
        np.nanmin([v for v in rss if v is not None] or [0]),
        np.nanmax([v for v in rss if v is not None] or [1]),
    )
    ax.set_ylim(max(0, lo - max(50, 0.2 * (hi - lo))), hi + max(50, 0.2 * (hi - lo)))
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
