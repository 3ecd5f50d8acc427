"""Stage-section timers (monotonic host clock on the CPU, CUDA events on a GPU) and peak memory."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

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
