"""What a benchmark feeds the pipeline: cycled frame sets and the cached export of random weights."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmeec.model.config import get_preset

# --- frames ---------------------------------------------------------------------------------------------

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # source RGB, source mask, target RGB


@dataclass
class FrameSource:
    """A small set of frames held in memory and cycled, so that reading frames costs nothing in the loop."""

    frames: list[Frame]
    description: dict

    def __getitem__(self, index: int) -> Frame:
        return self.frames[index % len(self.frames)]


def default_cache() -> Path:
    return Path(os.environ.get("LMEEC_CACHE_DIR") or Path.home() / ".cache" / "lmeec")


def synth_frames(cache: Path, seed: int = 0, frames: int = 12) -> FrameSource:
    """Frames of one synthetic ego-exo take (rendered once into the cache): those with a source mask."""
    from lmeec.eval.synth import SynthConfig, load_synth, synthesize

    config = SynthConfig(takes=1, frames=frames, seed=seed)
    root = cache / "synth" / f"take1-f{frames}-s{config.scale}-seed{seed}"
    if not (root / "relations_synth.json").is_file():
        synthesize(root, config)
    units = list(load_synth(root).units("ego-exo"))
    if not units:
        raise RuntimeError(f"{root}: the synthetic take has no ego-exo unit")
    unit = max(units, key=lambda u: len(u.query.masks))
    kept = [
        (f.source_rgb, f.source_mask, f.target_rgb)
        for f in unit.frames(all_frames=True)
        if f.source_mask is not None and f.source_mask.any()
    ]
    if not kept:
        raise RuntimeError(f"{root}: no frame of {unit.obj} has a source mask")
    src, _, tgt = kept[0]
    return FrameSource(
        kept,
        {
            "source": "synth",
            "path": str(root),
            "object": unit.obj,
            "distinct_frames": len(kept),
            "source_hw": list(src.shape[:2]),
            "target_hw": list(tgt.shape[:2]),
        },
    )


def random_frames(
    seed: int = 0, count: int = 8, source_hw: tuple[int, int] = (352, 352), target_hw=(540, 960)
) -> FrameSource:
    """Noise frames at the synthetic take's sizes, each with an elliptic source mask (~8 % of the frame)."""
    rng = np.random.default_rng(seed)
    frames = []
    yy, xx = np.mgrid[: source_hw[0], : source_hw[1]]
    for _ in range(count):
        src = rng.integers(0, 256, (*source_hw, 3), dtype=np.uint8)
        tgt = rng.integers(0, 256, (*target_hw, 3), dtype=np.uint8)
        cy, cx = rng.uniform(0.3, 0.7, 2) * np.array(source_hw)
        ry, rx = rng.uniform(0.12, 0.2, 2) * np.array(source_hw)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        frames.append((src, mask, tgt))
    return FrameSource(
        frames,
        {
            "source": "random",
            "seed": seed,
            "distinct_frames": count,
            "source_hw": list(source_hw),
            "target_hw": list(target_hw),
        },
    )


# --- backends -------------------------------------------------------------------------------------------


def engines_cache_dir(cache: Path, preset: str, seed: int) -> Path:
    return cache / "engines" / f"{get_preset(preset).name}-seed{seed}"


def ensure_engines(
    preset: str,
    seed: int,
    cache: Path,
    log: Callable[[str], None],
    progress: bool = True,
    simplify: bool = True,
    objects: int = 1,
) -> tuple[Path, Path]:
    """The cached ONNX export of `preset` with RANDOM weights of `seed` and the
    checkpoint it was exported from (for the torch backend); both are made on first use, and again
    when the cached export holds fewer than `objects` objects (it is then exported for max(objects, 8))."""
    from lmeec.export.manifest import read_manifest
    from lmeec.model.checkpoint import load_into, save_checkpoint
    from lmeec.model.network import build_model

    folder = engines_cache_dir(cache, preset, seed)
    checkpoint = folder.with_name(folder.name + ".pt")
    if (
        (folder / "manifest.json").is_file()
        and checkpoint.is_file()
        and read_manifest(folder).max_objects >= objects
    ):
        log(f"engines: {folder} (cached export of RANDOM weights, seed {seed})")
        return folder, checkpoint
    from lmeec.export.onnx import export_onnx

    log(
        f"engines: exporting preset {preset} with RANDOM weights (seed {seed}) to {folder} "
        "(once; minutes for the large presets). Timings are representative, masks are NOT meaningful: "
        "pass --engines DIR (and --checkpoint FILE) for trained weights"
    )
    model = build_model(preset, seed=seed)
    save_checkpoint(model, checkpoint, provenance={"weights": "random", "seed": seed, "preset": preset})
    ckpt = load_into(model, checkpoint)
    export_onnx(
        model, folder, ckpt, simplify=simplify, progress=progress, overwrite=True, max_objects=max(objects, 8)
    )
    return folder, checkpoint
