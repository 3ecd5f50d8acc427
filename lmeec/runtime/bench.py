"""Latency and memory benchmark of the runtime `Pipeline`: per stage, per frame, one or two backends.

>>> from lmeec.runtime.bench import BenchConfig, run_benchmark
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
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from lmeec.model.config import get_preset
from lmeec.runtime.alloc import rss_mb
from lmeec.runtime.pipeline import STAGE_SECTIONS, Pipeline

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
    frames_source: str = "synth"  # synth: a rendered ego-exo take, cycled; random: noise frames + a blob mask
    cache: Path | str | None = None  # engines and the synthetic take (default ~/.cache/lmeec)
    windows: int = 3  # flat-cost windows at start / middle / end
    window_fraction: float = 0.1  # each window's share of the measured frames
    peak_gflops: float | None = None  # device peak for the cost model (default: measured FP32 matmul rate)
    reference_ms: float | None = None  # a stated (not measured here) reference time per frame
    ort_spinning: bool = False  # ONNX Runtime thread spin-waiting (off: see OrtBackend)
    progress: bool = True
    log: Callable[[str], None] | None = None  # where notes go (default: stderr)

    def check(self) -> None:
        get_preset(self.preset)
        if not 1 <= len(self.backends) <= 2 or len(set(self.backends)) != len(self.backends):
            raise ValueError(f"give one backend or two different ones to compare, got {list(self.backends)}")
        if self.frames < 1:
            raise ValueError("--frames must be at least 1")
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


# --- timers ---------------------------------------------------------------------------------------------


class CpuSectionTimer:
    """Stage sections timed with the monotonic `perf_counter_ns` (host work is synchronous on the CPU)."""

    clock = "cpu perf_counter_ns"

    def __init__(self) -> None:
        self._times: dict[str, float] = {}

    def start_step(self) -> None:
        self._times = {}

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter_ns()
        try:
            yield
        finally:
            self._times[name] = self._times.get(name, 0.0) + (time.perf_counter_ns() - t0) / 1e6

    def finish_step(self) -> dict[str, float]:
        """Milliseconds per section that ran in this step."""
        return self._times


class CudaEventTimer:
    """Stage sections timed with CUDA events on the current stream, read after the step synchronised.

    Events are allocated once per section name and reused, so timing adds no allocation and no
    synchronisation inside a step; `finish_step` waits for each end event before reading it.
    """

    clock = "cuda events"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._events: dict[str, tuple[torch.cuda.Event, torch.cuda.Event]] = {}
        self._order: list[str] = []

    def _pair(self, name: str) -> tuple[torch.cuda.Event, torch.cuda.Event]:
        if name not in self._events:
            self._events[name] = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        return self._events[name]

    def start_step(self) -> None:
        self._order = []

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        if name in self._order:
            raise RuntimeError(f"section {name!r} entered twice in one step")
        start, end = self._pair(name)
        stream = torch.cuda.current_stream(self.device)
        start.record(stream)
        try:
            yield
        finally:
            end.record(stream)
            self._order.append(name)

    def finish_step(self) -> dict[str, float]:
        out = {}
        for name in self._order:
            start, end = self._events[name]
            end.synchronize()
            out[name] = float(start.elapsed_time(end))
        return out


def make_timer(device: torch.device) -> CpuSectionTimer | CudaEventTimer:
    return CudaEventTimer(device) if device.type == "cuda" else CpuSectionTimer()


# --- memory ---------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (getrusage: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --- frames ---------------------------------------------------------------------------------------------

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # source RGB, source mask, target RGB


@dataclass
class FrameSource:
    """A small set of frames held in memory and cycled, so that reading frames costs nothing in the loop."""

    frames: list[Frame]
    description: dict

    def __getitem__(self, index: int) -> Frame:
        return self.frames[index % len(self.frames)]


def default_cache() -> Path:
    return Path(os.environ.get("LMEEC_CACHE_DIR") or Path.home() / ".cache" / "lmeec")


def synth_frames(cache: Path, seed: int = 0, frames: int = 12) -> FrameSource:
    """Frames of one synthetic ego-exo take (rendered once into the cache): those with a source mask."""
    from lmeec.eval.synth import SynthConfig, load_synth, synthesize

    config = SynthConfig(takes=1, frames=frames, seed=seed)
    root = cache / "synth" / f"take1-f{frames}-s{config.scale}-seed{seed}"
    if not (root / "relations_synth.json").is_file():
        synthesize(root, config)
    units = list(load_synth(root).units("ego-exo"))
    if not units:
        raise RuntimeError(f"{root}: the synthetic take has no ego-exo unit")
    unit = max(units, key=lambda u: len(u.query.masks))
    kept = [
        (f.source_rgb, f.source_mask, f.target_rgb)
        for f in unit.frames(all_frames=True)
        if f.source_mask is not None and f.source_mask.any()
    ]
    if not kept:
        raise RuntimeError(f"{root}: no frame of {unit.obj} has a source mask")
    src, _, tgt = kept[0]
    return FrameSource(
        kept,
        {
            "source": "synth",
            "path": str(root),
            "object": unit.obj,
            "distinct_frames": len(kept),
            "source_hw": list(src.shape[:2]),
            "target_hw": list(tgt.shape[:2]),
        },
    )


def random_frames(
    seed: int = 0, count: int = 8, source_hw: tuple[int, int] = (352, 352), target_hw=(540, 960)
) -> FrameSource:
    """Noise frames at the synthetic take's sizes, each with an elliptic source mask (~8 % of the frame)."""
    rng = np.random.default_rng(seed)
    frames = []
    yy, xx = np.mgrid[: source_hw[0], : source_hw[1]]
    for _ in range(count):
        src = rng.integers(0, 256, (*source_hw, 3), dtype=np.uint8)
        tgt = rng.integers(0, 256, (*target_hw, 3), dtype=np.uint8)
        cy, cx = rng.uniform(0.3, 0.7, 2) * np.array(source_hw)
        ry, rx = rng.uniform(0.12, 0.2, 2) * np.array(source_hw)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        frames.append((src, mask, tgt))
    return FrameSource(
        frames,
        {
            "source": "random",
            "seed": seed,
            "distinct_frames": count,
            "source_hw": list(source_hw),
            "target_hw": list(target_hw),
        },
    )


# --- backends -------------------------------------------------------------------------------------------


def engines_cache_dir(cache: Path, preset: str, seed: int) -> Path:
    return cache / "engines" / f"{get_preset(preset).name}-seed{seed}"


def ensure_engines(
    preset: str,
    seed: int,
    cache: Path,
    log: Callable[[str], None],
    progress: bool = True,
    simplify: bool = True,
) -> tuple[Path, Path]:
    """The cached ONNX export of `preset` with RANDOM weights of `seed` and the
    checkpoint it was exported from (for the torch backend); both are made on first use."""
    from lmeec.model.checkpoint import load_into, save_checkpoint
    from lmeec.model.network import build_model

    folder = engines_cache_dir(cache, preset, seed)
    checkpoint = folder.with_name(folder.name + ".pt")
    if (folder / "manifest.json").is_file() and checkpoint.is_file():
        log(f"engines: {folder} (cached export of RANDOM weights, seed {seed})")
        return folder, checkpoint
    from lmeec.export.onnx import export_onnx

    log(
        f"engines: exporting preset {preset} with RANDOM weights (seed {seed}) to {folder} "
        "(once; minutes for the large presets). Timings are representative, masks are NOT meaningful: "
        "pass --engines DIR (and --checkpoint FILE) for trained weights"
    )
    model = build_model(preset, seed=seed)
    save_checkpoint(model, checkpoint)
    ckpt = load_into(model, checkpoint)
    export_onnx(model, folder, ckpt, simplify=simplify, progress=progress, overwrite=True)
    return folder, checkpoint


def _open(kind: str, config: BenchConfig, engines: Path | None, checkpoint: Path | None):
    from lmeec.runtime.backend import open_backend

    device = torch.device(config.device)
    if kind == "ort" and device.type == "cuda":
        # Run ONNX Runtime on torch's current stream so that the section events time its kernels.
        from lmeec.runtime.ort_backend import OrtBackend

        stream = torch.cuda.current_stream(device).cuda_stream
        return OrtBackend(
            engines,
            preset=config.preset,
            device=device,
            threads=config.threads,
            provider_options={"cuda": {"user_compute_stream": str(stream), "device_id": device.index or 0}},
            spinning=config.ort_spinning,
        )
    return open_backend(
        kind,
        engines=engines,
        preset=config.preset,
        checkpoint=checkpoint if kind == "torch" else None,
        seed=None if engines is not None and checkpoint is None else config.seed,
        device=device,
        threads=config.threads,
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


# --- environment ----------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fp:
            for line in fp:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def environment(device: torch.device) -> dict:
    from lmeec.export.manifest import library_versions

    env = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "env_threads": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
        },
        "versions": library_versions(("lmeec", "torch", "sam2", "onnx", "onnxruntime", "numpy", "tensorrt")),
        "git": _git_commit(),
        "gpu": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu"] = {
            "name": props.name,
            "memory_mb": props.total_memory / 2**20,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "driver": _nvidia_driver(),
        }
    return env


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


# --- the run --------------------------------------------------------------------------------------------


class MeasuredPipeline:
    """One backend's pipeline, timer and per-frame record."""

    def __init__(self, name: str, backend, device: torch.device) -> None:
        self.timer = make_timer(device)
        self.pipeline = Pipeline(backend, section=self.timer.section)
        self.pipeline.reset(None)  # a live stream: the take has no declared length
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
        t0 = time.perf_counter_ns()
        result = self.pipeline.step(*frame)
        wall = (time.perf_counter_ns() - t0) / 1e6
        sections = self.timer.finish_step()
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
        engines, checkpoint = ensure_engines(config.preset, config.seed, cache, log, config.progress)
    weights = _weights(config, engines, cached)
    if "RANDOM" in weights:
        log(f"weights: {weights} — latency is representative, the masks are not")

    source = (
        synth_frames(cache, config.seed) if config.frames_source == "synth" else random_frames(config.seed)
    )
    measured = {
        name: MeasuredPipeline(name, _open(name, config, engines, checkpoint), device)
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
        results = {name: measured[name].step(frame, record) for name in order}
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
        from lmeec.runtime.costmodel import cost_table, measure_peak_gflops

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

        ckpt = read_manifest(engines).checkpoint
        if "random_seed" in ckpt:
            return f"RANDOM weights (seed {ckpt['random_seed']}, from {engines})"
        return f"checkpoint {ckpt.get('file')} (sha256 {str(ckpt.get('sha256'))[:12]}…, from {engines})"
    return f"RANDOM weights (seed {config.seed})"
