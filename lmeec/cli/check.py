"""`lmeec check`: an engine folder against the FP32 ONNX oracle, per graph and over a whole take.

1. A synthetic take runs through the FP32 ONNX graphs (ONNX Runtime, CPU), recording each graph's
   inputs and outputs on a few frames (after the banks hold memories).
2. Per engine: the recorded inputs go through the engine under test; its outputs are compared with
   the recorded FP32 outputs (relative max error; for the mask decoder also logit sign agreement).
3. The whole take runs through both; per-frame mask IoU against the oracle (gates: every frame ≥ 0.98,
   mean ≥ 0.99).
Prints every gate as PASS/FAIL; exit status 1 if any fails.
"""

from __future__ import annotations

import argparse
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
    p.set_defaults(func=cmd_check)


class _Recorder:
    """Wraps a backend; keeps CPU copies of each graph's feeds and fetches on chosen calls."""

    def __init__(self, backend, keep_from: int, keep: int) -> None:
        self.backend, self.keep_from, self.keep = backend, keep_from, keep
        self.preset, self.device = backend.preset, backend.device
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


def check_graphs(tested, records: dict, tolerance: float) -> list[dict]:
    rows = []
    for graph, recs in records.items():
        entry = tested.manifest.graphs[graph]
        feeds = {
            s.name: torch.empty(s.shape, dtype=getattr(torch, s.dtype), device=tested.device)
            for s in entry.inputs
        }
        fetches = {
            s.name: torch.empty(s.shape, dtype=getattr(torch, s.dtype), device=tested.device)
            for s in entry.outputs
        }
        run = tested.bind(graph, feeds, fetches)
        worst, sign = 0.0, 1.0
        for rec_in, rec_out in recs:
            for k, v in rec_in.items():
                feeds[k].copy_(v)
            run()
            tested.synchronize()
            for k, ref in rec_out.items():
                got = fetches[k].cpu()
                worst = max(worst, float((got - ref).abs().max()) / max(1.0, float(ref.abs().max())))
                if k == "logits":
                    sign = min(sign, float(((got > 0) == (ref > 0)).float().mean()))
        ok = worst <= tolerance and sign >= SIGN_AGREEMENT
        rows.append({"graph": graph, "rel_err": worst, "sign_agreement": sign, "pass": ok})
    return rows


def cmd_check(args: argparse.Namespace) -> int:
    from lmeec.bench.precision import iou, synthetic_take
    from lmeec.export.manifest import read_manifest
    from lmeec.runtime.backends.ort import OrtBackend
    from lmeec.runtime.pipeline import Pipeline

    if args.frames < 3:
        raise ValueError("--frames must be at least 3 (the banks fill from frame 1)")
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
    for row in check_graphs(tested, recorder.records, tol):
        ok &= row["pass"]
        print(
            f"  engine {row['graph']:<22} rel err {row['rel_err']:.2e} (≤ {tol:g})"
            f"  logit signs {row['sign_agreement']:.4f}  {'PASS' if row['pass'] else 'FAIL'}"
        )
    mn, mean = min(ious), float(np.mean(ious))
    for label, value, gate in (("min", mn, GATE_MIN), ("mean", mean, GATE_MEAN)):
        passed = value >= gate
        ok &= passed
        print(f"  take mask IoU {label:<4} {value:.4f} (≥ {gate})  {'PASS' if passed else 'FAIL'}")
    print(f"  sign flips per frame: mean {np.mean(flips):.2e}, worst {max(flips):.2e}")
    print(f"RESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1
