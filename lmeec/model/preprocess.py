"""Input checking and the research code's pre-processing of frames and source masks.

Frames: uint8 RGB HWC, or float RGB HWC in [0, 1] (rounded to 8 bits); any size. Resized to S×S ignoring aspect ratio with PIL's
bicubic filter (as sam2's frame loader), scaled to [0, 1], ImageNet-normalised. Masks: binary, the source
frame's size; resized with antialiased bilinear interpolation, then thresholded at 0.5.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_numpy(x: object, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise ValueError(f"{what} must be a numpy array or torch tensor, got {type(x).__name__}")


def check_frame(frame: object, what: str = "frame") -> np.ndarray:
    """Validate an RGB frame (HWC, uint8 or float in [0, 1], finite) and return it as a numpy array."""
    arr = _as_numpy(frame, what)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{what} must be H×W×3 RGB, got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what} is empty (shape {tuple(arr.shape)})")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what} must be uint8 or float, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"float {what} must lie in [0, 1], got range [{arr.min():.3g}, {arr.max():.3g}]")
    return arr


def check_mask(mask: object, shape: tuple[int, int], what: str = "source mask") -> np.ndarray | None:
    """Validate a binary H×W mask of the given size; None stays None (a missing mask skips the frame)."""
    if mask is None:
        return None
    arr = _as_numpy(mask, what)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D H×W, got shape {tuple(arr.shape)}")
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{what} is {arr.shape[0]}×{arr.shape[1]} but the source frame is {shape[0]}×{shape[1]}"
        )
    return binary_mask(arr, what)


def binary_mask(arr: np.ndarray, what: str = "mask", threshold: float | None = None) -> np.ndarray:
    """The one mask rule (Python API and CLI): bool, 0/1 or 0/255 values; anything else is refused unless a
    `threshold` is given explicitly (then foreground is value >= threshold)."""
    if arr.dtype == np.bool_:
        return arr
    if not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{what} must hold numbers or bools, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    if threshold is not None:
        return arr >= threshold
    values = np.unique(arr)
    if np.isin(values, (0, 1)).all():
        return arr == 1
    if np.isin(values, (0, 255)).all():
        return arr == 255
    shown = ", ".join(f"{v:g}" for v in values[~np.isin(values, (0, 1, 255))][:3])
    raise ValueError(
        f"{what} must be binary (0/1, 0/255 or bool), found {len(values)} distinct values (e.g. {shown}); "
        "give a threshold (--mask-threshold) to binarise it"
    )


def vanished_mask_warning(t: int, mask: np.ndarray, size: int) -> str:
    """The warning for a source mask whose object disappears when resized to the model's input."""
    return (
        f"frame {t}: the source mask ({int(mask.sum())} pixels) vanishes at the model's {size}×{size} input, "
        "so this frame's memory holds no object"
    )


def check_step_objects(
    source_frame: object, source_masks: object, target_frame: object, num_objects: int
) -> tuple[np.ndarray, list[np.ndarray | None], np.ndarray, bool]:
    """Validate a pair and its objects' source masks: one H×W mask (or None) means K = 1, otherwise a
    [K, H, W] array or a sequence of K masks (each may be None). Returns (source, masks, target, single)."""
    source = check_frame(source_frame, "source frame")
    target = check_frame(target_frame, "target frame")
    hw = source.shape[:2]
    if isinstance(source_masks, (list, tuple)):
        masks = [check_mask(m, hw, f"source mask of object {k}") for k, m in enumerate(source_masks)]
        single = False
    elif source_masks is None or _as_numpy(source_masks, "source masks").ndim == 2:
        masks, single = [check_mask(source_masks, hw)], True
    else:
        arr = _as_numpy(source_masks, "source masks")
        if arr.ndim != 3:
            raise ValueError(f"source masks must be H×W or K×H×W, got shape {tuple(arr.shape)}")
        masks = [check_mask(m, hw, f"source mask of object {k}") for k, m in enumerate(arr)]
        single = False
    if len(masks) != num_objects:
        raise ValueError(f"got source masks for {len(masks)} object(s), the take was reset for {num_objects}")
    return source, masks, target, single


class FrameClock:
    """Frame index of a take; refuses to run past a declared length."""

    def __init__(self, num_frames: int | None = None) -> None:
        if num_frames is not None and (
            not isinstance(num_frames, numbers.Integral) or isinstance(num_frames, bool) or num_frames < 1
        ):
            raise ValueError(
                f"a take needs at least one frame: num_frames must be a whole number of frames ≥ 1 (or None), got {num_frames!r}"
            )
        self.num_frames, self.index = num_frames, 0

    def advance(self) -> int:
        """The index of the frame being processed (then the next one)."""
        if self.num_frames is not None and self.index >= self.num_frames:
            raise ValueError(f"the take was declared with {self.num_frames} frames; call reset() first")
        self.index += 1
        return self.index - 1


def resize_rgb8(frame: np.ndarray, size: int) -> np.ndarray:
    """PIL bicubic resize to size×size on 8-bit RGB (uint8 HWC), ignoring the aspect ratio.

    Float frames are rounded to 8 bits first: PIL's 8-bit bicubic (clipped between its two passes) is the
    path the research code and its checkpoints saw, and a float frame made from uint8 then gives the same input.
    """
    if frame.dtype != np.uint8:
        frame = np.round(frame * 255.0).astype(np.uint8)
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BICUBIC))


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """`resize_rgb8` as float32 in [0, 1] (HWC)."""
    return resize_rgb8(frame, size).astype(np.float32) / 255.0


def normalize(images: Tensor) -> Tensor:
    """ImageNet normalisation of [B, 3, S, S] (or [3, S, S]) values in [0, 1]."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images - mean) / std


def frame_to_tensor(frame: np.ndarray, size: int) -> Tensor:
    """Checked frame -> normalised [3, S, S] float32 tensor."""
    return normalize(torch.from_numpy(resize_frame(frame, size)).permute(2, 0, 1).contiguous())


def encode_source_mask(mask01: Tensor, mode: str) -> Tensor:
    """Memory-encoder input for the source mask: the 0/1 mask itself (research) or ±10 logits (sam2)."""
    return mask01 if mode == "research" else mask01 * 20.0 - 10.0


def mask_to_input(mask: np.ndarray, size: int, t: int = 0) -> Tensor:
    """Binary H×W mask -> [1, 1, S, S] float 0/1 (antialiased bilinear resize, then >= 0.5); warns if the
    object vanishes at that size."""
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = (m >= 0.5).float()
    if mask.any() and not m.any():
        warnings.warn(vanished_mask_warning(t, mask, size), stacklevel=4)  # the caller of Correspondence.step
    return m
