"""The `torch` backend: the reference stage modules, eager PyTorch (the oracle for the other backends)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from lmeec.export.manifest import check_manifest, read_manifest
from lmeec.model.checkpoint import load_into
from lmeec.model.config import get_preset
from lmeec.model.network import LMEEC, build_model
from lmeec.model.stages import build_stages
from lmeec.runtime.backend import Backend, Runner, check_bindings

Precision = Literal["fp32", "fp16", "bf16"]
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: LMEEC) -> None:
        self.model = model
        self.preset = model.preset
        self.device = next(model.parameters()).device
        self.stages = build_stages(model)
        self.precision: Precision = "fp32"
        self.compiled = False

    def configure(self, precision: Precision = "fp32", compile: bool = False) -> None:
        """Reduced precision as native autocast kernels (convolutions and matrix products in FP16/BF16;
        LayerNorm, softmax and the other FP32-listed ops of autocast stay FP32; outputs land in the FP32
        buffers), and/or `torch.compile` of each stage. Call before `bind`."""
        if precision not in ("fp32", *HALF):
            raise ValueError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("--precision fp16 needs a CUDA device (use bf16 on CPU)")
        self.precision = precision
        if compile and not self.compiled:
            self.stages = {name: torch.compile(stage) for name, stage in self.stages.items()}
            self.compiled = True

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
                        f"{engines} holds trained weights: pass --checkpoint for the torch backend"
                    )
        elif preset is None:
            raise ValueError("the torch backend needs --preset (or --engines to read it from)")
        else:
            preset_cfg = get_preset(preset)
        model = build_model(preset_cfg, seed=seed, device=device)
        if checkpoint is not None:
            load_into(model, checkpoint)
        return cls(model)

    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        stage = self.stages[graph]
        check_bindings(graph, stage.inputs(), feeds, "inputs", self.device)
        check_bindings(graph, stage.outputs(), fetches, "outputs", self.device)
        args = [feeds[s.name] for s in stage.inputs()]
        outs = [fetches[s.name] for s in stage.outputs()]

        half = HALF.get(self.precision)
        device_type = self.device.type

        @torch.inference_mode()
        def run() -> None:
            with torch.autocast(device_type, dtype=half or torch.float32, enabled=half is not None):
                result = stage(*args)
            for out, value in zip(outs, result if isinstance(result, tuple) else (result,), strict=True):
                out.copy_(value)

        return run
