"""Counting tensor allocations: proves that a steady-state step creates no new tensors."""

from __future__ import annotations

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


def resident_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    import os

    try:
        with open("/proc/self/statm") as fp:
            return int(fp.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
