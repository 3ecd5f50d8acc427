"""Bank compression in one kernel, with the kept-slot count on the device.

Per view and token: distances ||m[k] - m[k+1]|| between consecutive slots k < n (n = count, read from a
device tensor, so no host round trip decides anything), the first minimum k*, then `mean` merges the pair
into slot k* and both modes shift the slots above k*+1 down by one (rules: lmeec.model.memory.compress;
in-place layout: lmeec.runtime.ring.compress_). The result is also written to `mirror` (the
bank-attention input: all K slots) when given; `count` is left unchanged: the bank stays full.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from lmeec.kernels.triton_support import Impl, LazyKernel, choose, tl, triton
from lmeec.model.config import Compression

if triton is not None:

    def _compress_kernel(
        slots,
        mirror,
        count_ptr,
        tokens,
        s_view,
        s_slot,
        s_tok,
        m_view,
        m_slot,
        m_tok,
        KEPT: tl.constexpr,
        CHANNELS: tl.constexpr,
        MEAN: tl.constexpr,
        MIRROR: tl.constexpr,
        BLOCK_T: tl.constexpr,
    ):
        v = tl.program_id(0)
        t = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
        ch = tl.arange(0, CHANNELS)
        mt = t < tokens
        m = mt[:, None] & (ch[None, :] < CHANNELS)
        n = tl.load(count_ptr)
        base = slots + v * s_view + t[:, None] * s_tok + ch[None, :]
        best = tl.full((BLOCK_T,), float("inf"), tl.float32)
        best_k = tl.zeros((BLOCK_T,), tl.int32)
        for k in tl.static_range(KEPT):
            a = tl.load(base + k * s_slot, mask=m, other=0.0)
            b = tl.load(base + (k + 1) * s_slot, mask=m, other=0.0)
            diff = a - b
            dist = tl.sqrt(tl.sum(diff * diff, axis=1))
            better = (dist < best) & (k < n)  # strict: the first minimum wins ties
            best = tl.where(better, dist, best)
            best_k = tl.where(better, k, best_k)
        go = mt & (n > 0)
        for j in tl.static_range(KEPT):
            src = j + (j > best_k).to(tl.int32)
            val = tl.load(base + src[:, None] * s_slot, mask=m, other=0.0)
            if MEAN:
                nxt = tl.load(base + (j + 1) * s_slot, mask=m, other=0.0)
                val = tl.where((j == best_k)[:, None], (val + nxt) * 0.5, val)
            keep = tl.load(base + j * s_slot, mask=m, other=0.0)
            live = (go & (n > j))[:, None]
            val = tl.where(live, val, keep)
            tl.store(base + j * s_slot, val, mask=m)
            if MIRROR:
                tl.store(mirror + v * m_view + j * m_slot + t[:, None] * m_tok + ch[None, :], val, mask=m)

    _compress = LazyKernel(_compress_kernel)


def compress_torch(slots: Tensor, count: Tensor, mode: Compression, mirror: Tensor | None = None) -> None:
    """Fallback: the kernel's rule with torch ops, count a 0-d device tensor (no host read)."""
    v, k1, t, c = slots.shape
    kept = k1 - 1
    ages = torch.arange(kept, device=slots.device)
    dist = torch.linalg.vector_norm(slots[:, :kept] - slots[:, 1:], dim=-1)  # [V, K, T]
    dist = dist.masked_fill((ages >= count)[None, :, None], float("inf"))
    closest = torch.argmin(dist, dim=1)  # [V, T], first minimum
    merged = slots[:, :kept]
    if mode == "mean":
        at = (ages[None, :, None] == closest[:, None, :])[..., None]
        merged = torch.where(at, (slots[:, :kept] + slots[:, 1:]) * 0.5, merged)
    elif mode != "drop":
        raise ValueError(f"unknown compression {mode!r}")
    shift = (ages[None, :, None] > closest[:, None, :])[..., None]
    result = torch.where(shift, slots[:, 1:], merged)
    live = ((ages < count)[None, :, None, None]) & (count > 0)
    result = torch.where(live, result, slots[:, :kept])
    slots[:, :kept].copy_(result)
    if mirror is not None:
        mirror.copy_(result)


def compress(
    slots: Tensor, count: Tensor, mode: Compression, mirror: Tensor | None = None, impl: Impl = "auto"
) -> None:
    """In place on slots [V, K+1, T, C] (float32, channels contiguous): n = count[0] slots plus the incoming
    one become n; `mirror` [V, K, T, C] receives the kept slots."""
    if mode not in ("drop", "mean"):
        raise ValueError(f"unknown compression {mode!r}; choose 'drop' or 'mean'")
    if choose(impl, slots.device) == "torch":
        compress_torch(slots, count.reshape(()), mode, mirror)
        return
    v, k1, t, c = slots.shape
    if slots.stride(3) != 1 or (mirror is not None and mirror.stride(3) != 1):
        raise ValueError("compress needs channel-contiguous slots")
    block_t = 64 if os.environ.get("TRITON_INTERPRET") == "1" else 16
    m = mirror if mirror is not None else slots
    _compress[(v, triton.cdiv(t, block_t))](
        slots,
        m,
        count,
        t,
        slots.stride(0),
        slots.stride(1),
        slots.stride(2),
        m.stride(0),
        m.stride(1),
        m.stride(2),
        KEPT=k1 - 1,
        CHANNELS=c,
        MEAN=mode == "mean",
        MIRROR=mirror is not None,
        BLOCK_T=block_t,
    )
