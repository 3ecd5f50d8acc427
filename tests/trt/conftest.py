"""Fixtures for the TensorRT/precision tests: a tiny export folder with the real manifest specs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))

GPU = {"gpu": "NVIDIA Fake GPU", "compute_capability": "8.7"}


FP16_MATMUL = "/image_encoder/trunk/blocks.0/mlp/MatMul"
SIBLING = FP16_MATMUL + "_1"  # an FP32 node whose name extends the FP16 node's (a prefix match mistakes it)


def _graph(name: str, inputs, outputs):
    """Stand-in graph with the stage's I/O: an FP16 MatMul, a softmax named like its sibling, the
    logits-island MatMul, a Sin and a BOOL comparison cast back to float."""
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    zero = numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    nodes = [
        helper.make_node("Flatten", [inputs[0].name], ["x"], name="/flat/Flatten", axis=0),
        helper.make_node("MatMul", ["x", "W"], ["a"], name=FP16_MATMUL),
        helper.make_node("Softmax", ["a"], ["b"], name=SIBLING),
        helper.make_node("MatMul", ["b", "W"], ["c"], name="/sam_mask_decoder/MatMul"),
        helper.make_node("Sin", ["c"], ["d"], name="/Sin"),
        helper.make_node("Greater", ["d", "zero"], ["g"], name="/Greater"),
        helper.make_node("Cast", ["g"], ["h"], name="/Cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["d", "h"], ["e"], name="/Mul"),
    ] + [
        helper.make_node("Identity", ["e"], [o.name], name=f"/out{i}/Identity") for i, o in enumerate(outputs)
    ]
    dt = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64}
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(s.name, dt[s.dtype], s.shape) for s in inputs],
        [helper.make_tensor_value_info(s.name, dt[s.dtype], s.shape) for s in outputs],
        [w, zero],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture
def fake_export(tmp_path):
    from lmeec.export.manifest import GraphEntry, Manifest, library_versions, sha256
    from lmeec.model.config import get_preset
    from lmeec.model.stages import STAGES

    folder = tmp_path / "onnx"
    folder.mkdir()
    p = get_preset("test")
    graphs = {}
    for cls in STAGES:
        ins, outs = cls.input_specs(p), cls.output_specs(p)
        onnx.save(_graph(cls.name, ins, outs), str(folder / f"{cls.name}.onnx"))
        graphs[cls.name] = GraphEntry(f"{cls.name}.onnx", sha256(folder / f"{cls.name}.onnx"), ins, outs, {})
    Manifest("test", p.memory.compression, 18, graphs, {"random_seed": 0}, library_versions()).write(folder)
    return folder


@pytest.fixture
def fake_trt():
    """The recording TensorRT stand-in installed as `tensorrt` (polygraphy drives it); removed afterwards."""
    import fake_tensorrt

    yield fake_tensorrt.make
    sys.modules.pop("tensorrt", None)
