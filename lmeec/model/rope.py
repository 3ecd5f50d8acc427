"""Rotary attention with real-valued cos/sin tables: sam2's `RoPEAttention` without complex tensors.

Complex ops do not export to ONNX or TensorRT; this module computes the same rotation on (even, odd)
channel pairs and keeps its tables as buffers for the configured token grid, so graphs stay static.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sam2.modeling.position_encoding import compute_axial_cis
from sam2.modeling.sam.transformer import RoPEAttention
from torch import Tensor


def rope_tables(head_dim: int, grid: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos/sin tables [grid*grid, head_dim/2] equal to sam2's axial complex table for a grid×grid map."""
    cis = compute_axial_cis(dim=head_dim, end_x=grid, end_y=grid, theta=theta)
    return cis.real.contiguous(), cis.imag.contiguous()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate adjacent channel pairs of x [..., N, D] by the angles of cos/sin [N, D/2]."""
    pairs = x.unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class RealRoPEAttention(RoPEAttention):
    """Drop-in for sam2's RoPEAttention (same parameters and state-dict keys), export-clean.

    Keys are rotated in blocks of the query length (sam2's `rope_k_repeat`); the last
    `num_k_exclude_rope` keys (object pointers) are not rotated. An optional additive `key_bias`
    [N_k] (or [B, N_k], one row per batch element) masks keys out (empty bank slots) without changing the
    result for the remaining keys.
    """

    def __init__(self, *args, feat_sizes: tuple[int, int] = (30, 30), **kwargs) -> None:
        super().__init__(*args, feat_sizes=feat_sizes, **kwargs)
        del self.freqs_cis  # complex table replaced by the real buffers below
        if feat_sizes[0] != feat_sizes[1]:
            raise ValueError(f"RoPE grid must be square, got {feat_sizes}")
        cos, sin = rope_tables(
            self.internal_dim // self.num_heads, feat_sizes[0], self.compute_cis.keywords["theta"]
        )
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.key_bias: Tensor | None = None  # set for one call by lmeec.model.stages.key_bias

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, num_k_exclude_rope: int = 0, key_bias: Tensor | None = None
    ) -> Tensor:
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)

        n_q = q.shape[-2]
        if n_q != self.rope_cos.shape[0]:
            raise ValueError(f"RoPE table is for {self.rope_cos.shape[0]} query tokens, got {n_q}")
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope % n_q:
            raise ValueError(f"{n_rope} rotated keys are not a whole number of {n_q}-token frames")
        if n_rope != n_q and not self.rope_k_repeat:
            raise ValueError("keys longer than queries need rope_k_repeat=True")
        q = rotate(q, self.rope_cos, self.rope_sin)
        reps = n_rope // n_q
        k_rope = rotate(k[..., :n_rope, :], self.rope_cos.repeat(reps, 1), self.rope_sin.repeat(reps, 1))
        k = torch.cat((k_rope, k[..., n_rope:, :]), dim=-2) if num_k_exclude_rope else k_rope

        key_bias = self.key_bias if key_bias is None else key_bias
        mask = None if key_bias is None else key_bias.to(q.dtype).reshape(-1, 1, 1, key_bias.shape[-1])
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(self._recombine_heads(out))
