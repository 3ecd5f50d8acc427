"""An engine folder of FP16-policy ONNX graphs (same I/O specs, FP32 at the boundaries)."""

from __future__ import annotations

from pathlib import Path

import onnx

from lmeec.export.manifest import GraphEntry, Manifest, check_manifest, read_manifest, sha256
from lmeec.export.precision import POLICY_VERSION, precision_counts, to_fp16_onnx
from lmeec.files import atomic_dir


def _load(path: Path):
    """An ONNX graph; a corrupt or truncated file becomes a one-line error naming it."""
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ValueError(
            f"{path}: not a readable ONNX graph ({type(exc).__name__}); re-export the folder"
        ) from exc


def write_fp16_folder(onnx_dir: Path | str, out: Path | str, overwrite: bool = False) -> Manifest:
    """Convert every graph of an exported FP32 folder under the policy; the manifest records the policy."""
    onnx_dir = Path(onnx_dir)
    manifest = read_manifest(onnx_dir)
    check_manifest(onnx_dir, manifest)
    if manifest.tensorrt or any(g.extra.get("precision") == "fp16" for g in manifest.graphs.values()):
        raise ValueError(f"{onnx_dir}: not an FP32 ONNX export")
    graphs = {}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for name, entry in manifest.graphs.items():
            model = _load(onnx_dir / entry.file)
            onnx.save(to_fp16_onnx(model), str(tmp / entry.file))
            extra = {
                **entry.extra,
                "precision": "fp16",
                "policy_version": POLICY_VERSION,
                "fp32_source_sha256": entry.sha256,
                **precision_counts(model),
            }
            graphs[name] = GraphEntry(
                entry.file, sha256(tmp / entry.file), entry.inputs, entry.outputs, extra
            )
        result = Manifest(
            manifest.preset,
            manifest.compression,
            manifest.opset,
            graphs,
            manifest.checkpoint,
            manifest.versions,
            source_mask=manifest.source_mask,
            model=manifest.model,
            image_size=manifest.image_size,
            max_objects=manifest.max_objects,
        )
        result.write(tmp)
    return result
