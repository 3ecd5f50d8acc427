"""Options several verbs share, spelled one way everywhere: --threads, --device, --provider, --no-progress,
the step options (--device-io, --precision, --compile, --graph)."""

from __future__ import annotations

import argparse

PROVIDER_NAMES = ("cpu", "cuda", "tensorrt")


def positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1 (so `--threads 0` is refused in our words)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def providers(text: str) -> list[str]:
    """argparse type for --provider: one name or a comma-separated list, checked against the known ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROVIDER_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown provider(s) {', '.join(unknown) or text!r}; choose from {', '.join(PROVIDER_NAMES)}"
        )
    return names


def add_device_options(parser: argparse.ArgumentParser, providers_help: bool = True) -> None:
    """--device (default: what this machine has) and, for ONNX Runtime, --provider (repeatable)."""
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda or cuda:N (default auto: cuda where usable, else cpu)"
    )
    if providers_help:
        parser.add_argument(
            "--provider",
            type=providers,
            action="extend",
            metavar="NAME[,NAME]",
            help="ONNX Runtime provider(s): cpu, cuda, tensorrt (default: cuda on a CUDA device, else cpu)",
        )


def resolve_device(device: str, backend: str) -> str:
    """`auto` -> cuda when this machine can run `backend` there (torch sees a GPU; for ort, its CUDA
    provider is installed; trt always needs one), else cpu."""
    if device != "auto":
        return device
    import torch

    if backend == "trt" or not torch.cuda.is_available():
        return "cuda" if backend == "trt" else "cpu"
    if backend == "ort":
        import onnxruntime as ort

        return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"
    return "cuda"


def add_threads_option(parser: argparse.ArgumentParser, what: str = "torch / ONNX Runtime") -> None:
    parser.add_argument("--threads", type=positive_int, help=f"CPU threads for {what} (default: theirs)")


def add_step_options(parser: argparse.ArgumentParser) -> None:
    """How the step runs on its device (lmeec.runtime.step_options.StepOptions)."""
    g = parser.add_argument_group("the step on the device")
    g.add_argument(
        "--device-io",
        action="store_true",
        help="resize frames and masks on the device (lmeec.kernels; same results as host PIL)",
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default="fp32",
        help="torch backend: native FP16 (CUDA) or BF16 kernels under the FP16 policy (default fp32)",
    )
    g.add_argument("--compile", action="store_true", help="torch backend: torch.compile each stage")
    g.add_argument("--graph", action="store_true", help="torch backend on CUDA: one CUDA graph per step")
