"""MV-MoE (Memory-View Mixture of Experts): fuses the memory expert and the view expert features."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _channel_gate(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.Sigmoid())


def _spatial_gate(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2 * dim, dim, kernel_size=3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(dim, 1, kernel_size=1, bias=False),
        nn.Sigmoid(),
    )


class MVMoE(nn.Module):
    """Channel then spatial re-weighting of both experts, summed (state-dict names as `MV_MoE.*`).

    With dim = 256 this holds 2,754,048 parameters.
    """

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.mlp1 = _channel_gate(dim)
        self.mlp2 = _channel_gate(dim)
        self.conv1 = _spatial_gate(dim)
        self.conv2 = _spatial_gate(dim)

    def forward(self, f_mem: Tensor, f_view: Tensor) -> Tensor:
        """f_mem, f_view [B, C, H, W] -> F_tar [B, C, H, W]."""
        g = torch.cat((f_mem.mean(dim=(2, 3)), f_view.mean(dim=(2, 3))), dim=1)
        f_mem = f_mem * (1 + self.mlp1(g)[:, :, None, None])
        f_view = f_view * (1 + self.mlp2(g)[:, :, None, None])
        x = torch.cat((f_mem, f_view), dim=1)
        f_mem = f_mem * (1 + self.conv1(x))
        f_view = f_view * (1 + self.conv2(x))
        return f_mem + f_view
