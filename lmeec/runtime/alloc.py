"""Memory accounting: tensor allocations of a step (none in steady state) and resident memory."""

from __future__ import annotations

import os

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class AllocationCounter(TorchDispatchMode):
    """Records torch ops whose result owns fresh storage; views, in-place and out= results do not count."""

    def __init__(self) -> None:
        super().__init__()
        self.fresh: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        known = {
            a.untyped_storage().data_ptr()
            for a in [*args, *kwargs.values()]
            if isinstance(a, torch.Tensor) and a.untyped_storage().nbytes()
        }
        for r in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(r, torch.Tensor) and r.numel() and r.untyped_storage().data_ptr() not in known:
                self.fresh.append(str(func))
        return out


def rss_mb() -> float | None:
    """Current resident set size of this process in MiB (None where /proc is absent)."""
    try:
        with open("/proc/self/statm", "rb") as fp:
            return int(fp.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None
