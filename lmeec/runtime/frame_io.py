"""Frames in, masks out: the step's pre- and post-processing, on the host (PIL, the reference's own code,
the default) or on the backend's device (`lmeec.kernels`: uint8 frames uploaded and resized there,
PIL-exact; the target mask bit-packed before the copy back).

Each is split into a host part (`stage`: bytes into pinned buffers; `mask`, `vanished`: read the copied-back
results after the step's one synchronisation), the copies (`upload`, `download`: asynchronous, between
pinned and device buffers) and the device work (`preprocess`, `postprocess`: device buffers only, so it can
be captured in a CUDA graph and replayed between the copies).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor

from lmeec.kernels.resample import FrameResize, MaskResize
from lmeec.kernels.triton_support import Impl
from lmeec.kernels.upsample import LogitsToMask, unpack_mask
from lmeec.model.config import Preset
from lmeec.model.preprocess import IMAGENET_MEAN, IMAGENET_STD, resize_rgb8

aten = torch.ops.aten


def _rgb8(frame: np.ndarray) -> np.ndarray:
    """Float frames rounded to 8 bits, as `resize_rgb8` does."""
    return frame if frame.dtype == np.uint8 else np.round(frame * 255.0).astype(np.uint8)


class FrameIO(ABC):
    """Buffers for one take's frame sizes and object profile; `key` names them (part of a step variant)."""

    def __init__(
        self, preset: Preset, profile: int, source_hw: tuple[int, int], target_hw: tuple[int, int]
    ) -> None:
        self.preset, self.profile = preset, profile
        self.source_hw, self.target_hw = tuple(source_hw), tuple(target_hw)
        self.on_off = (10.0, -10.0) if preset.source_mask == "sam2" else (1.0, 0.0)
        self.key = (type(self).__name__, self.source_hw, self.target_hw, profile)

    def matches(self, profile: int, source_hw: tuple[int, int], target_hw: tuple[int, int]) -> bool:
        return (self.profile, self.source_hw, self.target_hw) == (profile, tuple(source_hw), tuple(target_hw))

    @abstractmethod
    def stage(self, source: np.ndarray, target: np.ndarray, masks: dict[int, np.ndarray]) -> None:
        """Host: the frame pair and the active objects' source masks into pinned staging buffers."""

    @abstractmethod
    def upload(self) -> None:
        """The staged bytes to the device (asynchronous)."""

    @abstractmethod
    def preprocess(self, images: Tensor, enc_masks: Tensor, active: list[int]) -> None:
        """Device: images [2, 3, S, S] <- normalised source and target; enc_masks[k, 0] <- object k's mask."""

    @abstractmethod
    def postprocess(self, low_res: Tensor, active: list[int]) -> None:
        """Device: each active object's native-size target mask."""

    @abstractmethod
    def download(self, active: list[int]) -> None:
        """The active objects' masks to the host (asynchronous; read after the synchronisation)."""

    @abstractmethod
    def mask(self, k: int) -> np.ndarray:
        """Host, after the synchronisation: object k's [H, W] bool target mask."""

    @abstractmethod
    def vanished(self, active: list[int]) -> list[int]:
        """Host, after the synchronisation: objects whose source mask vanished at the model's input."""


class HostIO(FrameIO):
    """PIL bicubic and torch's antialiased bilinear on the host (as the reference), then uploaded."""

    def __init__(self, preset, profile, source_hw, target_hw, device: torch.device) -> None:
        super().__init__(preset, profile, source_hw, target_hw)
        s, pin = preset.image_size, device.type == "cuda"
        f = dict(device=device, dtype=torch.float32)
        self.frame_host = torch.empty(2, s, s, 3, dtype=torch.uint8, pin_memory=pin)
        self.frames = torch.empty(2, s, s, 3, dtype=torch.uint8, device=device)
        self.mean = torch.tensor(IMAGENET_MEAN, **f).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, **f).view(3, 1, 1)
        self.mask_in = torch.empty(1, 1, *self.source_hw)
        self.mask_host = torch.zeros(profile, 1, s, s, pin_memory=pin)
        self.masks = torch.zeros(profile, 1, s, s, **f)
        self.native = torch.empty(1, 1, *self.target_hw, **f)
        self.native_mask = torch.empty(profile, *self.target_hw, device=device, dtype=torch.bool)
        self.native_host = torch.empty(profile, *self.target_hw, dtype=torch.bool, pin_memory=pin)
        self._vanished: list[int] = []

    def stage(self, source, target, masks) -> None:
        s = self.preset.image_size
        for i, frame in enumerate((source, target)):
            self.frame_host[i].numpy()[:] = resize_rgb8(frame, s)
        self._vanished = []
        for k, mask in masks.items():
            self.mask_in.numpy()[0, 0] = mask
            out = self.mask_host[k : k + 1]
            aten._upsample_bilinear2d_aa.out(self.mask_in, [s, s], False, None, None, out=out)
            out.ge_(0.5)
            if not out.numpy().any():  # host buffer: numpy allocates no tensor
                self._vanished.append(k)
            if self.on_off[0] != 1.0:
                out.mul_(20.0).sub_(10.0)

    def upload(self) -> None:
        self.frames.copy_(self.frame_host, non_blocking=True)
        self.masks.copy_(self.mask_host, non_blocking=True)

    def preprocess(self, images, enc_masks, active) -> None:
        images.copy_(self.frames.permute(0, 3, 1, 2))
        images.div_(255.0).sub_(self.mean).div_(self.std)
        for k in active:
            enc_masks[k].copy_(self.masks[k])

    def postprocess(self, low_res, active) -> None:
        for k in active:
            aten.upsample_bilinear2d.out(
                low_res[k : k + 1], list(self.target_hw), False, None, None, out=self.native
            )
            torch.gt(self.native[0, 0], 0, out=self.native_mask[k])

    def download(self, active) -> None:
        for k in active:
            self.native_host[k].copy_(self.native_mask[k], non_blocking=True)

    def mask(self, k: int) -> np.ndarray:
        return self.native_host[k].numpy().copy()

    def vanished(self, active: list[int]) -> list[int]:
        return list(self._vanished)


class DeviceIO(FrameIO):
    """uint8 frames and masks uploaded as they are (3 and 1 bytes a pixel), resized on the device by
    `lmeec.kernels` (Triton on CUDA, else their torch fallback); each target mask comes back bit-packed."""

    def __init__(self, preset, profile, source_hw, target_hw, device: torch.device, impl: Impl = "auto"):
        super().__init__(preset, profile, source_hw, target_hw)
        s, pin = preset.image_size, device.type == "cuda"
        self.source_resize = FrameResize(self.source_hw, s, device, impl)
        self.target_resize = FrameResize(self.target_hw, s, device, impl)
        self.mask_resize = MaskResize(self.source_hw, s, device, impl)
        self.to_mask = LogitsToMask(preset.low_res, self.target_hw, device, impl)
        u8 = dict(dtype=torch.uint8)
        self.source_host = torch.empty(*self.source_hw, 3, pin_memory=pin, **u8)
        self.target_host = torch.empty(*self.target_hw, 3, pin_memory=pin, **u8)
        self.masks_host = torch.zeros(profile, *self.source_hw, pin_memory=pin, **u8)
        self.source = torch.empty(*self.source_hw, 3, device=device, **u8)
        self.target = torch.empty(*self.target_hw, 3, device=device, **u8)
        self.masks = torch.zeros(profile, *self.source_hw, device=device, **u8)
        packed = self.to_mask.out_shape(pack=True)
        self.packed = torch.zeros(profile, *packed, device=device, **u8)
        self.packed_host = torch.zeros(profile, *packed, pin_memory=pin, **u8)
        self.peak = torch.zeros(profile, device=device)  # largest model-input mask value per object
        self.peak_host = torch.zeros(profile, pin_memory=pin)

    def stage(self, source, target, masks) -> None:
        self.source_host.numpy()[:] = _rgb8(source)
        self.target_host.numpy()[:] = _rgb8(target)
        host = self.masks_host.numpy()
        for k, mask in masks.items():
            host[k] = mask

    def upload(self) -> None:
        self.source.copy_(self.source_host, non_blocking=True)
        self.target.copy_(self.target_host, non_blocking=True)
        self.masks.copy_(self.masks_host, non_blocking=True)

    def preprocess(self, images, enc_masks, active) -> None:
        self.source_resize.normalized(self.source, images[0])
        self.target_resize.normalized(self.target, images[1])
        for k in active:
            self.mask_resize(self.masks[k], enc_masks[k, 0], self.on_off)
            torch.amax(enc_masks[k, 0], dim=(0, 1), out=self.peak[k])

    def postprocess(self, low_res, active) -> None:
        for k in active:
            self.to_mask(low_res[k, 0], self.packed[k], pack=True)

    def download(self, active) -> None:
        for k in active:
            self.packed_host[k].copy_(self.packed[k], non_blocking=True)
        self.peak_host.copy_(self.peak, non_blocking=True)

    def mask(self, k: int) -> np.ndarray:
        return unpack_mask(self.packed_host[k].numpy(), self.target_hw[1])

    def vanished(self, active: list[int]) -> list[int]:
        peak = self.peak_host.numpy()
        return [k for k in active if peak[k] <= self.on_off[1]]
