"""The `torch` backend: the reference stage modules, eager PyTorch (the oracle for the other backends)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lmeec.export.manifest import check_manifest, read_manifest
from lmeec.model.checkpoint import load_into, weights_provenance
from lmeec.model.config import get_preset
from lmeec.model.network import LMEEC, build_model
from lmeec.model.stages import Stage, build_stages
from lmeec.runtime.backend import Backend, Runner, check_bindings

MAX_OBJECTS = 8  # object profiles the reference stages are built for (1, 2, 4, 8)


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

        @torch.inference_mode()
        def run() -> None:
            result = stage(*args)
            for out, value in zip(outs, result if isinstance(result, tuple) else (result,), strict=True):
                out.copy_(value)

        return run
