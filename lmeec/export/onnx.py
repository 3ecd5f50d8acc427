"""Export every stage to ONNX (opset 18, checked, simplified where the result is provably equal)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from lmeec.export.manifest import GraphEntry, Manifest, library_versions, sha256
from lmeec.files import atomic_dir
from lmeec.model.checkpoint import Checkpoint, weights_provenance
from lmeec.model.network import LMEEC, SAM21
from lmeec.model.stages import Stage, build_stages
from lmeec.model.tracker_stages import build_tracker_stages

OPSET = 18
SLIM_TOLERANCE = 1e-5  # a simplified graph is kept only if it matches the plain export this closely

log = logging.getLogger(__name__)


def _ort_outputs(path: Path, stage: Stage, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {spec.name: x.numpy() for spec, x in zip(stage.inputs(), inputs, strict=True)})


def _simplify(path: Path, stage: Stage, inputs: tuple[torch.Tensor, ...]) -> dict:
    """Run onnxslim on `path` in place if its outputs stay within SLIM_TOLERANCE; report node counts."""
    import onnxslim

    plain = onnx.load(str(path))
    before = len(plain.graph.node)
    slim = onnxslim.slim(plain)
    candidate = path.with_suffix(".slim.onnx")
    onnx.save(slim, str(candidate))
    diff = max(
        float(np.abs(a - b).max())
        for a, b in zip(
            _ort_outputs(path, stage, inputs), _ort_outputs(candidate, stage, inputs), strict=True
        )
    )
    if diff <= SLIM_TOLERANCE:
        candidate.replace(path)
        return {"nodes": len(slim.graph.node), "nodes_before_simplify": before, "simplified": True}
    candidate.unlink()
    log.warning("%s: onnxslim changed outputs by %.2e; keeping the plain export", stage.name, diff)
    return {"nodes": before, "simplified": False, "simplify_diff": diff}


def export_stage(stage: Stage, path: Path, simplify: bool = True) -> dict:
    """Export one stage to `path` and return facts for the manifest."""
    inputs = stage.example_inputs(torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about Python ints are expected here
        torch.onnx.export(
            stage,
            inputs,
            str(path),
            input_names=[s.name for s in stage.inputs()],
            output_names=[s.name for s in stage.outputs()],
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path), full_check=True)
    return _simplify(path, stage, inputs) if simplify else {"nodes": len(onnx.load(str(path)).graph.node)}


def export_onnx(
    model: LMEEC,
    out: Path | str,
    checkpoint: Checkpoint | None,
    seed: int | None = None,
    simplify: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    max_objects: int = 8,
) -> Manifest:
    """Write one ONNX file per stage and object profile, and manifest.json, into `out` (all or nothing).

    Export always runs on the CPU in float32 so that the graphs do not depend on the exporting device.
    `max_objects` sets the object batch profiles (1, 2, 4, … up to it) of the per-object stages.
    """
    model = model.to("cpu").float().eval()
    return _write_folder(
        build_stages(model, max_objects),
        out,
        checkpoint,
        seed,
        simplify,
        overwrite,
        progress,
        preset=model.preset.name,
        compression=model.preset.memory.compression,
        source_mask=model.preset.source_mask,
        max_objects=max_objects,
    )


def export_tracker_onnx(
    model: SAM21,
    out: Path | str,
    checkpoint: Checkpoint | None,
    seed: int | None = None,
    simplify: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """The source tracker's per-frame stages (manifest model "tracker") into `out`, as export_onnx does."""
    model = model.to("cpu").float().eval()
    return _write_folder(
        build_tracker_stages(model),
        out,
        checkpoint,
        seed,
        simplify,
        overwrite,
        progress,
        preset=model.preset.name,
        compression=model.preset.memory.compression,
        model="tracker",
        image_size=model.preset.image_size,
    )


def _write_folder(
    stages: dict[str, Stage],
    out: Path | str,
    checkpoint: Checkpoint | None,
    seed: int | None,
    simplify: bool,
    overwrite: bool,
    progress: bool,
    **manifest_fields,
) -> Manifest:
    """One ONNX file per stage and manifest.json, atomically."""
    from tqdm import tqdm

    graphs: dict[str, GraphEntry] = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for name, stage in tqdm(stages.items(), desc="export", unit="graph", disable=not progress):
            file = f"{name}.onnx"
            extra = export_stage(stage, tmp / file, simplify)
            graphs[name] = GraphEntry(file, sha256(tmp / file), stage.inputs(), stage.outputs(), extra)
        ckpt_info = weights_provenance(checkpoint, seed)
        if checkpoint is None:
            ckpt_info["random_seed"] = seed  # the torch backend rebuilds these weights from the seed
        manifest = Manifest(
            opset=OPSET,
            graphs=graphs,
            checkpoint=ckpt_info,
            versions=library_versions(),
            **manifest_fields,
        )
        manifest.write(tmp)
    return manifest
