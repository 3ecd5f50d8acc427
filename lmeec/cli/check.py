"""`lmeec check`: an engine folder against the FP32 ONNX oracle, per graph and over a whole take.

1. A synthetic take runs through the FP32 ONNX graphs (ONNX Runtime, CPU), recording each graph's
   inputs and outputs on a few frames (after the banks hold memories).
2. Per engine, with polygraphy: the recorded inputs go through the engine under test (polygraphy's
   ONNX Runtime runner over the backend's session, or its TensorRT runner over the backend's engine) and
   polygraphy's comparator checks the outputs against the recorded FP32 ones: max |diff| within
   tolerance · max(1, max |reference|) per output (reported as the relative max error); for the mask
   decoder also logit sign agreement. A failing engine prints the `polygraphy run` and
   `polygraphy debug precision` commands that reproduce and bisect it (inputs and FP32 outputs saved
   with --debug-dir).
3. The whole take runs through both; per-frame mask IoU against the oracle (gates: every frame ≥ 0.98,
   mean ≥ 0.99).
Prints every gate as PASS/FAIL; exit status 1 if any fails.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch

from lmeec.cli.options import add_device_options, resolve_device

GATE_MIN, GATE_MEAN = 0.98, 0.99
TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2}  # max |diff| / max(1, max |reference|)
SIGN_AGREEMENT = 0.99


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="compare an engine folder with the FP32 ONNX graphs; gates PASS/FAIL")
    p.add_argument("--engines", required=True, help="plan folder (trt) or ONNX folder (ort) to check")
    p.add_argument("--backend", required=True, choices=["trt", "ort"])
    p.add_argument("--onnx", help="FP32 ONNX export (default: ENGINES/onnx for plans, else required)")
    add_device_options(p)
    p.add_argument("--frames", type=int, default=30, help="take length (default 30)")
    p.add_argument("--record", type=int, default=2, help="frames whose stage inputs are recorded")
    p.add_argument(
        "--debug-dir",
        metavar="DIR",
        help="save a failing engine's recorded inputs and FP32 outputs here (polygraphy JSON, for the printed commands)",
    )
    p.set_defaults(func=cmd_check)


class _Recorder:
    """Wraps a backend; keeps CPU copies of each graph's feeds and fetches on chosen calls."""

    def __init__(self, backend, keep_from: int, keep: int) -> None:
        self.backend, self.keep_from, self.keep = backend, keep_from, keep
        self.preset, self.device, self.max_objects = backend.preset, backend.device, backend.max_objects
        self.records: dict[str, list[tuple[dict, dict]]] = {}
        self.frame = 0

    def bind(self, graph, feeds, fetches):
        run = self.backend.bind(graph, feeds, fetches)

        def recorded() -> None:
            run()
            recs = self.records.setdefault(graph, [])
            if self.frame >= self.keep_from and len(recs) < self.keep:
                clone = lambda d: {k: v.detach().cpu().clone() for k, v in d.items()}  # noqa: E731
                recs.append((clone(feeds), clone(fetches)))

        return recorded

    def synchronize(self) -> None:
        self.backend.synchronize()


def _open(kind: str, engines: str, device: torch.device, providers: list[str] | None):
    if kind == "trt":
        from lmeec.runtime.backends.trt import TrtBackend

        return TrtBackend(engines, device=device)
    from lmeec.runtime.backends.ort import OrtBackend

    return OrtBackend(engines, device=device, providers=providers)


def _precision(manifest) -> str:
    if manifest.tensorrt:
        return manifest.tensorrt.get("precision", "fp32")
    return "fp16" if any(g.extra.get("precision") == "fp16" for g in manifest.graphs.values()) else "fp32"


def polygraphy_runner(tested, graph: str):
    """polygraphy's runner over the engine the backend under test loaded for `graph`."""
    if tested.name == "trt":
        from polygraphy.backend.trt import TrtRunner

        return TrtRunner(tested.engines[graph], name=f"trt:{graph}")
    from polygraphy.backend.onnxrt import OnnxrtRunner

    return OnnxrtRunner(tested.sessions[graph], name=f"onnxrt:{graph}")


def check_graphs(tested, records: dict, tolerance: float) -> list[dict]:
    """Per graph: polygraphy runs the recorded inputs through the engine and compares with the FP32 outputs."""
    from polygraphy.comparator import Comparator, IterationResult, RunResults, SimpleCompareFunc
    from polygraphy.logger import G_LOGGER

    rows = []
    for graph, recs in records.items():
        feeds = [{k: v.numpy() for k, v in rec_in.items()} for rec_in, _ in recs]
        refs = [{k: v.numpy() for k, v in rec_out.items()} for _, rec_out in recs]
        runner = polygraphy_runner(tested, graph)
        with G_LOGGER.verbosity(G_LOGGER.ERROR):
            (_, results), *_ = Comparator.run([runner], data_loader=feeds).items()
            worst, sign, passed = 0.0, 1.0, True
            for got, ref in zip(results, refs):
                scale = {k: max(1.0, float(np.abs(r).max())) for k, r in ref.items()}
                compare = SimpleCompareFunc(
                    atol={k: tolerance * v for k, v in scale.items()}, rtol=0.0, check_error_stat="max"
                )
                pair = RunResults([(runner.name, [got]), ("fp32-onnx", [IterationResult(ref, "fp32-onnx")])])
                accuracy = Comparator.compare_accuracy(pair, compare_func=compare)
                (outputs,) = accuracy[0][(runner.name, "fp32-onnx")]
                passed &= bool(accuracy)
                for k, result in outputs.items():
                    worst = max(worst, float(result.max_absdiff) / scale[k])
                if "logits" in ref:
                    sign = min(sign, float(np.mean((got["logits"] > 0) == (ref["logits"] > 0))))
        ok = passed and sign >= SIGN_AGREEMENT
        atol = {k: tolerance * max(1.0, max(float(np.abs(r[k]).max()) for r in refs)) for k in refs[0]}
        row = {"graph": graph, "rel_err": worst, "sign_agreement": sign, "pass": ok, "atol": atol}
        rows.append(row | {"feeds": feeds, "refs": refs})
    return rows


def polygraphy_commands(tested, graph: str, oracle_dir: Path, debug_dir: str, atol: dict) -> list[str]:
    """`polygraphy run` on the engine under test and `polygraphy debug precision` on the FP32 ONNX, both
    against the recorded inputs and FP32 outputs (the atol per output is the loosest over the records)."""
    from lmeec.export.manifest import read_manifest

    inputs, golden = f"{debug_dir}/{graph}.inputs.json", f"{debug_dir}/{graph}.fp32_outputs.json"
    check = (
        f"--load-inputs {inputs} --load-outputs {golden} --rtol 0 --check-error-stat max --atol "
        + " ".join(f"{k}:{v:.3g}" for k, v in atol.items())
    )
    entry = tested.manifest.graphs[graph]
    if tested.name == "trt":
        run = f"polygraphy run {tested.folder / entry.file} --model-type engine --trt {check}"
    else:
        providers = " ".join(p.removesuffix("ExecutionProvider").lower() for p, _ in tested.providers)
        run = f"polygraphy run {tested.folder / entry.file} --onnxrt --providers {providers} {check}"
    oracle = oracle_dir / read_manifest(oracle_dir).graphs[graph].file
    bisect = (
        f"polygraphy debug precision {oracle} --fp16 --precision-constraints obey --mode bisect "
        f"--dir forward -p float32 --check polygraphy run polygraphy_debug.engine --trt {check}"
    )
    return [run, bisect]


def save_debug_data(debug_dir: Path, graph: str, feeds: list[dict], refs: list[dict]) -> None:
    """The recorded inputs and FP32 outputs in polygraphy's JSON formats (--load-inputs / --load-outputs)."""
    from polygraphy.comparator import IterationResult, RunResults
    from polygraphy.json import save_json

    debug_dir.mkdir(parents=True, exist_ok=True)
    save_json(feeds, str(debug_dir / f"{graph}.inputs.json"))
    golden = RunResults([("fp32-onnx", [IterationResult(r, "fp32-onnx") for r in refs])])
    golden.save(str(debug_dir / f"{graph}.fp32_outputs.json"))


def cmd_check(args: argparse.Namespace) -> int:
    from lmeec.bench.precision import iou, synthetic_take
    from lmeec.export.manifest import read_manifest
    from lmeec.runtime.backends.ort import OrtBackend
    from lmeec.runtime.pipeline import Pipeline

    if args.frames < 3:
        raise ValueError("--frames must be at least 3 (the banks fill from frame 1)")
    if importlib.util.find_spec("polygraphy") is None:
        raise RuntimeError(
            "lmeec check compares engines with polygraphy: pip install polygraphy (or lmeec[trt])"
        )
    engines = Path(args.engines)
    manifest = read_manifest(engines)
    oracle_dir = Path(args.onnx) if args.onnx else engines / "onnx"
    if not (oracle_dir / "manifest.json").is_file():
        raise ValueError(f"no FP32 ONNX export at {oracle_dir}: pass --onnx DIR")
    device = torch.device(resolve_device(args.device, args.backend))
    tested = _open(args.backend, str(engines), device, args.provider)
    oracle = OrtBackend(oracle_dir, preset=manifest.preset, device=torch.device("cpu"))
    precision = _precision(manifest)
    recorder = _Recorder(oracle, keep_from=2, keep=args.record)

    ref_pipe, test_pipe = Pipeline(recorder), Pipeline(tested)
    take = list(synthetic_take(args.frames))
    ref_pipe.reset(len(take))
    test_pipe.reset(len(take))
    ious, flips = [], []
    for t, frame in enumerate(take):
        recorder.frame = t
        a, b = ref_pipe.step(*frame), test_pipe.step(*frame)
        ious.append(iou(a.mask_model, b.mask_model))
        flips.append(float(np.mean((a.logits > 0) != (b.logits > 0))))

    print(
        f"checking {engines} ({args.backend}, {precision}) against FP32 ONNX {oracle_dir}, preset {manifest.preset}"
    )
    ok = True
    tol = TOLERANCE[precision]
    failed = []
    for row in check_graphs(tested, recorder.records, tol):
        ok &= row["pass"]
        print(
            f"  engine {row['graph']:<22} rel err {row['rel_err']:.2e} (≤ {tol:g})"
            f"  logit signs {row['sign_agreement']:.4f}  {'PASS' if row['pass'] else 'FAIL'}"
        )
        if not row["pass"]:
            failed.append(row)
    mn, mean = min(ious), float(np.mean(ious))
    for label, value, gate in (("min", mn, GATE_MIN), ("mean", mean, GATE_MEAN)):
        passed = value >= gate
        ok &= passed
        print(f"  take mask IoU {label:<4} {value:.4f} (≥ {gate})  {'PASS' if passed else 'FAIL'}")
    print(f"  sign flips per frame: mean {np.mean(flips):.2e}, worst {max(flips):.2e}")
    for row in failed:
        if args.debug_dir:
            save_debug_data(Path(args.debug_dir), row["graph"], row["feeds"], row["refs"])
        print(f"  dig into {row['graph']} with polygraphy:")
        for command in polygraphy_commands(
            tested, row["graph"], oracle_dir, args.debug_dir or "DEBUG_DIR", row["atol"]
        ):
            print(f"    {command}")
    if failed and not args.debug_dir:
        print("  (rerun with --debug-dir DEBUG_DIR to save the inputs and FP32 outputs these commands load)")
    print(f"RESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1
