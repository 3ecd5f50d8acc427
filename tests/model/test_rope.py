"""Our real-valued RoPE attention equals sam2's complex RoPEAttention."""

from __future__ import annotations

import torch
from sam2.modeling.sam.transformer import RoPEAttention

from lmeec.model.rope import RealRoPEAttention


def _pair(grid: int, **kw):
    torch.manual_seed(0)
    stock = RoPEAttention(
        embedding_dim=256, num_heads=1, downsample_rate=1, feat_sizes=(grid, grid), **kw
    ).eval()
    ours = RealRoPEAttention(
        embedding_dim=256, num_heads=1, downsample_rate=1, feat_sizes=(grid, grid), **kw
    ).eval()
    ours.load_state_dict(stock.state_dict())
    return stock, ours


@torch.no_grad()
def test_view_pass_matches_sam2():
    stock, ours = _pair(30)
    q, k, v = (torch.randn(2, 900, 256) for _ in range(3))
    diff = (stock(q, k.clone(), v) - ours(q, k, v)).abs().max().item()
    assert diff <= 1e-5, diff


@torch.no_grad()
def test_bank_pass_with_pointers_excluded_matches_sam2():
    stock, ours = _pair(30, kv_in_dim=64, rope_k_repeat=True)
    n_ptr = 60
    q = torch.randn(1, 900, 256)
    k, v = torch.randn(1, 12 * 900 + n_ptr, 64), torch.randn(1, 12 * 900 + n_ptr, 64)
    want = stock(q, k.clone(), v, num_k_exclude_rope=n_ptr)
    got = ours(q, k, v, num_k_exclude_rope=n_ptr)
    assert (want - got).abs().max().item() <= 1e-5


@torch.no_grad()
def test_key_bias_masks_keys_like_a_shorter_sequence():
    _, ours = _pair(8, kv_in_dim=64, rope_k_repeat=True)
    q = torch.randn(1, 64, 256)
    k, v = torch.randn(1, 3 * 64 + 8, 64), torch.randn(1, 3 * 64 + 8, 64)
    bias = torch.zeros(3 * 64 + 8)
    bias[64:128] = float("-inf")  # slot 1 empty
    keep = torch.cat([torch.arange(0, 64), torch.arange(128, 3 * 64 + 8)])
    masked = ours(q, k, v, num_k_exclude_rope=8, key_bias=bias)
    short = ours(q, k[:, keep], v[:, keep], num_k_exclude_rope=8)
    assert (masked - short).abs().max().item() <= 1e-5
