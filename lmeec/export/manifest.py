"""`manifest.json`: what an engine folder holds (preset, graphs with their I/O, hashes, versions).

The runtime refuses a folder whose manifest does not match the files, the preset or the stage shapes.
"""

from __future__ import annotations

import platform
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from lmeec.files import atomic_write_json, read_json, sha256
from lmeec.model.config import Preset, get_preset
from lmeec.model.source_tracker import tracker_preset
from lmeec.model.stages import STAGES, TensorSpec, graph_name, object_profiles
from lmeec.model.tracker_stages import TRACKER_STAGES

MANIFEST = "manifest.json"
FORMAT = "lmeec-engines"
FORMAT_VERSION = 1
LIBRARIES = ("lmeec", "torch", "sam2", "onnx", "onnxruntime", "onnxslim")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@dataclass
class GraphEntry:
    """One stage's file and its static I/O."""

    file: str
    sha256: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    extra: dict = field(default_factory=dict)  # e.g. node counts, simplification, TensorRT build flags


@dataclass
class Manifest:
    preset: str
    compression: str
    opset: int
    graphs: dict[str, GraphEntry]
    checkpoint: (
        dict  # weight provenance (lmeec.model.checkpoint.weights_provenance); {"random_seed": n} if random
    )
    versions: dict[str, str]
    tensorrt: dict = field(default_factory=dict)  # filled by `lmeec build trt`
    source_mask: str = "research"
    max_objects: int = 1  # object batch profiles exported: lmeec.model.stages.object_profiles(max_objects)
    model: str = "lmeec"  # or "tracker": the source tracker's stages (preset "tracker-<trunk>")
    image_size: int | None = None  # the tracker's image size (LM-EEC presets fix their own)

    def to_json(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    def write(self, folder: Path | str) -> Path:
        return atomic_write_json(Path(folder) / MANIFEST, self.to_json(), indent=2)

    @property
    def preset_config(self) -> Preset:
        if self.model == "tracker":
            return tracker_preset(self.preset.removeprefix("tracker-"), self.image_size)
        preset = get_preset(self.preset).with_compression(self.compression)  # type: ignore[arg-type]
        return preset.with_source_mask(self.source_mask)  # type: ignore[arg-type]


def _specs(items: list, where: str) -> list[TensorSpec]:
    try:
        return [TensorSpec(d["name"], tuple(d["shape"]), d["dtype"]) for d in items]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{where}: malformed tensor list ({exc})") from exc


def read_manifest(folder: Path | str) -> Manifest:
    """Read and structurally check `folder/manifest.json`."""
    path = Path(folder) / MANIFEST
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an lmeec engine manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: manifest format {data.get('format_version')}, this lmeec reads {FORMAT_VERSION}"
        )
    try:
        graphs = {
            name: GraphEntry(
                g["file"],
                g["sha256"],
                _specs(g["inputs"], f"{path} {name}"),
                _specs(g["outputs"], f"{path} {name}"),
                g.get("extra", {}),
            )
            for name, g in data["graphs"].items()
        }
        return Manifest(
            data["preset"],
            data["compression"],
            data["opset"],
            graphs,
            data["checkpoint"],
            data["versions"],
            data.get("tensorrt", {}),
            data.get("source_mask", "research"),
            int(data.get("max_objects", 1)),
            data.get("model", "lmeec"),
            data.get("image_size"),
        )
    except KeyError as exc:
        raise ValueError(f"{path}: missing key {exc}") from exc


def check_manifest(
    folder: Path | str,
    manifest: Manifest,
    preset: str | None = None,
    verify_hashes: bool = True,
    model: str = "lmeec",
) -> None:
    """Refuse a folder whose model, files, preset or graph shapes disagree with this lmeec's stages."""
    folder = Path(folder)
    if manifest.model != model:
        what = {"lmeec": "LM-EEC's", "tracker": "the source tracker's"}
        raise ValueError(
            f"{folder}: holds {what.get(manifest.model, manifest.model)} graphs, "
            f"not {what.get(model, model)} (export it with the matching `lmeec export` format)"
        )
    here = library_versions(("lmeec",))["lmeec"]
    if manifest.versions.get("lmeec") != here:
        warnings.warn(
            f"{folder}: exported by lmeec {manifest.versions.get('lmeec')}, running {here}; "
            "the graph contracts below are checked, re-export if results differ",
            stacklevel=2,
        )
    if preset is not None and get_preset(preset).name != manifest.preset:
        raise ValueError(f"{folder}: engines were exported for preset {manifest.preset!r}, not {preset!r}")
    expected = _expected_specs(manifest.preset_config, manifest.max_objects, manifest.model)
    missing = sorted(set(expected) - set(manifest.graphs))
    if missing:
        raise ValueError(f"{folder}: manifest lacks graph(s) {', '.join(missing)}")
    for name, (inputs, outputs) in expected.items():
        entry = manifest.graphs[name]
        for role, want, got in (("inputs", inputs, entry.inputs), ("outputs", outputs, entry.outputs)):
            if want != got:
                raise ValueError(
                    f"{folder}: {name} {role} are {_fmt(got)} but preset {manifest.preset!r} needs {_fmt(want)}"
                )
        file = folder / entry.file
        if not file.is_file():
            raise FileNotFoundError(f"{folder}: engine file {entry.file} for {name} is missing")
        if verify_hashes and sha256(file) != entry.sha256:
            raise ValueError(
                f"{folder}: {entry.file} does not match the manifest's hash (re-export the folder)"
            )


def _expected_specs(
    preset: Preset, max_objects: int = 1, model: str = "lmeec"
) -> dict[str, tuple[list[TensorSpec], list[TensorSpec]]]:
    """Stage I/O for a preset and its object profiles (specs depend on those only, not on weights)."""
    if model == "tracker":  # one object, its own stages
        return {cls.name: (cls.input_specs(preset), cls.output_specs(preset)) for cls in TRACKER_STAGES}
    return {
        graph_name(cls.name, k): (cls.input_specs(preset, k), cls.output_specs(preset, k))
        for k in object_profiles(max_objects)
        for cls in STAGES
        if k == 1 or cls.batched
    }


def _fmt(specs: list[TensorSpec]) -> str:
    return ", ".join(f"{s.name}{list(s.shape)}:{s.dtype}" for s in specs)
