"""Shared fixtures: seeded random models and checkpoints written in the real formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


@pytest.fixture(scope="session")
def test_engines(tmp_path_factory):
    """The `test` preset (seed 0) exported once per session (object profiles 1, 2, 3), as `lmeec export onnx` writes it."""
    from lmeec.export.onnx import export_onnx
    from lmeec.model.network import build_model

    out = tmp_path_factory.mktemp("engines") / "test-seed0"
    export_onnx(build_model("test", seed=0), out, checkpoint=None, seed=0, progress=False, max_objects=3)
    return out
