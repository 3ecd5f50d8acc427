"""Frame pre-processing equals the reference's PIL bicubic resize (bytes) and its normalised input (bits);
the source-mask resize equals torch's antialiased bilinear + threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmeec.kernels.resample import FrameResize, MaskResize, vertical_first
from lmeec.model.preprocess import frame_to_tensor, mask_to_input, resize_rgb8

CPU = torch.device("cpu")


def _frame(h: int, w: int, seed: int) -> np.ndarray:
    """Noise on a smooth gradient: every grey level and sharp edges, so rounding and clipping are exercised."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    smooth = (np.stack([yy * 255 / max(h - 1, 1), xx * 255 / max(w - 1, 1), (yy + xx) % 256], -1)).astype(int)
    return np.clip(smooth + rng.integers(-60, 61, (h, w, 3)), 0, 255).astype(np.uint8)


def _agreement(out: np.ndarray, ref: np.ndarray) -> tuple[float, int]:
    diff = np.abs(out.astype(int) - ref.astype(int))
    return float((diff == 0).mean()), int(diff.max())


# EgoExo4D sizes, their halves, odd sizes, up- and down-scaling, both pass orders of Pillow >= 13
BIG = [(1408, 1408, 480), (2160, 3840, 480), (1080, 1920, 1024), (704, 704, 480), (1408, 1408, 1024)]
SMALL = [(97, 61, 64), (150, 100, 80), (61, 97, 64), (333, 517, 480), (37, 23, 200), (480, 480, 480)]


@pytest.mark.parametrize("h,w,s", BIG + SMALL)
def test_torch_fallback_equals_pil(h, w, s):
    f = _frame(h, w, seed=h + w + s)
    r = FrameResize((h, w), s, CPU, impl="torch")
    out = r.rgb8(torch.from_numpy(f), torch.empty(s, s, 3, dtype=torch.uint8)).numpy()
    assert _agreement(out, resize_rgb8(f, s)) == (1.0, 0)
    assert torch.equal(r.normalized(torch.from_numpy(f), torch.empty(3, s, s)), frame_to_tensor(f, s))


def test_torch_fallback_equals_pil_on_random_sizes():
    rng = np.random.default_rng(7)
    for _ in range(30):
        h, w, s = (int(v) for v in rng.integers(3, 160, 3))
        f = _frame(h, w, seed=s)
        out = FrameResize((h, w), s, CPU, impl="torch").rgb8(
            torch.from_numpy(f), torch.empty(s, s, 3, dtype=torch.uint8)
        )
        assert np.array_equal(out.numpy(), resize_rgb8(f, s)), (h, w, s)


def test_pass_order_rule_matches_pillow_on_both_sides():
    # 3840 tall x 2160 wide -> 480: height loses exactly twice the width's pixels -> horizontal first
    assert not vertical_first((3840, 2160), (480, 480))
    f = _frame(384, 216, seed=1)  # the same boundary at a tenth of the size
    out = FrameResize((384, 216), 48, CPU, impl="torch").rgb8(
        torch.from_numpy(f), torch.empty(48, 48, 3, dtype=torch.uint8)
    )
    assert np.array_equal(out.numpy(), resize_rgb8(f, 48))


@pytest.mark.parametrize("h,w,s", SMALL[:3] + [(1408, 1408, 480)])
def test_triton_kernel_equals_pil(kdev, h, w, s):
    f = _frame(h, w, seed=h * w + s)
    r = FrameResize((h, w), s, kdev, impl="triton")
    frame = torch.from_numpy(f).to(kdev)
    out = r.rgb8(frame, torch.empty(s, s, 3, dtype=torch.uint8, device=kdev)).cpu().numpy()
    assert _agreement(out, resize_rgb8(f, s)) == (1.0, 0)
    norm = r.normalized(frame, torch.empty(3, s, s, device=kdev)).cpu()
    assert torch.equal(norm, frame_to_tensor(f, s))


def test_frame_of_the_wrong_size_is_refused():
    r = FrameResize((10, 12), 8, CPU, impl="torch")
    with pytest.raises(ValueError, match="frame must be uint8 10×12×3"):
        r.rgb8(torch.zeros(12, 10, 3, dtype=torch.uint8), torch.empty(8, 8, 3, dtype=torch.uint8))


def _ellipse(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h / 2) ** 2 / (h / 3) ** 2 + (xx - w / 3) ** 2 / (w / 4) ** 2) < 1


@pytest.mark.parametrize(
    "impl,h,w,s",
    [("torch", 1408, 1408, 480), ("torch", 2160, 3840, 480), ("torch", 40, 30, 96)]
    + [("triton", 97, 61, 64), ("triton", 333, 517, 128), ("triton", 40, 30, 96)],
)
def test_mask_resize_equals_antialiased_bilinear(request, impl, h, w, s):
    dev = request.getfixturevalue("kdev") if impl == "triton" else CPU
    m = _ellipse(h, w)
    m[h // 5 : h // 5 + 3, :] ^= True  # thin stripes: values near the 0.5 threshold
    out = MaskResize((h, w), s, dev, impl=impl)(torch.from_numpy(m).to(dev), torch.empty(s, s, device=dev))
    assert torch.equal(out.cpu(), mask_to_input(m, s)[0, 0])
    sam2 = MaskResize((h, w), s, dev, impl=impl)(
        torch.from_numpy(m).to(dev), torch.empty(s, s, device=dev), (10.0, -10.0)
    )
    assert torch.equal(sam2.cpu(), mask_to_input(m, s)[0, 0] * 20 - 10)
