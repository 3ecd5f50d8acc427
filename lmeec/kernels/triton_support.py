"""Whether a Triton kernel can run on a tensor's device: CUDA with Triton installed, or CPU tensors under
the Triton interpreter (`TRITON_INTERPRET=1`, which must be set before triton is imported)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton on this machine: every kernel has a torch fallback
    triton = None
    tl = None

Impl = Literal["auto", "triton", "torch"]


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_runs_on(device: torch.device) -> bool:
    """True where Triton kernels can be launched on tensors of `device`."""
    if triton is None:
        return False
    return device.type == "cuda" if not interpreting() else device.type == "cpu"


def choose(impl: Impl, device: torch.device) -> Literal["triton", "torch"]:
    """`auto` -> Triton on CUDA, else torch (never the slow interpreter); an explicit `triton` that cannot
    run is an error."""
    if impl == "torch":
        return "torch"
    if impl == "triton":
        if not triton_runs_on(device):
            why = "triton is not installed" if triton is None else f"Triton cannot launch on {device.type}"
            raise RuntimeError(f"kernels=triton requested but {why} (TRITON_INTERPRET=1 runs it on CPU)")
        return "triton"
    if impl != "auto":
        raise ValueError(f"unknown kernel implementation {impl!r}; choose auto, triton or torch")
    return "triton" if triton_runs_on(device) and device.type == "cuda" else "torch"


class LazyKernel:
    """A Triton kernel compiled (`triton.jit`) at its first launch, so that `TRITON_INTERPRET` set after
    this module was imported (by a test's conftest) still applies."""

    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn
        self._jitted: Any = None

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., Any]:
        if self._jitted is None:
            self._jitted = triton.jit(self.fn)
        return self._jitted[grid]
