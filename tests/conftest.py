"""Shared fixtures: seeded random models and checkpoints written in the real formats."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

if not torch.cuda.is_available():
    # Triton kernels run in its interpreter on CPU tensors; triton reads this when it is first imported, which
    # any test importing the runtime does (kernel choice "auto" still picks the torch fallback on a CPU)
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def test_model():
    from lmeec.model.network import build_model

    return build_model("test", seed=0)


@pytest.fixture(scope="session")
def stock_sam2_test():
    """sam2's own SAM 2.1 Hiera-T model, built from its shipped hydra config at the test preset's size."""
    from sam2.build_sam import build_sam2

    model = build_sam2(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        device="cpu",
        apply_postprocessing=False,
        hydra_overrides_extra=["++model.image_size=128"],
    )
    return model.eval()


def synthetic_pair(rng: np.random.Generator, t: int, src_hw=(96, 96), tgt_hw=(54, 96)):
    """A source/target frame pair with a square that moves with t, and the square's source mask."""
    src = rng.integers(0, 60, (*src_hw, 3), dtype=np.uint8)
    tgt = rng.integers(0, 60, (*tgt_hw, 3), dtype=np.uint8)
    y, x = 20 + t % 10, 15 + (2 * t) % 30
    src[y : y + 30, x : x + 30] = (220, 40, 40)
    ty, tx = tgt_hw[0] // 3, tgt_hw[1] // 3 + t % 10
    tgt[ty : ty + 12, tx : tx + 12] = (220, 40, 40)
    mask = np.zeros(src_hw, bool)
    mask[y : y + 30, x : x + 30] = True
    return src, mask, tgt


def write_video_take(root: Path, mask_name: Callable[[int], str], frames: int = 3) -> None:
    """src.avi, tgt.avi (MJPG) and masks/<mask_name(t)>.png under root: a 3-frame take in the video layout."""
    import cv2

    rng = np.random.default_rng(1)
    writers = {
        name: cv2.VideoWriter(str(root / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 1, size)
        for name, size in (("src", (96, 96)), ("tgt", (96, 54)))
    }
    (root / "masks").mkdir()
    for t in range(frames):
        src, mask, tgt = synthetic_pair(rng, t)
        writers["src"].write(np.ascontiguousarray(src[..., ::-1]))
        writers["tgt"].write(np.ascontiguousarray(tgt[..., ::-1]))
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{mask_name(t)}.png")
    for w in writers.values():
        w.release()


@pytest.fixture(scope="session")
def test_engines(tmp_path_factory):
    """The `test` preset (seed 0) exported once per session (object profiles 1, 2, 3), as `lmeec export onnx` writes it."""
    from lmeec.export.onnx import export_onnx
    from lmeec.model.network import build_model

    out = tmp_path_factory.mktemp("engines") / "test-seed0"
    export_onnx(build_model("test", seed=0), out, checkpoint=None, seed=0, progress=False, max_objects=3)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Batch-1 steps on tiny inputs are weight-bound: one thread is as fast idle and far faster on a busy box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
