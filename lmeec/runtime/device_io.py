"""Pre- and post-processing on the backend's device: the uint8 frames and the source mask are uploaded as
they are (3 and 1 bytes a pixel), resized there by `lmeec.kernels` (PIL-exact bicubic, antialiased bilinear),
and the native-size target mask comes back bit-packed (1/8 byte a pixel). The host only copies bytes in and
out; nothing between the upload and the download waits for the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lmeec.kernels.resample import FrameResize, MaskResize
from lmeec.kernels.triton_support import Impl
from lmeec.kernels.upsample import LogitsToMask, unpack_mask


class DeviceIO:
    """Upload, resize and download buffers for one take's frame sizes (rebuilt when the sizes change)."""

    def __init__(
        self,
        source_hw: tuple[int, int],
        target_hw: tuple[int, int],
        size: int,
        low_res: int,
        device: torch.device,
        impl: Impl = "auto",
    ) -> None:
        self.source_hw, self.target_hw = tuple(source_hw), tuple(target_hw)
        pin = device.type == "cuda"
        self.source_resize = FrameResize(source_hw, size, device, impl)
        self.target_resize = FrameResize(target_hw, size, device, impl)
        self.mask_resize = MaskResize(source_hw, size, device, impl)
        self.to_mask = LogitsToMask(low_res, target_hw, device, impl)
        u8 = dict(dtype=torch.uint8)
        self.host_source = torch.empty(*source_hw, 3, pin_memory=pin, **u8)
        self.host_target = torch.empty(*target_hw, 3, pin_memory=pin, **u8)
        self.host_mask = torch.empty(*source_hw, pin_memory=pin, **u8)
        self.source = torch.empty(*source_hw, 3, device=device, **u8)
        self.target = torch.empty(*target_hw, 3, device=device, **u8)
        self.mask = torch.empty(*source_hw, device=device, **u8)
        packed = self.to_mask.out_shape(pack=True)
        self.packed = torch.empty(*packed, device=device, **u8)
        self.host_packed = torch.empty(*packed, pin_memory=pin, **u8)

    def matches(self, source_hw: tuple[int, int], target_hw: tuple[int, int]) -> bool:
        return self.source_hw == tuple(source_hw) and self.target_hw == tuple(target_hw)

    def upload(self, source: np.ndarray, mask: np.ndarray, target: np.ndarray) -> None:
        """Host bytes -> pinned staging -> device (asynchronous on CUDA)."""
        self.host_source.numpy()[:] = source
        self.host_target.numpy()[:] = target
        self.host_mask.numpy()[:] = mask
        self.source.copy_(self.host_source, non_blocking=True)
        self.target.copy_(self.host_target, non_blocking=True)
        self.mask.copy_(self.host_mask, non_blocking=True)

    def preprocess(self, images: Tensor, mask_input: Tensor, on_off: tuple[float, float]) -> None:
        """images [2, 3, S, S] <- normalised source and target; mask_input [S, S] <- on/off source mask."""
        self.source_resize.normalized(self.source, images[0])
        self.target_resize.normalized(self.target, images[1])
        self.mask_resize(self.mask, mask_input, on_off)

    def postprocess(self, low_res: Tensor) -> None:
        """Native-size target mask, bit-packed on the device."""
        self.to_mask(low_res, self.packed, pack=True)

    def download(self) -> None:
        """Start the copy of the packed mask to the host (the caller synchronises once for all outputs)."""
        self.host_packed.copy_(self.packed, non_blocking=True)

    def native_mask(self) -> np.ndarray:
        """The downloaded mask, [H, W] bool (after the caller's synchronisation)."""
        return unpack_mask(self.host_packed.numpy(), self.target_hw[1])
