"""Reading, checking and writing SAM 2.1 and LM-EEC checkpoints.

Formats read: SAM 2.1 `{"model": state_dict}` (MV-MoE then keeps its default init, with a warning);
LM-EEC training checkpoints `{"model": state_dict, "optimizer": …}`; raw state dicts; any of these with a
`module.` prefix. Unlike the research loader (strict=False), every missing or unexpected key is reported
and a checkpoint that does not fit the preset is refused.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from lmeec.files import atomic_path, sha256
from lmeec.model.config import PRESETS, Preset, get_preset

MOE_PREFIX = "MV_MoE."
PROVENANCE_KEY = "lmeec_provenance"  # beside "model" in the checkpoints lmeec writes
Format = Literal["sam2.1", "lmeec-training", "raw"]
SHOWN = 5  # mismatching keys named in an error message


@dataclass
class Checkpoint:
    """A state dict read from disk and what kind of file held it."""

    path: Path
    state_dict: dict[str, Tensor]
    format: Format
    has_moe: bool
    provenance: dict = field(
        default_factory=dict
    )  # what lmeec recorded when it wrote the file, e.g. random + seed


@dataclass
class FitReport:
    """How a state dict compares with a preset's parameter names and shapes."""

    preset: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list
    )  # (key, file, model)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing key(s): {', '.join(self.missing[:SHOWN])}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected key(s): {', '.join(self.unexpected[:SHOWN])}")
        if self.wrong_shape:
            shown = ", ".join(
                f"{k} {list(a)} in file vs {list(b)} in model" for k, a, b in self.wrong_shape[:SHOWN]
            )
            parts.append(f"{len(self.wrong_shape)} shape mismatch(es): {shown}")
        return "; ".join(parts) or "fits"


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint file and normalise it to a flat state dict without `module.` prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, found {type(obj).__name__}")
    if "model" in obj and isinstance(obj["model"], dict):
        state, wrapped = obj["model"], True
    else:
        state, wrapped = obj, False
    if not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{path}: no state dict of tensors found (top-level keys: {', '.join(list(obj)[:8])})"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    has_moe = any(k.startswith(MOE_PREFIX) for k in state)
    fmt: Format = ("lmeec-training" if has_moe else "sam2.1") if wrapped else "raw"
    provenance = obj.get(PROVENANCE_KEY) if wrapped else None
    return Checkpoint(path, state, fmt, has_moe, provenance if isinstance(provenance, dict) else {})


def _first_line(exc: Exception) -> str:
    """torch's load errors run to several lines of weights_only advice, or end in a bare code: keep the cause."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        detail = next(
            (ln.strip() for ln in text.split("WeightsUnpickler error:", 1)[1].splitlines() if ln.strip()), ""
        )
        return f"not a file of tensors, or it holds other objects: {detail.rstrip('.')}"
    if "PytorchStreamReader" in text or "zip archive" in text or "central directory" in text:
        return "truncated or corrupt: its zip archive is incomplete"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    first = first.split(". ")[0]
    return first if len(first) < 160 else first[:160] + "…"


def weights_provenance(checkpoint: Checkpoint | None, seed: int | None = None) -> dict:
    """Where a model's weights came from: random + seed, a file + sha256 (random if lmeec wrote it so), or
    a SAM 2.1 file whose MV-MoE keeps its default init. Recorded in manifests and every output."""
    if checkpoint is None:
        return {"weights": "random", "seed": seed}
    info = {"file": str(checkpoint.path), "sha256": sha256(checkpoint.path), "format": checkpoint.format}
    if checkpoint.provenance.get("weights") == "random":
        return {"weights": "random", "seed": checkpoint.provenance.get("seed"), **info}
    if not checkpoint.has_moe:
        return {"weights": "sam2.1+default-mv-moe", **info}
    return {"weights": "file", **info}


def is_random(provenance: dict) -> bool:
    """True where masks come from random weights (also for manifests written before provenance was recorded)."""
    return provenance.get("weights") == "random" or "random_seed" in provenance


def describe_weights(provenance: dict) -> str:
    """One phrase for messages: RANDOM weights (seed n), or the checkpoint file."""
    if is_random(provenance):
        seed = provenance.get("seed", provenance.get("random_seed"))
        where = f", checkpoint {provenance['file']}" if "file" in provenance else ""
        return f"RANDOM weights (seed {seed}{where})"
    what = (
        "SAM 2.1 checkpoint (default MV-MoE)"
        if provenance.get("weights") == "sam2.1+default-mv-moe"
        else "checkpoint"
    )
    return f"{what} {provenance.get('file')} (sha256 {str(provenance.get('sha256'))[:12]}…)"


def random_weights_warning(provenance: dict) -> str:
    """The one-line warning printed wherever masks come from random weights."""
    return f"{describe_weights(provenance)}: the masks are NOT meaningful (pass a trained checkpoint)"


@functools.cache
def _shapes(preset: Preset) -> dict[str, tuple[int, ...]]:
    from lmeec.model.network import LMEEC

    with torch.no_grad():  # sam2's Hiera calls .item() while building, so the meta device cannot be used
        return {k: tuple(v.shape) for k, v in LMEEC(preset).state_dict().items()}


def preset_shapes(preset: str | Preset) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of a preset's model (built once per preset and cached)."""
    return _shapes(get_preset(preset))


def check_fit(state: dict[str, Tensor], preset: str | Preset, allow_missing_moe: bool) -> FitReport:
    """Compare a state dict with a preset; MV-MoE keys may be absent for SAM 2.1 checkpoints."""
    preset = get_preset(preset)
    shapes = preset_shapes(preset)
    report = FitReport(preset.name)
    report.missing = [
        k for k in shapes if k not in state and not (allow_missing_moe and k.startswith(MOE_PREFIX))
    ]
    report.unexpected = [k for k in state if k not in shapes]
    report.wrong_shape = [
        (k, tuple(v.shape), shapes[k])
        for k, v in state.items()
        if k in shapes and tuple(v.shape) != shapes[k]
    ]
    return report


def fitting_presets(ckpt: Checkpoint) -> list[str]:
    """Names of the presets this checkpoint loads into."""
    return [
        name for name in PRESETS if check_fit(ckpt.state_dict, name, allow_missing_moe=not ckpt.has_moe).fits
    ]


def load_into(model: torch.nn.Module, path: str | Path) -> Checkpoint:
    """Load a checkpoint into an LM-EEC model, refusing any mismatch with a message naming the keys."""
    ckpt = read_checkpoint(path)
    report = check_fit(ckpt.state_dict, model.preset, allow_missing_moe=not ckpt.has_moe)
    if not report.fits:
        raise ValueError(f"{ckpt.path} does not fit preset {model.preset.name!r}: {report.describe()}")
    if not ckpt.has_moe:
        warnings.warn(
            f"{ckpt.path} is a SAM 2.1 checkpoint without MV-MoE weights; MV-MoE keeps its default init",
            stacklevel=2,
        )
    model.load_state_dict(ckpt.state_dict, strict=False)  # MV-MoE may be absent; everything else was checked
    return ckpt


def save_checkpoint(
    model: torch.nn.Module, path: str | Path, fmt: Format = "lmeec-training", provenance: dict | None = None
) -> Path:
    """Write a model's weights atomically in one of the formats `read_checkpoint` accepts; `provenance`
    (e.g. {"weights": "random", "seed": 0}) is stored beside the weights (not in "raw", a bare state dict)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if fmt == "sam2.1":
        obj: dict = {"model": {k: v for k, v in state.items() if not k.startswith(MOE_PREFIX)}}
    elif fmt == "lmeec-training":
        obj = {"model": state, "optimizer": {}, "epoch": 0}
    elif fmt == "raw":
        obj = state
    else:
        raise ValueError(f"unknown checkpoint format {fmt!r}")
    if provenance and fmt != "raw":
        obj[PROVENANCE_KEY] = provenance
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
