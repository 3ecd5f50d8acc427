"""How a step runs on its device: pre/post-processing on the host or the device, the torch backend's
precision and `torch.compile`, CUDA-graph capture (`lmeec run` and `lmeec bench`: --device-io,
--precision, --compile, --graph)."""

from __future__ import annotations

from dataclasses import dataclass

from lmeec.kernels.triton_support import Impl
from lmeec.runtime.backend import Backend

PRECISIONS = ("fp32", "fp16", "bf16")
CAPTURABLE = ("torch", "trt")  # backends whose stages are CUDA launches a graph can record


@dataclass(frozen=True)
class StepOptions:
    device_io: bool = False  # resizes, mask out, compression: lmeec.kernels on the device (else host PIL)
    precision: str = "fp32"  # torch backend: fp32, fp16 (CUDA) or bf16, native kernels under the FP16 policy
    compile: bool = False  # torch backend: torch.compile each stage
    graph: bool = False  # one captured CUDA graph per step variant
    kernels: Impl = "auto"  # lmeec.kernels implementation: Triton on CUDA when installed, else torch

    def check(self, backend_name: str, device: str) -> None:
        """Refuse impossible combinations with one line, before anything is loaded."""
        self.check_backend(backend_name)
        on_cuda = str(device).startswith("cuda")
        if self.graph and not on_cuda:
            raise ValueError(f"--graph needs a CUDA device (CUDA graphs), got --device {device}")
        if self.precision == "fp16" and not on_cuda:
            raise ValueError(
                f"--precision fp16 needs a CUDA device, got --device {device} (bf16 runs on a CPU)"
            )

    def check_backend(self, backend_name: str) -> None:
        """Refuse the options a backend cannot honour, with one line."""
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown --precision {self.precision!r}; choose {', '.join(PRECISIONS)}")
        torch_only = [
            flag
            for flag, on in (
                (f"--precision {self.precision}", self.precision != "fp32"),
                ("--compile", self.compile),
            )
            if on
        ]
        if torch_only and backend_name != "torch":
            raise ValueError(
                f"{' '.join(torch_only)} apply to --backend torch, not {backend_name} "
                "(their precision is the engine's: lmeec build trt --fp16)"
            )
        if self.graph and backend_name not in CAPTURABLE:
            raise ValueError(
                f"--graph captures CUDA launches: --backend {' or '.join(CAPTURABLE)}, not {backend_name} "
                "(ONNX Runtime runs its own sessions)"
            )

    def configure(self, backend: Backend) -> None:
        """Apply precision and compile to the backend (the torch backend's `configure`). `graph` on a CPU
        runs the variant keying uncaptured (tests); TensorRT plans are replayed inside the captured step."""
        if self.precision != "fp32" or self.compile or self.graph:
            self.check_backend(backend.name)
        if self.precision != "fp32" or self.compile:
            backend.configure(self.precision, self.compile)
