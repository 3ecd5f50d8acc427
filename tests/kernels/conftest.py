"""Kernel tests run the Triton kernels themselves: on CUDA where a GPU is visible, else on CPU tensors in
Triton's interpreter (`TRITON_INTERPRET=1`, set here before any kernel is compiled)."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

KERNEL_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def kdev() -> torch.device:
    """Where the Triton kernels run in these tests (skipped without Triton)."""
    pytest.importorskip("triton", reason="Triton not installed (pip install lmeec[kernels])")
    return KERNEL_DEVICE
