"""The source tracker on a runtime backend: its per-frame stages run by `torch` or `ort` over its fixed buffers.

The prompt frame (once per take) still runs on the PyTorch model, so an `ort` tracker is built with the same
weights its folder was exported from: the manifest's seed, or the checkpoint it names (checked by sha256).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lmeec.files import sha256
from lmeec.model.source_tracker import SourceTracker
from lmeec.runtime.backend import Backend

TRACKER_BACKENDS = ("torch", "ort")


def open_source_tracker(
    kind: str = "torch",
    *,
    engines: Path | str | None = None,
    trunk: str = "t",
    checkpoint: Path | str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    threads: int | None = None,
) -> tuple[SourceTracker, Backend]:
    """A SourceTracker whose stages run on backend `kind`; `ort` reads trunk, size and weights from `engines`."""
    if kind not in TRACKER_BACKENDS:
        raise ValueError(f"unknown tracker backend {kind!r}; choose one of {', '.join(TRACKER_BACKENDS)}")
    device = torch.device(device)
    if kind == "torch":
        tracker = SourceTracker(trunk, checkpoint, image_size=image_size, device=device, seed=seed)
        from lmeec.runtime.backends.torch import TorchBackend

        backend: Backend = TorchBackend(tracker.model, stages=tracker.stages)
    else:
        if engines is None:
            raise ValueError(
                "the ort tracker backend needs an exported tracker folder (--tracker-engines DIR)"
            )
        from lmeec.runtime.backends.ort import OrtBackend

        backend = OrtBackend(engines, device=device, threads=threads, model="tracker")
        manifest = backend.manifest
        weights = manifest.checkpoint
        if "random_seed" in weights:
            if checkpoint is not None:
                raise ValueError(f"{engines} was exported with random weights: drop --tracker-checkpoint")
            seed = weights["random_seed"]
        elif checkpoint is None or sha256(Path(checkpoint)) != weights.get("sha256"):
            raise ValueError(
                f"{engines} was exported from {weights.get('file')}: pass that file as --tracker-checkpoint "
                "(the prompt frame runs on its PyTorch weights)"
            )
        trunk = manifest.preset.removeprefix("tracker-")
        tracker = SourceTracker(trunk, checkpoint, image_size=manifest.image_size, device=device, seed=seed)
    tracker.bind(backend.bind)
    return tracker, backend
