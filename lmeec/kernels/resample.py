"""Separable resampling with PIL's rules: frames (8-bit bicubic, exactly as `PIL.Image.resize`) and the
source mask (antialiased bilinear in float, as torch's `F.interpolate(..., antialias=True)`).

PIL resizes an 8-bit image in two passes, horizontal then vertical (Pillow >= 13 runs the vertical pass
first when the height shrinks by more than twice as many pixels as the width: `vertical_first`). Per output pixel it takes the input
pixels `lo .. lo+size` around its centre, weighted by the filter stretched by the downscale factor
(antialiasing), with the weights normalised to sum 1 and turned into fixed-point integers (22 fractional
bits); each pass rounds and clips its result to 8 bits. The same integer arithmetic on the device gives the
same bytes. Each pass is one launch of `_resample_axis` (Triton) or `_resample_axis_torch` (fallback).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import PIL
import torch
from torch import Tensor

from lmeec.kernels.triton_support import Impl, LazyKernel, choose, tl, triton
from lmeec.model.preprocess import IMAGENET_MEAN, IMAGENET_STD

PRECISION_BITS = 22  # PIL: 32 bits - 8 for the value - 2 for overshoot of the negative lobes
Filter = Literal["bicubic", "bilinear"]
SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}
Out = Literal["u8", "lut", "f32", "mask"]
_OUT_CODE = {"u8": 0, "lut": 1, "f32": 2, "mask": 3}


def vertical_first(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> bool:
    """The installed Pillow's pass order: vertical first iff (Pillow >= 13 and) the height loses more than
    twice as many pixels as the width and the height shrinks (Pillow's `ImagingResampleInner`)."""
    if int(PIL.__version__.split(".")[0]) < 13:
        return False
    return out_hw[0] < in_hw[0] and in_hw[0] - out_hw[0] > 2 * (in_hw[1] - out_hw[1])


def _filter(name: Filter, x: np.ndarray) -> np.ndarray:
    """PIL's filter kernels in double precision, with its operation order (bicubic a = -0.5)."""
    x = np.abs(x)
    if name == "bilinear":
        return np.where(x < 1.0, 1.0 - x, 0.0)
    a = -0.5
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@dataclass(frozen=True)
class AxisWeights:
    """One axis of a resize: output i reads inputs lo[i] … lo[i]+count[i]-1 with weights[i, :count[i]]."""

    in_size: int
    out_size: int
    lo: np.ndarray  # [out] int32
    count: np.ndarray  # [out] int32
    weights: np.ndarray  # [out, ksize] float64, zero past count

    @property
    def ksize(self) -> int:
        return self.weights.shape[1]

    def fixed_point(self) -> np.ndarray:
        """PIL's 8-bit coefficients: round half away from zero to 22 fractional bits (int32)."""
        scaled = self.weights * float(1 << PRECISION_BITS)
        return np.trunc(np.where(self.weights < 0, scaled - 0.5, scaled + 0.5)).astype(np.int32)


def axis_weights(in_size: int, out_size: int, kind: Filter) -> AxisWeights:
    """PIL's `precompute_coeffs` for a whole axis (box = the full image), in the same double arithmetic."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"cannot resample an axis of {in_size} to {out_size} pixels")
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT[kind] * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    lo = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    hi = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size)
    count = hi - lo
    taps = np.arange(ksize)
    inside = taps[None, :] < count[:, None]
    w = np.where(
        inside, _filter(kind, ((taps[None, :] + lo[:, None]) - center[:, None] + 0.5) / filterscale), 0.0
    )
    total = np.zeros(out_size)
    for j in range(ksize):  # sequential sum, as PIL's loop (a pairwise sum can round differently)
        total = total + w[:, j]
    w = np.where(total[:, None] != 0.0, w / np.where(total == 0.0, 1.0, total)[:, None], w)
    return AxisWeights(in_size, out_size, lo.astype(np.int32), count.astype(np.int32), w)


def normalize_lut(device: torch.device) -> Tensor:
    """[3, 256] float32: ImageNet-normalised value of each 8-bit level, computed as the reference does."""
    levels = torch.arange(256, dtype=torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1)
    return ((levels[None] - mean) / std).to(device)


@dataclass
class DeviceAxis:
    """An axis' weights on the device, in the pass' arithmetic (int32 fixed point or float32)."""

    in_size: int
    out_size: int
    ksize: int
    lo: Tensor
    weights: Tensor
    taps: Tensor  # [out, ksize] int64: lo + j clamped into the input (for the torch fallback)

    @classmethod
    def build(cls, axis: AxisWeights, fixed: bool, device: torch.device) -> DeviceAxis:
        weights = torch.from_numpy(axis.fixed_point() if fixed else axis.weights.astype(np.float32))
        lo = torch.from_numpy(axis.lo)
        taps = (lo.long()[:, None] + torch.arange(axis.ksize)[None, :]).clamp_(max=axis.in_size - 1)
        return cls(
            axis.in_size, axis.out_size, axis.ksize, lo.to(device), weights.to(device), taps.to(device)
        )


def _resample_axis_torch(
    src: Tensor,
    dst: Tensor,
    axis: DeviceAxis,
    dim: int,
    out: Out,
    lut: Tensor | None,
    on_off: tuple[float, float],
) -> None:
    """Fallback for one pass: src and dst are [..., n, ...] views with the resampled axis at `dim`."""
    fixed = axis.weights.dtype == torch.int32
    shape = [1] * src.dim()
    shape[dim] = axis.out_size
    acc = None
    for j in range(axis.ksize):
        taken = src.index_select(dim, axis.taps[:, j]).to(torch.int32 if fixed else torch.float32)
        term = taken * axis.weights[:, j].view(shape)
        acc = term if acc is None else acc.add_(term)
    if fixed:
        level = acc.add_(1 << (PRECISION_BITS - 1)).bitwise_right_shift_(PRECISION_BITS).clamp_(0, 255)
        if out == "u8":
            dst.copy_(level)
        else:  # lut: channel axis is the last of src (HWC), first of dst (CHW)
            channels = level.shape[-1]
            for c in range(channels):
                dst[c].copy_(lut[c][level[..., c].long()])
    elif out == "mask":
        dst.copy_(torch.where(acc >= 0.5, on_off[0], on_off[1]))
    else:
        dst.copy_(acc)


if triton is not None:

    def _resample_axis_kernel(
        src,
        dst,
        lo_ptr,
        w_ptr,
        lut,
        n_in,
        n_out,
        n_other,
        s_res,
        s_other,
        s_ch,
        d_res,
        d_other,
        d_ch,
        on_value,
        off_value,
        CHANNELS: tl.constexpr,
        KSIZE: tl.constexpr,
        FIXED: tl.constexpr,
        OUT: tl.constexpr,
        BLOCK_O: tl.constexpr,
        BLOCK_P: tl.constexpr,
    ):
        """One separable pass: dst[o, p, c] = sum_j src[lo[o] + j, p, c] * w[o, j] (strides given)."""
        o = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
        p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        mo = o < n_out
        mp = p < n_other
        m = mo[:, None] & mp[None, :]
        start = tl.load(lo_ptr + o, mask=mo, other=0)
        for c in tl.static_range(CHANNELS):
            if FIXED:
                acc = tl.full((BLOCK_O, BLOCK_P), 1 << 21, tl.int32)
            else:
                acc = tl.zeros((BLOCK_O, BLOCK_P), tl.float32)
            for j in range(KSIZE):
                w = tl.load(w_ptr + o * KSIZE + j, mask=mo, other=0)
                idx = tl.minimum(start + j, n_in - 1)
                v = tl.load(src + idx[:, None] * s_res + p[None, :] * s_other + c * s_ch, mask=m, other=0)
                if FIXED:
                    acc += v.to(tl.int32) * w[:, None]
                else:
                    acc += v.to(tl.float32) * w[:, None]
            where = dst + o[:, None] * d_res + p[None, :] * d_other + c * d_ch
            if OUT == 0:
                level = tl.minimum(tl.maximum(acc >> 22, 0), 255)
                tl.store(where, level.to(tl.uint8), mask=m)
            elif OUT == 1:
                level = tl.minimum(tl.maximum(acc >> 22, 0), 255)
                tl.store(where, tl.load(lut + c * 256 + level, mask=m, other=0.0), mask=m)
            elif OUT == 2:
                tl.store(where, acc, mask=m)
            else:
                tl.store(where, tl.where(acc >= 0.5, on_value, off_value), mask=m)

    _resample_axis = LazyKernel(_resample_axis_kernel)


def _launch(
    src: Tensor,
    dst: Tensor,
    axis: DeviceAxis,
    dim: int,
    out: Out,
    lut: Tensor | None,
    on_off: tuple[float, float],
    channels: int,
    dst_dims: tuple[int, int, int],
) -> None:
    """Triton pass: src [.., ..] with resampled `dim` (0 or 1) and channels last; dst dims (res, other, ch)."""
    s_res, s_other = src.stride(dim), src.stride(1 - dim)
    s_ch = src.stride(2) if src.dim() == 3 else 0
    n_other = src.shape[1 - dim]
    d_res, d_other, d_ch = (dst.stride(i) if i is not None else 0 for i in dst_dims)
    block_o, block_p = (64, 256) if os.environ.get("TRITON_INTERPRET") == "1" else (32, 32)
    grid = (triton.cdiv(axis.out_size, block_o), triton.cdiv(n_other, block_p))
    _resample_axis[grid](
        src,
        dst,
        axis.lo,
        axis.weights,
        lut if lut is not None else axis.weights,
        axis.in_size,
        axis.out_size,
        n_other,
        s_res,
        s_other,
        s_ch,
        d_res,
        d_other,
        d_ch,
        float(on_off[0]),
        float(on_off[1]),
        CHANNELS=channels,
        KSIZE=axis.ksize,
        FIXED=axis.weights.dtype == torch.int32,
        OUT=_OUT_CODE[out],
        BLOCK_O=block_o,
        BLOCK_P=block_p,
    )


class FrameResize:
    """uint8 H×W×3 frame on the device -> S×S with PIL's bicubic, as uint8 HWC or normalised float CHW.

    Built once per frame size (weights and the intermediate one-axis-resized image preallocated)."""

    def __init__(self, hw: tuple[int, int], size: int, device: torch.device, impl: Impl = "auto") -> None:
        self.hw, self.size, self.device = (int(hw[0]), int(hw[1])), int(size), device
        self.impl = choose(impl, device)
        hw, size = self.hw, self.size
        self.cols = DeviceAxis.build(axis_weights(hw[1], size, "bicubic"), True, device)
        self.rows = DeviceAxis.build(axis_weights(hw[0], size, "bicubic"), True, device)
        self.lut = normalize_lut(device)
        self.vertical_first = vertical_first(self.hw, (size, size))
        between = (size, hw[1]) if self.vertical_first else (hw[0], size)
        self.between = torch.empty(*between, 3, dtype=torch.uint8, device=device)  # after the first pass

    def _check(self, frame: Tensor) -> None:
        if frame.dtype != torch.uint8 or tuple(frame.shape) != (*self.hw, 3) or frame.device != self.device:
            raise ValueError(
                f"frame must be uint8 {self.hw[0]}×{self.hw[1]}×3 on {self.device}, "
                f"got {frame.dtype} {tuple(frame.shape)} on {frame.device}"
            )

    def _pass(self, src: Tensor, dst: Tensor, dim: int, out: Out) -> None:
        """Resample HWC `src` along dim 0 (rows) or 1 (columns) into `dst` (HWC, or CHW for `lut`)."""
        axis = self.rows if dim == 0 else self.cols
        if self.impl == "torch":
            _resample_axis_torch(src, dst, axis, dim, out, self.lut, (1.0, 0.0))
            return
        if out == "lut":
            dst_dims = (1, 2, 0) if dim == 0 else (2, 1, 0)
        else:
            dst_dims = (0, 1, 2) if dim == 0 else (1, 0, 2)
        _launch(src, dst, axis, dim, out, self.lut, (1.0, 0.0), 3, dst_dims)

    def _run(self, frame: Tensor, out: Tensor, kind: Out) -> Tensor:
        self._check(frame)
        first, second = (0, 1) if self.vertical_first else (1, 0)
        self._pass(frame, self.between, first, "u8")
        self._pass(self.between, out, second, kind)
        return out

    def rgb8(self, frame: Tensor, out: Tensor) -> Tensor:
        """PIL-equal uint8 [S, S, 3] into `out`."""
        return self._run(frame, out, "u8")

    def normalized(self, frame: Tensor, out: Tensor) -> Tensor:
        """The model input [3, S, S] float32 into `out`: PIL bicubic, /255, ImageNet-normalised."""
        return self._run(frame, out, "lut")


class MaskResize:
    """Binary H×W source mask (uint8 or bool on the device) -> S×S model input: antialiased bilinear, >= 0.5.

    `on_off` are the values written for mask / background (1, 0 for the research input; 10, -10 for sam2's)."""

    def __init__(self, hw: tuple[int, int], size: int, device: torch.device, impl: Impl = "auto") -> None:
        self.hw, self.size, self.device = (int(hw[0]), int(hw[1])), int(size), device
        self.impl = choose(impl, device)
        hw, size = self.hw, self.size
        self.cols = DeviceAxis.build(axis_weights(hw[1], size, "bilinear"), False, device)
        self.rows = DeviceAxis.build(axis_weights(hw[0], size, "bilinear"), False, device)
        self.between = torch.empty(hw[0], size, dtype=torch.float32, device=device)

    def __call__(self, mask: Tensor, out: Tensor, on_off: tuple[float, float] = (1.0, 0.0)) -> Tensor:
        """`out` [S, S] float32 receives on/off per pixel."""
        if tuple(mask.shape) != self.hw or mask.device != self.device:
            raise ValueError(
                f"mask must be {self.hw[0]}×{self.hw[1]} on {self.device}, got {tuple(mask.shape)}"
            )
        if mask.dtype == torch.bool:
            mask = mask.view(torch.uint8)
        if self.impl == "triton":
            _launch(mask, self.between, self.cols, 1, "f32", None, on_off, 1, (1, 0, None))
            _launch(self.between, out, self.rows, 0, "mask", None, on_off, 1, (0, 1, None))
        else:
            _resample_axis_torch(mask, self.between, self.cols, 1, "f32", None, on_off)
            _resample_axis_torch(self.between, out, self.rows, 0, "mask", None, on_off)
        return out
