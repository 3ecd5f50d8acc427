"""Mask codecs of the benchmark: LZString-wrapped COCO RLE, and the official resize to a 480 long side."""

from __future__ import annotations

import warnings

import lzstring
import numpy as np
from pycocotools import mask as mask_utils

EVAL_LONG_SIDE = 480

_LZ = lzstring.LZString()


def lz_decompress(encoded: str, where: str) -> str:
    """LZString `decompressFromEncodedURIComponent`, raising ValueError naming `where` on bad input."""
    if not isinstance(encoded, str) or not encoded:
        raise ValueError(f"{where}: encodedMask must be a non-empty string")
    try:
        counts = _LZ.decompressFromEncodedURIComponent(encoded)
    except Exception as exc:  # the library raises assorted errors on garbage
        raise ValueError(f"{where}: encodedMask is not valid LZString ({type(exc).__name__})") from exc
    if not counts:
        raise ValueError(f"{where}: encodedMask is not valid LZString (decompresses to nothing)")
    return counts


def lz_compress(counts: str) -> str:
    """LZString `compressToEncodedURIComponent` of a COCO counts string (the raw files' `encodedMask`)."""
    return _LZ.compressToEncodedURIComponent(counts)


def run_lengths(counts: str | bytes, where: str) -> list[int]:
    """Run lengths of a COCO compressed counts string.

    pycocotools decodes such strings without checking that the runs cover the image exactly (short runs
    leave uninitialised pixels), so the readers parse the runs to validate them first.
    """
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    p, n = 0, len(text)
    while p < n:
        value, shift, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError(f"{where}: RLE counts string ends inside a number")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"{where}: RLE counts string has an invalid character {text[p]!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"{where}: RLE counts string decodes to a negative run")
        runs.append(value)
    return runs


def decode_rle(rle: dict, where: str) -> np.ndarray:
    """Decode a COCO compressed RLE {"size": [h, w], "counts": str} to a bool HxW mask, validated."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"{where}: mask must be a COCO RLE object with 'size' and 'counts'")
    size = rle["size"]
    if not (
        isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
    ):
        raise ValueError(f"{where}: RLE size must be [height, width] of positive integers, got {size!r}")
    counts = rle["counts"]
    if not isinstance(counts, str | bytes):
        raise ValueError(f"{where}: RLE counts must be a compressed string, got {type(counts).__name__}")
    h, w = size
    total = sum(run_lengths(counts, where))
    if total != h * w:
        raise ValueError(f"{where}: RLE runs cover {total} pixels but size {h}x{w} has {h * w}")
    data = counts.encode("ascii") if isinstance(counts, str) else counts
    with warnings.catch_warnings():  # pycocotools' Cython trips numpy 2's `copy=False` deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode({"size": [h, w], "counts": data}).astype(bool)


def encode_rle(mask: np.ndarray) -> dict:
    """Encode a 2-D mask as a JSON-ready COCO compressed RLE {"size": [h, w], "counts": str}."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_encoded_mask(encoded: str, height: int, width: int, where: str) -> np.ndarray:
    """Decode a raw relations `encodedMask` (LZString of COCO counts) at its native size."""
    return decode_rle({"size": [height, width], "counts": lz_decompress(encoded, where)}, where)


def encode_mask_lz(mask: np.ndarray) -> str:
    """Encode a mask as a raw relations `encodedMask`."""
    return lz_compress(encode_rle(mask)["counts"])


def eval_shape(height: int, width: int) -> tuple[int, int]:
    """Evaluation shape of a native frame: the official `reshape_img_nopad` arithmetic (long side 480)."""
    ratio = 1.0 / max(height, width) * EVAL_LONG_SIDE
    return int(height * ratio), int(width * ratio)


def _nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index per destination index as OpenCV's INTER_NEAREST computes it (floor(i * src/dst))."""
    inv = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * inv).astype(np.int64), src - 1)


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to `shape` (h, w), index-identical to cv2.resize(..., INTER_NEAREST)."""
    h, w = shape
    return mask[_nearest_index(mask.shape[0], h)[:, None], _nearest_index(mask.shape[1], w)[None, :]]


def to_eval_resolution(mask: np.ndarray) -> np.ndarray:
    """Resize a native-size mask to the evaluation shape, as the official evaluator does for ground truth."""
    return resize_nearest(mask, eval_shape(*mask.shape))
