"""How a step runs on its device: where pre/post-processing happens, the torch backend's precision,
`torch.compile`, CUDA graphs. One dataclass shared by `lmeec run` and `lmeec bench`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from lmeec.runtime.backend import Backend


@dataclass(frozen=True)
class StepOptions:
    device_io: bool = False  # frames resized on the device by lmeec.kernels (else PIL on the host)
    precision: str = "fp32"  # torch backend: fp32, fp16 (CUDA) or bf16
    compile: bool = False  # torch backend: torch.compile each stage
    graph: bool = False  # capture the whole step in a CUDA graph

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StepOptions:
        return cls(args.device_io, args.precision, args.compile, args.graph)

    def apply(self, backend: Backend) -> dict:
        """Configure the backend; return the Pipeline keyword arguments. One-line errors where unsupported."""
        if self.graph:
            if backend.device.type != "cuda":
                raise ValueError(f"--graph needs a CUDA device (CUDA graphs), got --device {backend.device}")
            raise RuntimeError("--graph: whole-step CUDA graph capture is not implemented in this version")
        if self.precision != "fp32" or self.compile:
            if backend.name != "torch":
                raise ValueError(f"--precision/--compile apply to --backend torch, not {backend.name}")
            backend.configure(self.precision, self.compile)
        return {"device_io": self.device_io}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("step on the device")
    g.add_argument(
        "--device-io", action="store_true", help="resize frames and masks on the device (lmeec.kernels)"
    )
    g.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default="fp32", help="torch backend")
    g.add_argument("--compile", action="store_true", help="torch backend: torch.compile the stages")
    g.add_argument("--graph", action="store_true", help="CUDA graph of the whole step (CUDA only)")
