"""Latency and memory benchmark of the runtime `Pipeline`: per stage, per frame, one or two backends.

>>> from lmeec.bench.runner import BenchConfig, run_benchmark
>>> result = run_benchmark(BenchConfig(preset="test", backends=("torch", "ort"), frames=50))
>>> result.runs["ort"].summary["step"]["p50"]

Timing: on the CPU every stage section is read from `time.perf_counter_ns` (monotonic); on CUDA each
section records a start and an end event on the current stream and the events are resolved after the
step's own synchronisation (the pipeline synchronises once, in post-processing), so no section adds a
synchronisation of its own. The whole step is always wall-clock time around `Pipeline.step` (on CUDA it
ends with that synchronisation, so it is what a caller waits). Memory: resident set size after every step
(`/proc/self/statm`), the process's peak (`getrusage`), and on CUDA the peak of torch's allocator per step
plus device-wide use (`cudaMemGetInfo`, which also sees ONNX Runtime's and TensorRT's own allocations).

With two backends (`compare`), both run in one process over the same frames, interleaved frame by frame
(the order alternates every frame), each with its own pipeline and timer, so their ratio does not depend
on comparing two noisy runs taken at different times.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmeec.bench.environment import environment
from lmeec.bench.inputs import Frame, default_cache, ensure_engines, random_frames, synth_frames
from lmeec.bench.timers import make_timer, peak_rss_mb
from lmeec.model.config import get_preset
from lmeec.runtime.alloc import rss_mb
from lmeec.runtime.pipeline import STAGE_SECTIONS, Pipeline
from lmeec.runtime.step_options import StepOptions

STEP = "step"
OTHER = "other"  # step time outside every stage section (Python glue between sections)
FRAME_SOURCES = ("synth", "random")
PERCENTILES = (50, 90, 99)


@dataclass
class BenchConfig:
    """What to measure. `backends` holds one name, or two for the interleaved side-by-side mode."""

    preset: str = "test"
    backends: tuple[str, ...] = ("ort",)
    engines: Path | str | None = None  # exported folder; None: export (random weights) into the cache
    checkpoint: Path | str | None = None  # torch weights (default: the seed, as the engines)
    seed: int = 0  # random-weight seed when no checkpoint is given
    frames: int = 50  # measured frames
    warmup: int = 3  # steps run first and not measured (same take: the banks keep filling)
    threads: int | None = None  # torch intra-op threads and ONNX Runtime intra-op threads
    device: str = "cpu"
    providers: list[str] | None = None  # ONNX Runtime providers (default: cuda on a CUDA device, else cpu)
    frames_source: str = "synth"  # synth: a rendered ego-exo take, cycled; random: noise frames + a blob mask
    cache: Path | str | None = None  # engines and the synthetic take (default ~/.cache/lmeec)
    windows: int = 3  # flat-cost windows at start / middle / end
    window_fraction: float = 0.1  # each window's share of the measured frames
    peak_gflops: float | None = None  # device peak for the cost model (default: measured FP32 matmul rate)
    reference_ms: float | None = None  # a stated (not measured here) reference time per frame
    ort_spinning: bool = False  # ONNX Runtime thread spin-waiting (off: see OrtBackend)
    objects: int = 1  # objects tracked per step (the frame's mask shifted per object), one batched pass
    step: StepOptions = field(default_factory=StepOptions)  # device I/O, precision, compile, CUDA graphs
    source_size: int = 1408  # random frames: source side (EgoExo4D's Aria frames) …
    target_size: tuple[int, int] = (3840, 2160)  # … and target width, height (its exo cameras)
    progress: bool = True
    log: Callable[[str], None] | None = None  # where notes go (default: stderr)

    def check(self) -> None:
        get_preset(self.preset)
        if not 1 <= len(self.backends) <= 2 or len(set(self.backends)) != len(self.backends):
            raise ValueError(f"give one backend or two different ones to compare, got {list(self.backends)}")
        if self.frames < 1:
            raise ValueError("--frames must be at least 1")
        if self.objects < 1:
            raise ValueError("--objects must be at least 1")
        if self.warmup < 0:
            raise ValueError("--warmup must be at least 0")
        if self.threads is not None and self.threads < 1:
            raise ValueError("--threads must be at least 1")
        if self.frames_source not in FRAME_SOURCES:
            raise ValueError(f"--frames-source must be one of {', '.join(FRAME_SOURCES)}")
        if self.windows < 1 or not 0 < self.window_fraction <= 1 / self.windows:
            raise ValueError("need windows >= 1 and 0 < window fraction <= 1 / windows")
        if self.peak_gflops is not None and self.peak_gflops <= 0:
            raise ValueError("--peak-gflops must be positive")
        if self.source_size < 1 or min(self.target_size) < 1:
            raise ValueError("--source-size and --target-size must be positive")
        for name in self.backends:
            self.step.check(name, self.device)


# --- backends --------------------------------------------------------------------------------------------


def _open(kind: str, config: BenchConfig, engines: Path | None, checkpoint: Path | None):
    from lmeec.runtime.backend import open_backend

    device = torch.device(config.device)  # ort on CUDA runs on its own stream, ordered with the caller's
    return open_backend(
        kind,
        engines=engines,
        preset=config.preset,
        checkpoint=checkpoint if kind == "torch" else None,
        seed=None if engines is not None and checkpoint is None else config.seed,
        device=device,
        threads=config.threads,
        providers=config.providers if kind == "ort" else None,
        ort_spinning=config.ort_spinning,
    )


# --- results --------------------------------------------------------------------------------------------


def summarize(values: list[float | None]) -> dict | None:
    """count, mean, p50/p90/p99, min, max of the values that are not None (None: nothing ran)."""
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return None
    out = {"count": int(x.size), "mean": float(x.mean())}
    for p in PERCENTILES:
        out[f"p{p}"] = float(np.percentile(x, p))
    out["min"], out["max"] = float(x.min()), float(x.max())
    out["std"] = float(x.std())
    return out


def window_bounds(n: int, windows: int, fraction: float) -> list[tuple[int, int]]:
    """[start, end) of `windows` equal windows of `fraction`·n frames, spread from the first to the last."""
    size = max(1, round(n * fraction))
    size = min(size, n)
    if windows == 1:
        return [(0, size)]
    starts = [round(i * (n - size) / (windows - 1)) for i in range(windows)]
    return [(s, s + size) for s in starts]


def growth_pct(first: float | None, last: float | None) -> float | None:
    if first is None or last is None or first == 0:
        return None
    return 100.0 * (last - first) / first


def flat_cost(run: BackendRun, windows: int, fraction: float) -> dict:
    """Median step latency and memory per window (start, …, end) and their growth first -> last window."""
    n = len(run.frame_index)
    rows = []
    for start, end in window_bounds(n, windows, fraction):
        step = np.array(run.step_ms[start:end])
        rss = [v for v in run.rss_mb[start:end] if v is not None]
        cuda = [v for v in (run.cuda_used_mb or [])[start:end] if v is not None]
        rows.append(
            {
                "first_frame": run.frame_index[start],
                "last_frame": run.frame_index[end - 1],
                "frames": end - start,
                "step_p50_ms": float(np.median(step)),
                "step_p90_ms": float(np.percentile(step, 90)),
                "rss_p50_mb": float(np.median(rss)) if rss else None,
                "cuda_used_p50_mb": float(np.median(cuda)) if cuda else None,
            }
        )
    first, last = rows[0], rows[-1]
    out = {"windows": rows}
    for key in ("step_p50_ms", "rss_p50_mb", "cuda_used_p50_mb"):
        out[f"growth_{key.removesuffix('_ms').removesuffix('_mb')}_pct"] = growth_pct(first[key], last[key])
    out["growth_rss_mb"] = None if first["rss_p50_mb"] is None else last["rss_p50_mb"] - first["rss_p50_mb"]
    return out


@dataclass
class BackendRun:
    """Per-frame measurements of one backend (lists aligned with `frame_index`)."""

    name: str
    describe: dict
    clock: str
    frame_index: list[int] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float | None]] = field(default_factory=lambda: {s: [] for s in STAGE_SECTIONS})
    rss_mb: list[float | None] = field(default_factory=list)
    cuda_peak_allocated_mb: list[float] | None = None
    cuda_used_mb: list[float] | None = None
    summary: dict = field(default_factory=dict)
    flat_cost: dict = field(default_factory=dict)

    def other_ms(self) -> list[float]:
        """Step time outside the stage sections, per frame."""
        return [
            step - sum(v for v in (self.stages[s][i] for s in STAGE_SECTIONS) if v is not None)
            for i, step in enumerate(self.step_ms)
        ]

    def finish(self, windows: int, fraction: float) -> None:
        s = {name: summarize(values) for name, values in self.stages.items()}
        s[OTHER] = summarize(self.other_ms())
        s[STEP] = summarize(self.step_ms)
        total_s = sum(self.step_ms) / 1e3
        s["fps"] = len(self.step_ms) / total_s if total_s > 0 else None
        rss = [v for v in self.rss_mb if v is not None]
        s["rss_max_mb"] = max(rss) if rss else None
        if self.cuda_peak_allocated_mb:
            s["cuda_peak_allocated_mb"] = max(self.cuda_peak_allocated_mb)
            s["cuda_used_max_mb"] = max(self.cuda_used_mb or [0.0])
        self.summary = s
        self.flat_cost = flat_cost(self, windows, fraction)


@dataclass
class BenchResult:
    config: dict
    environment: dict
    frames: dict  # the frame source
    weights: str
    runs: dict[str, BackendRun]
    comparison: dict | None
    costmodel: dict | None
    process_peak_rss_mb: float
    wall_s: float

    def to_json(self) -> dict:
        return {
            "format": "lmeec-bench",
            "format_version": 1,
            "config": self.config,
            "environment": self.environment,
            "frames": self.frames,
            "weights": self.weights,
            "runs": {name: _round(asdict(run)) for name, run in self.runs.items()},
            "comparison": _round(self.comparison),
            "costmodel": _round(self.costmodel),
            "process_peak_rss_mb": round(self.process_peak_rss_mb, 2),
            "wall_s": round(self.wall_s, 3),
        }


def _round(obj, digits: int = 4):
    """Round floats for the JSON (0.1 µs resolution on ms values); NaN and inf become None."""
    if isinstance(obj, float):
        return round(obj, digits) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v, digits) for v in obj]
    return obj


# --- the run --------------------------------------------------------------------------------------------


class MeasuredPipeline:
    """One backend's pipeline, timer and per-frame record."""

    def __init__(
        self, name: str, backend, device: torch.device, objects: int = 1, step: StepOptions | None = None
    ) -> None:
        self.timer = make_timer(device)
        self.pipeline = Pipeline(backend, section=self.timer.section, options=step)
        self.pipeline.reset(None, num_objects=objects)  # a live stream: the take has no declared length
        self.objects = objects
        self.device = device
        describe = backend.describe()
        describe["threads"] = torch.get_num_threads() if name == "torch" else _ort_threads(backend)
        self.run = BackendRun(name, describe, self.timer.clock)
        if device.type == "cuda":
            self.run.cuda_peak_allocated_mb, self.run.cuda_used_mb = [], []

    def step(self, frame: Frame, record: bool):
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.timer.start_step()
        source, mask, target = frame
        masks = mask if self.objects == 1 else object_masks(mask, self.objects)
        t0 = time.perf_counter_ns()
        result = self.pipeline.step(source, masks, target)
        wall = (time.perf_counter_ns() - t0) / 1e6
        sections = self.timer.finish_step()
        if self.objects > 1:
            if any(r.skipped for r in result):
                raise RuntimeError(
                    f"frame {result[0].frame_index}: an object was skipped (empty source mask)"
                )
            result = result[0]  # object 0 stands for the step in the comparisons
        if result.skipped:
            raise RuntimeError(f"frame {result.frame_index} was skipped (empty source mask)")
        if record:
            r = self.run
            r.frame_index.append(result.frame_index)
            r.step_ms.append(wall)
            for name in STAGE_SECTIONS:
                r.stages[name].append(sections.get(name))
            r.rss_mb.append(rss_mb())
            if cuda:
                r.cuda_peak_allocated_mb.append(torch.cuda.max_memory_allocated(self.device) / 2**20)
                free, total = torch.cuda.mem_get_info(self.device)
                r.cuda_used_mb.append((total - free) / 2**20)
        return result


def object_masks(mask: np.ndarray, objects: int) -> np.ndarray:
    """K distinct source masks from one: the mask shifted by a few pixels per object, [K, H, W]."""
    return np.stack([np.roll(mask, (3 * k, 5 * k), axis=(0, 1)) for k in range(objects)])


def _ort_threads(backend) -> dict:
    sessions = getattr(backend, "sessions", {})
    if not sessions:
        return {}
    session = next(iter(sessions.values()))
    opts = session.get_session_options()
    return {
        "intra_op": opts.intra_op_num_threads or "default (all cores)",
        "inter_op": opts.inter_op_num_threads,
    }


def _agreement(a, b) -> tuple[float, float]:
    """Mask IoU (at the model's size) and the largest logit difference between two results of one frame."""
    inter = np.logical_and(a.mask_model, b.mask_model).sum()
    union = np.logical_or(a.mask_model, b.mask_model).sum()
    iou = 1.0 if union == 0 else float(inter / union)
    return iou, float(np.abs(a.logits - b.logits).max())


def compare_runs(a: BackendRun, b: BackendRun) -> dict:
    """Per-stage ratios a/b of p50 and mean (> 1: b is faster)."""
    out = {"baseline": a.name, "candidate": b.name, "ratio": f"{a.name}/{b.name}", "stages": {}}
    for name in (*STAGE_SECTIONS, OTHER, STEP):
        sa, sb = a.summary.get(name), b.summary.get(name)
        if not sa or not sb:
            continue
        out["stages"][name] = {
            f"{k}_ratio": (sa[k] / sb[k] if sb[k] > 0 else None) for k in ("p50", "p90", "mean")
        }
    return out


def run_benchmark(config: BenchConfig) -> BenchResult:
    """Run the benchmark described by `config` and return every per-frame measurement and summary."""
    from tqdm import tqdm

    config.check()
    log = config.log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch sees no CUDA device here")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    cache = Path(config.cache) if config.cache else default_cache()

    engines = Path(config.engines) if config.engines else None
    if engines is None and ("ort" in config.backends or "trt" in config.backends):
        if config.checkpoint is not None:
            raise ValueError("with --checkpoint, give --engines DIR exported from the same checkpoint")
        if "trt" in config.backends:
            raise ValueError("the trt backend needs --engines DIR (built with `lmeec build trt`)")
    checkpoint = Path(config.checkpoint) if config.checkpoint else None
    cached = engines is None and ("ort" in config.backends or "trt" in config.backends)
    if cached:
        engines, checkpoint = ensure_engines(
            config.preset, config.seed, cache, log, config.progress, objects=config.objects
        )
    weights = _weights(config, engines, cached)
    if "RANDOM" in weights:
        log(f"weights: {weights} — latency is representative, the masks are not")

    sizes = (config.source_size,) * 2, config.target_size[::-1]
    source = (
        synth_frames(cache, config.seed)
        if config.frames_source == "synth"
        else random_frames(config.seed, source_hw=sizes[0], target_hw=sizes[1])
    )
    if config.step.graph:
        log("--graph: each step is one replay, so only the whole step is timed (no stage sections)")
    measured = {
        name: MeasuredPipeline(
            name, _open(name, config, engines, checkpoint), device, config.objects, config.step
        )
        for name in config.backends
    }
    names = list(config.backends)
    agree_iou: list[float] = []
    agree_logit: list[float] = []
    gc.collect()
    total = config.warmup + config.frames
    bar = tqdm(
        range(total),
        desc=f"bench {config.preset} {'+'.join(names)}",
        unit="frame",
        disable=not config.progress,
        file=sys.stderr,
    )
    for i in bar:
        frame = source[i]
        record = i >= config.warmup
        order = names if i % 2 == 0 else names[::-1]
        t0 = time.perf_counter()
        results = {name: measured[name].step(frame, record) for name in order}
        if i == 0 and (config.step.compile or config.step.graph):
            log(
                f"first step {time.perf_counter() - t0:.1f} s (torch.compile and CUDA-graph captures happen "
                "in the first steps; later variants are captured as they first occur)"
            )
        if len(names) == 2 and record:
            iou, diff = _agreement(results[names[0]], results[names[1]])
            agree_iou.append(iou)
            agree_logit.append(diff)
        if config.progress and record:
            bar.set_postfix_str(
                " ".join(f"{n} {measured[n].run.step_ms[-1]:.1f}ms" for n in names), refresh=False
            )
    bar.close()
    for m in measured.values():
        m.run.finish(config.windows, config.window_fraction)
    runs = {name: m.run for name, m in measured.items()}

    comparison = None
    if len(names) == 2:
        comparison = compare_runs(runs[names[0]], runs[names[1]])
        comparison["order"] = "interleaved per frame, alternating which backend steps first"
        comparison["agreement"] = {
            "mask_iou_min": min(agree_iou),
            "mask_iou_mean": float(np.mean(agree_iou)),
            "logit_max_abs_diff": max(agree_logit),
        }

    costmodel = None
    try:
        from lmeec.bench.costmodel import cost_table, measure_peak_gflops

        peak, note = (
            (config.peak_gflops, "given (--peak-gflops)")
            if config.peak_gflops
            else measure_peak_gflops(device)
        )
        costmodel = cost_table(config.preset, engines, runs, peak, config.seed, note)
    except (ImportError, OSError, ValueError, RuntimeError) as exc:  # the timings stand without it
        log(f"cost model skipped: {exc}")

    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items() if k != "log"}
    cfg["backends"] = list(config.backends)
    cfg["engines"] = str(engines) if engines else None
    return BenchResult(
        config=cfg,
        environment=environment(device),
        frames=source.description,
        weights=weights,
        runs=runs,
        comparison=comparison,
        costmodel=costmodel,
        process_peak_rss_mb=peak_rss_mb(),
        wall_s=time.perf_counter() - t_start,
    )


def _weights(config: BenchConfig, engines: Path | None, cached: bool) -> str:
    if cached:
        return f"RANDOM weights (seed {config.seed}; cached export {engines})"
    if config.checkpoint is not None:
        return f"checkpoint {config.checkpoint}"
    if engines is not None:
        from lmeec.export.manifest import read_manifest
        from lmeec.model.checkpoint import describe_weights

        return f"{describe_weights(read_manifest(engines).checkpoint)}, from {engines}"
    return f"RANDOM weights (seed {config.seed})"
