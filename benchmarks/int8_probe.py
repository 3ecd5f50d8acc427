"""Probe for the reduced-precision next step: ONNX Runtime dynamic INT8 on the image encoder's MatMuls.

    python benchmarks/int8_probe.py ENGINE_DIR        # an `lmeec export onnx` folder

Prints the relative error of each image-encoder output against FP32 and the median latency of both
(2 threads, spin-waiting off). A probe, not a product path: its error must be judged by the whole-take
IoU gates (`lmeec check`) on trained weights before anything ships.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def median_ms(session: ort.InferenceSession, feeds: dict, runs: int = 5) -> float:
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(engines: str) -> int:
    src = Path(engines) / "image_encoder.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "image_encoder.int8.onnx"
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        fp32 = ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        int8 = ort.InferenceSession(str(dst), options, providers=["CPUExecutionProvider"])
        shape = fp32.get_inputs()[0].shape
        feeds = {"images": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        for out, a, b in zip(fp32.get_outputs(), fp32.run(None, feeds), int8.run(None, feeds), strict=True):
            print(f"{out.name:<8} relative error {np.abs(a - b).max() / np.abs(a).max():.3e}")
        a_ms, b_ms = median_ms(fp32, feeds), median_ms(int8, feeds)
    print(f"image encoder: fp32 {a_ms:.1f} ms, int8 dynamic {b_ms:.1f} ms, speed-up {a_ms / b_ms:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
