"""Output mask (bilinear upsampling of the logits, > 0, bit-packed or not) and bank compression equal their
references: torch's bilinear interpolation, and the ring's / the model's compression on planted ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmeec.kernels.compress import compress
from lmeec.kernels.upsample import LogitsToMask, unpack_mask
from lmeec.model.memory import compress as reference_compress
from lmeec.runtime.ring import CompressScratch, compress_

CPU = torch.device("cpu")


@pytest.mark.parametrize("impl", ["torch", "triton"])
@pytest.mark.parametrize("low,h,w", [(32, 100, 77), (120, 270, 480), (64, 13, 203)])
def test_logits_to_mask_equals_bilinear_threshold(request, impl, low, h, w):
    dev = request.getfixturevalue("kdev") if impl == "triton" else CPU
    logits = torch.randn(low, low, generator=torch.Generator().manual_seed(low + h))
    ref = (
        F.interpolate(logits[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0] > 0
    ).numpy()
    k = LogitsToMask(low, (h, w), dev, impl=impl)
    mask = k(logits.to(dev), torch.empty(h, w, dtype=torch.bool, device=dev)).cpu().numpy()
    packed = k(logits.to(dev), torch.empty(*k.out_shape(True), dtype=torch.uint8, device=dev), pack=True)
    assert np.array_equal(mask, ref)
    assert np.array_equal(unpack_mask(packed.cpu().numpy(), w), ref)
    assert np.array_equal(packed.cpu().numpy(), np.packbits(ref, axis=1))


def test_logits_to_mask_at_exo_size_torch():
    logits = torch.randn(120, 120, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(logits[None, None], size=(2160, 3840), mode="bilinear", align_corners=False)[0, 0] > 0
    k = LogitsToMask(120, (2160, 3840), CPU, impl="torch")
    packed = k(logits, torch.empty(*k.out_shape(True), dtype=torch.uint8), pack=True)
    assert np.array_equal(unpack_mask(packed.numpy(), 3840), ref.numpy())


def _bank(seed: int, views: int = 2, kept: int = 6, tokens: int = 48, channels: int = 64) -> torch.Tensor:
    """Random slots with planted ties: duplicated pairs (two zero distances) and integer-valued tokens whose
    distances are exactly equal whatever the summation order."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(views, kept + 1, tokens, channels, generator=g)
    s[:, 1, :6] = s[:, 0, :6]
    s[:, 4, :6] = s[:, 3, :6]  # d0 = d3 = 0: the first wins
    s[:, :, 6:20] = torch.randint(-2, 3, (views, kept + 1, 14, channels), generator=g).float()
    s[:, 2, 20:30] = s[:, 1, 20:30] + 1.0
    s[:, 3, 20:30] = s[:, 2, 20:30] + 1.0  # d1 = d2 = 8
    s[:, 4:, 20:30] = 50.0
    return s


@pytest.mark.parametrize("mode", ["drop", "mean"])
@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_compression_equals_ring_and_model(request, impl, mode):
    dev = request.getfixturevalue("kdev") if impl == "triton" else CPU
    views, kept, tokens, channels = 2, 6, 48, 64
    for n in range(kept + 1):
        slots = _bank(seed=n)
        ref = slots.clone()
        if n:
            compress_(ref, n, mode, CompressScratch.allocate(views, kept, tokens, channels, CPU))
        out = slots.clone().to(dev)
        mirror = torch.full((views, kept, tokens, channels), float("nan"), device=dev)
        compress(out, torch.tensor([n], device=dev), mode, mirror=mirror, impl=impl)
        assert torch.equal(out.cpu(), ref), (mode, n)
        assert torch.equal(mirror.cpu(), ref[:, :kept]), (mode, n)
        for v in range(views if n else 0):
            assert torch.equal(out[v, :n].cpu(), reference_compress(slots[v, : n + 1], mode))


def test_planted_ties_pick_the_first_minimum():
    slots = _bank(seed=0)
    compress(slots, torch.tensor([6]), "drop", impl="torch")
    # token 0: slots 0 == 1 and 3 == 4 -> pair 0 is merged: slot 1 now holds the old slot 2
    assert torch.equal(slots[:, 1, 0], _bank(seed=0)[:, 2, 0])


def test_unknown_compression_is_refused():
    with pytest.raises(ValueError, match="unknown compression 'avg'"):
        compress(torch.zeros(2, 7, 4, 8), torch.tensor([6]), "avg", impl="torch")
