"""The `torch` backend: the reference stage modules, eager PyTorch (the oracle for the other backends).

`configure` turns on native reduced precision (autocast FP16/BF16 kernels for convolutions and matrix
products, weights cast per call so nothing is cached across a captured step) under the FP16 policy: its
FP32 islands (LayerNorm modules, the position-encoding and mask-decoder modules, see
`lmeec.export.precision`) run with autocast off on FP32 inputs, so LayerNorm statistics, the final logits
and their upsampling stay FP32; softmax runs inside scaled-dot-product attention, which accumulates in FP32.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from lmeec.export.manifest import check_manifest, read_manifest
from lmeec.export.precision import ISLANDS
from lmeec.model.checkpoint import load_into, weights_provenance
from lmeec.model.config import get_preset
from lmeec.model.network import LMEEC, build_model
from lmeec.model.stages import Stage, build_stages
from lmeec.runtime.backend import Backend, Runner, check_bindings

MAX_OBJECTS = 8  # object profiles the reference stages are built for (1, 2, 4, 8)
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def fp32_islands(model: nn.Module) -> list[nn.Module]:
    """The modules the FP16 policy keeps in FP32: every LayerNorm (torch's and sam2's LayerNorm2d) and the
    modules named by the policy's island scopes, with their children."""
    islands = [m for m in model.modules() if isinstance(m, nn.LayerNorm) or type(m).__name__ == "LayerNorm2d"]
    for island in ISLANDS:
        for scope in island.scopes:
            islands.extend(model.get_submodule(scope).modules())
    return islands


def _widen(x: object) -> object:
    return x.float() if isinstance(x, Tensor) and x.is_floating_point() and x.dtype != torch.float32 else x


def run_in_fp32(module: nn.Module, device_type: str) -> None:
    """Make `module.forward` run with autocast off on FP32 inputs (idempotent)."""
    forward = module.forward
    if getattr(forward, "fp32_island", False):
        return

    @functools.wraps(forward)
    def island(*args, **kwargs):
        with torch.autocast(device_type, enabled=False):
            return forward(*tree_map(_widen, args), **tree_map(_widen, kwargs))

    island.fp32_island = True
    module.forward = island


class TorchBackend(Backend):
    name = "torch"

    def __init__(
        self, model: LMEEC, max_objects: int = MAX_OBJECTS, stages: dict[str, Stage] | None = None
    ) -> None:
        """stages: other graphs over the model's weights (the source tracker's); default LM-EEC's."""
        self.model = model
        self.preset = model.preset
        self.device = next(model.parameters()).device
        self.max_objects = max_objects
        self.stages = build_stages(model, max_objects) if stages is None else stages
        self.weights: dict = {"weights": "unknown (a model passed in)"}
        self.precision = "fp32"
        self.compiled: dict[str, object] = {}  # stage name -> torch.compile'd stage (`configure`)

    def configure(self, precision: str = "fp32", compile: bool = False) -> None:
        """Native reduced precision (fp16 on CUDA, bf16 anywhere) and/or `torch.compile` of each stage;
        call before `bind`."""
        if precision not in ("fp32", *HALF):
            raise ValueError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError(f"--precision fp16 needs a CUDA device, got {self.device} (bf16 runs on a CPU)")
        if precision != "fp32":
            for module in fp32_islands(self.model):
                run_in_fp32(module, self.device.type)
        self.precision = precision
        if compile and not self.compiled:
            self.compiled = {name: torch.compile(stage) for name, stage in self.stages.items()}

    @classmethod
    def create(
        cls,
        *,
        engines: Path | str | None,
        preset: str | None,
        checkpoint: Path | str | None,
        seed: int | None,
        device: torch.device,
    ) -> TorchBackend:
        """Weights from a checkpoint, or the seed an engine folder was exported with (its manifest says)."""
        if engines is not None:
            manifest = read_manifest(engines)
            check_manifest(engines, manifest, preset, verify_hashes=False)
            preset_cfg = manifest.preset_config
            if checkpoint is None and seed is None:
                seed = manifest.checkpoint.get("random_seed")
                if seed is None:
                    raise ValueError(
                        f"{engines} was exported from checkpoint {manifest.checkpoint.get('file')}: "
                        "pass it as --checkpoint for the torch backend"
                    )
        elif preset is None:
            raise ValueError("the torch backend needs --preset (or --engines to read it from)")
        else:
            preset_cfg = get_preset(preset)
            if checkpoint is None and seed is None:
                seed = 0  # random weights are seeded, so that they are reproducible and can be named
        model = build_model(preset_cfg, seed=seed, device=device)
        ckpt = load_into(model, checkpoint) if checkpoint is not None else None
        backend = cls(model)
        backend.weights = weights_provenance(ckpt, seed)
        return backend

    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        stage = self.stages[graph]
        check_bindings(graph, stage.inputs(), feeds, "inputs", self.device)
        check_bindings(graph, stage.outputs(), fetches, "outputs", self.device)
        args = [feeds[s.name] for s in stage.inputs()]
        outs = [fetches[s.name] for s in stage.outputs()]
        call = self.compiled.get(graph, stage)
        half = HALF.get(self.precision)
        device_type = self.device.type

        @torch.inference_mode()
        def run() -> None:
            # cache_enabled=False: weights are cast inside each call, so a captured step holds no cast cache
            precision = (
                torch.autocast(device_type, dtype=half, cache_enabled=False) if half else nullcontext()
            )
            with precision:
                result = call(*args)
            for out, value in zip(outs, result if isinstance(result, tuple) else (result,), strict=True):
                out.copy_(value)

        return run

    def describe(self) -> dict:
        return {**super().describe(), "precision": self.precision, "compiled": bool(self.compiled)}
