"""`lmeec run --ray`: a split's units on Ray actors, journaled as they finish, then written as a serial run.

Each actor runs whole passes (the objects that walk the same frames, as in the serial run). The submission
and PNGs are written by the same code as the serial run, in benchmark order, from results kept in a journal
beside the output (`.{out}.units/`, one entry per pass), so a stopped run continues where it was.
"""

from __future__ import annotations

import argparse
import hashlib
from functools import partial
from pathlib import Path

from lmeec.cli.split import (
    PassPredictions,
    object_passes,
    objects_per_pass,
    open_pipeline,
    pass_key,
    pipeline_options,
    predict_pass,
    split_units,
    write_split,
)


def journal_folder(out: Path | str) -> Path:
    """Where a run's finished units wait for the final write: beside the output folder."""
    out = Path(out)
    return out.parent / f".{out.name}.units"


def _settings(args: argparse.Namespace, options: dict) -> dict:
    """What the journal's results depend on: a stopped run continues only with the same settings."""
    manifest = Path(options["engines"] or "", "manifest.json")
    return {
        **{k: str(v) if isinstance(v, Path) else v for k, v in options.items() if k != "threads"},
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
        "annotations": str(Path(args.annotations).resolve()),
        "relations": args.relations and str(Path(args.relations).resolve()),
        "frames_root": args.frames_root and str(Path(args.frames_root).resolve()),
        "direction": args.direction,
        "take": sorted(args.take) if args.take else None,
        "confidence": args.confidence,
    }


def _run_facts(options: dict, run, units: int) -> dict:
    """run.json of a Ray run: the weights' provenance (from the engines' manifest) and how the units ran."""
    from lmeec.export.manifest import read_manifest

    weights = read_manifest(options["engines"]).checkpoint if options["engines"] else None
    backend = {"backend": options["kind"], "device": options["device"], "providers": options["providers"]}
    return {
        "weights": weights,
        "backend": backend,
        "ray": {"workers": run.workers, "units": units, "passes": run.ran},
    }


def run_split_on_ray(args: argparse.Namespace, inputs: list) -> int:
    """The serial run's outputs, from units run on Ray actors (`inputs`: the paths --out must not touch)."""
    from tqdm import tqdm

    from lmeec.files import atomic_dir, atomic_write_json
    from lmeec.scale.journal import UnitJournal
    from lmeec.scale.scheduler import RayConfig, run_units

    config = RayConfig(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker)
    config.validate()
    options = pipeline_options(args)
    if options["device"].startswith("cuda") and args.gpus_per_worker <= 0:
        raise ValueError("--device cuda with --ray needs --gpus-per-worker > 0 (Ray hides GPUs otherwise)")
    for name in ("engines", "checkpoint"):  # actors may start in another folder
        if options[name] is not None:
            options[name] = str(Path(options[name]).resolve())
    options["threads"] = args.threads or max(1, int(config.cpus_per_worker))
    split = split_units(args)
    passes = object_passes(split.units, objects_per_pass(options))
    journal = UnitJournal(journal_folder(args.out), _settings(args, options))
    # longest passes first, so the last ones to finish are short
    order = sorted(passes, key=lambda p: -len(p[0].frame_numbers(all_frames=True)))
    try:
        with tqdm(total=len(passes), desc="passes on Ray", unit="pass") as bar:
            run = run_units(
                [(pass_key(p), p) for p in order],
                partial(open_pipeline, **options),
                partial(predict_pass, confidence=args.confidence, progress=False),
                journal,
                config,
                on_unit=lambda p: bar.update(p.done - bar.n),
            )
    except KeyboardInterrupt:
        kept = len(journal.done([pass_key(p) for p in passes]))
        print(f"stopped: {kept} finished passes kept in {journal.folder}; the same command continues the run")
        raise
    with atomic_dir(args.out, overwrite=args.force, inputs=inputs) as out:
        predictions = PassPredictions(passes, lambda p: run.results[pass_key(p)])
        frames = write_split(split, predictions, out, args)
        atomic_write_json(out / "run.json", _run_facts(options, run, len(split.units)), indent=1)
    journal.remove()
    notes = [f"{len(split.units)} units in {run.ran} passes on {run.workers} Ray workers"]
    notes += [f"{run.workers_lost} workers lost and replaced"] if run.workers_lost else []
    notes += [f"{run.resumed} passes resumed from a stopped run"] if run.resumed else []
    print(f"wrote {frames} frame predictions to {args.out} ({', '.join(notes)})")
    return 0
