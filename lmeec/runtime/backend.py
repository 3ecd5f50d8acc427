"""The backend interface: run one stage graph over caller-owned, preallocated torch buffers.

`bind` is called once per graph with the tensors that will hold its inputs and outputs for the whole
take; it returns a no-argument runner, so a step only launches work (no re-binding, no allocation).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from lmeec.model.config import Preset

Runner = Callable[[], None]

# The registry: backend name -> "module:class", imported on first use, so this interface module never imports
# the concrete backends that import it (and `ort` needs no TensorRT, `trt` no ONNX Runtime).
REGISTRY: dict[str, str] = {
    "torch": "lmeec.runtime.backends.torch:TorchBackend",
    "ort": "lmeec.runtime.backends.ort:OrtBackend",
    "trt": "lmeec.runtime.backends.trt:TrtBackend",
}
BACKENDS = tuple(REGISTRY)


class Backend(ABC):
    """Executes stage graphs for one preset on one device."""

    name: str
    preset: Preset
    device: torch.device
    max_objects: int = 1  # object batch profiles it holds: lmeec.model.stages.object_profiles(max_objects)
    weights: dict  # weight provenance (random + seed, or file + sha256), recorded in every output

    @abstractmethod
    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        """Prepare `graph` to read `feeds` and write `fetches` (contiguous tensors on self.device)."""

    def synchronize(self) -> None:
        """Wait for queued work (a no-op on the CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        """Facts for reports: backend, device, providers or engine versions."""
        return {"backend": self.name, "device": str(self.device)}


def check_bindings(
    graph: str, specs: list, tensors: dict[str, Tensor], role: str, device: torch.device
) -> None:
    """Refuse buffers that do not match a graph's declared names, shapes and dtypes."""
    names = [s.name for s in specs]
    if sorted(names) != sorted(tensors):
        raise ValueError(f"{graph}: {role} must be {names}, got {sorted(tensors)}")
    for spec in specs:
        t = tensors[spec.name]
        if tuple(t.shape) != tuple(spec.shape) or str(t.dtype).removeprefix("torch.") != spec.dtype:
            raise ValueError(
                f"{graph}.{spec.name}: buffer is {list(t.shape)} {t.dtype}, graph needs {list(spec.shape)} {spec.dtype}"
            )
        if not t.is_contiguous() or t.device != device:
            raise ValueError(f"{graph}.{spec.name}: buffer must be contiguous on {device}")


def backend_class(kind: str) -> type[Backend]:
    """The registered backend class for a name (imported now)."""
    if kind not in REGISTRY:
        raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def open_backend(
    kind: str,
    *,
    engines: Path | str | None = None,
    preset: str | None = None,
    checkpoint: Path | str | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    providers: list[str] | None = None,
    ort_spinning: bool = False,
) -> Backend:
    """Open a backend by name: `torch` (reference stages), `ort` (ONNX Runtime), `trt` (TensorRT plans)."""
    cls = backend_class(kind)
    device = torch.device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    if kind == "torch":
        return cls.create(engines=engines, preset=preset, checkpoint=checkpoint, seed=seed, device=device)
    if engines is None:
        raise ValueError(f"backend {kind!r} needs --engines DIR (an exported engine folder)")
    if kind == "ort":
        return cls(
            engines, preset=preset, device=device, threads=threads, providers=providers, spinning=ort_spinning
        )
    return cls(engines, preset=preset, device=device)
