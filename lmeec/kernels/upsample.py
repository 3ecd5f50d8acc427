"""Output: low-resolution mask logits -> the target frame's native-size binary mask (bilinear,
align_corners=False, then > 0), optionally bit-packed along rows (8 pixels a byte, most significant bit
first, as `np.packbits`) so that the copy back to the host moves an eighth of the bytes."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmeec.kernels.triton_support import Impl, LazyKernel, choose, tl, triton


def packed_width(width: int) -> int:
    return (width + 7) // 8


def unpack_mask(packed: np.ndarray, width: int) -> np.ndarray:
    """Host side: [H, ceil(W/8)] uint8 -> [H, W] bool."""
    return np.unpackbits(packed, axis=1, count=width).view(bool)  # 0/1 bytes: a view, no copy


if triton is not None:

    def _logits_to_mask_kernel(
        src,
        dst,
        in_h,
        in_w,
        out_h,
        out_w,
        scale_h,
        scale_w,
        dst_row,
        PACK: tl.constexpr,
        BLOCK_Y: tl.constexpr,
        BLOCK_X: tl.constexpr,
    ):
        """Each program: BLOCK_Y rows × BLOCK_X output columns (PACK: BLOCK_X bytes of 8 columns)."""
        y = tl.program_id(0) * BLOCK_Y + tl.arange(0, BLOCK_Y)
        sy = tl.maximum(scale_h * (y.to(tl.float32) + 0.5) - 0.5, 0.0)
        y0 = tl.minimum(sy.to(tl.int32), in_h - 1)
        ly = tl.minimum(tl.maximum(sy - y0.to(tl.float32), 0.0), 1.0)
        y1 = tl.minimum(y0 + 1, in_h - 1)
        if PACK:
            byte = tl.program_id(1) * BLOCK_X + tl.arange(0, BLOCK_X)
            x = byte[:, None] * 8 + tl.arange(0, 8)[None, :]  # [BLOCK_X, 8]
        else:
            x = tl.program_id(1) * BLOCK_X + tl.arange(0, BLOCK_X)
        sx = tl.maximum(scale_w * (x.to(tl.float32) + 0.5) - 0.5, 0.0)
        x0 = tl.minimum(sx.to(tl.int32), in_w - 1)
        lx = tl.minimum(tl.maximum(sx - x0.to(tl.float32), 0.0), 1.0)
        x1 = tl.minimum(x0 + 1, in_w - 1)
        my = y < out_h
        if PACK:
            y0b, y1b, lyb, myb = y0[:, None, None], y1[:, None, None], ly[:, None, None], my[:, None, None]
            x0b, x1b, lxb, mxb = x0[None], x1[None], lx[None], (x < out_w)[None]
        else:
            y0b, y1b, lyb, myb = y0[:, None], y1[:, None], ly[:, None], my[:, None]
            x0b, x1b, lxb, mxb = x0[None, :], x1[None, :], lx[None, :], (x < out_w)[None, :]
        m = myb & mxb
        a = tl.load(src + y0b * in_w + x0b, mask=m, other=0.0)
        b = tl.load(src + y0b * in_w + x1b, mask=m, other=0.0)
        c = tl.load(src + y1b * in_w + x0b, mask=m, other=0.0)
        d = tl.load(src + y1b * in_w + x1b, mask=m, other=0.0)
        value = (1.0 - lyb) * ((1.0 - lxb) * a + lxb * b) + lyb * ((1.0 - lxb) * c + lxb * d)
        on = (value > 0.0) & m
        if PACK:
            bits = on.to(tl.int32) << (7 - tl.arange(0, 8))[None, None, :]
            packed = tl.sum(bits, axis=2).to(tl.uint8)
            byte2 = byte[None, :]
            tl.store(dst + y[:, None] * dst_row + byte2, packed, mask=my[:, None] & (byte2 * 8 < out_w))
        else:
            tl.store(dst + y[:, None] * dst_row + x[None, :], on.to(tl.uint8), mask=m)

    _logits_to_mask = LazyKernel(_logits_to_mask_kernel)


class LogitsToMask:
    """[L, L] float32 logits on the device -> [H, W] mask (bool), or [H, ceil(W/8)] packed uint8."""

    def __init__(self, low: int, hw: tuple[int, int], device: torch.device, impl: Impl = "auto") -> None:
        self.low, self.hw, self.device = low, (int(hw[0]), int(hw[1])), device
        self.impl = choose(impl, device)
        self._native = torch.empty(1, 1, *self.hw, device=device) if self.impl == "torch" else None
        self._bits = (
            torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=device)
            if self.impl == "torch"
            else None
        )

    def out_shape(self, pack: bool) -> tuple[int, int]:
        return (self.hw[0], packed_width(self.hw[1])) if pack else self.hw

    def __call__(self, logits: Tensor, out: Tensor, pack: bool = False) -> Tensor:
        """`out`: bool [H, W] (pack False) or uint8 [H, ceil(W/8)] (pack True)."""
        h, w = self.hw
        if tuple(out.shape) != self.out_shape(pack):
            raise ValueError(f"mask output must be {self.out_shape(pack)}, got {tuple(out.shape)}")
        if self.impl == "torch":
            torch.ops.aten.upsample_bilinear2d.out(
                logits.view(1, 1, self.low, self.low), [h, w], False, None, None, out=self._native
            )
            on = self._native[0, 0] > 0
            if not pack:
                return out.copy_(on)
            padded = F.pad(on, (0, packed_width(w) * 8 - w)).view(h, -1, 8).to(torch.uint8)
            return out.copy_((padded * self._bits).sum(-1))
        block_y, block_x = (64, 64) if os.environ.get("TRITON_INTERPRET") == "1" else (8, 64)
        cols = packed_width(w) if pack else w
        grid = (triton.cdiv(h, block_y), triton.cdiv(cols, block_x))
        _logits_to_mask[grid](
            logits,
            out.view(torch.uint8) if out.dtype == torch.bool else out,
            self.low,
            self.low,
            h,
            w,
            self.low / h,
            self.low / w,
            out.stride(0),
            PACK=pack,
            BLOCK_Y=block_y,
            BLOCK_X=block_x,
        )
        return out
