"""A stand-in for the `tensorrt` module (TensorRT 10 API surface lmeec uses) that records calls."""

from __future__ import annotations

import enum
import json
import types

import onnx


class DT(enum.Enum):
    float32 = "float32"
    float16 = "float16"
    int64 = "int64"


class LayerType(enum.Enum):
    CONSTANT = 1
    SHUFFLE = 2
    SHAPE = 3
    CONVOLUTION = 4
    MATRIX_MULTIPLY = 5
    SOFTMAX = 6
    ELEMENTWISE = 7
    CAST = 8


OPS = {
    "Conv": LayerType.CONVOLUTION,
    "MatMul": LayerType.MATRIX_MULTIPLY,
    "Gemm": LayerType.MATRIX_MULTIPLY,
    "Softmax": LayerType.SOFTMAX,
    "Reshape": LayerType.SHUFFLE,
    "Constant": LayerType.CONSTANT,
    "Cast": LayerType.CAST,
}


class Layer:
    def __init__(self, name, type_, n_out, typed):
        self.name, self.type, self.num_outputs, self._typed = name, type_, n_out, typed
        self._precision, self.output_types = None, {}

    @property
    def precision(self):
        return self._precision

    @precision.setter
    def precision(self, value):
        if self._typed:
            raise RuntimeError("strongly typed network: layer precision cannot be set")
        self._precision = value

    def get_output_type(self, j):
        return self.output_types.get(j, DT.float32)

    def set_output_type(self, j, dt):
        if self._typed:
            raise RuntimeError("strongly typed network: output type cannot be set")
        self.output_types[j] = dt


class Tensor:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class Network:
    def __init__(self, flags, state):
        self.flags, self.state = flags, state
        self.layers, self.inputs, self.outputs = [], [], []

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))
    num_outputs = property(lambda self: len(self.outputs))

    def get_layer(self, i):
        return self.layers[i]

    def get_input(self, i):
        return self.inputs[i]

    def get_output(self, i):
        return self.outputs[i]


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.num_errors = network, 0

    def parse_from_file(self, path):
        model = onnx.load(path)
        net, state = self.network, self.network.state
        state["parsed"].append(model)
        typed = bool(net.flags & 1)
        dynamic = state.get("dynamic_inputs", set())
        for vi in model.graph.input:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if vi.name in dynamic:
                dims[0] = -1
            if vi.name in state.get("wrong_shape", set()):
                dims[-1] += 1
            net.inputs.append(Tensor(vi.name, tuple(dims)))
        for vi in model.graph.output:
            net.outputs.append(Tensor(vi.name, None))
        for node in model.graph.node:
            net.layers.append(
                Layer(node.name, OPS.get(node.op_type, LayerType.ELEMENTWISE), len(node.output), typed)
            )
        return True

    def get_error(self, i):
        return "no error"


class Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, mn, opt, mx):
        self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))


class Cache:
    def __init__(self, data):
        self.data = data

    def serialize(self):
        return self.data


class Config:
    def __init__(self, state):
        self.state, self.flags, self.profiles, self.pool = state, set(), [], {}
        self.flags.add(BuilderFlag.TF32)  # TensorRT's default

    def set_flag(self, f):
        self.flags.add(f)

    def clear_flag(self, f):
        self.flags.discard(f)

    def set_memory_pool_limit(self, pool, size):
        self.pool[pool] = size

    def add_optimization_profile(self, p):
        self.profiles.append(p)
        return len(self.profiles) - 1

    def create_timing_cache(self, data):
        self.state["cache_in"].append(bytes(data))
        return Cache(bytes(data) + b"+")

    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache
        return True

    def get_timing_cache(self):
        return self.cache


class Builder:
    def __init__(self, logger):
        self.state = STATE

    def create_network(self, flags):
        return Network(flags, self.state)

    def create_builder_config(self):
        return Config(self.state)

    def create_optimization_profile(self):
        return Profile()

    def build_serialized_network(self, network, config):
        name = network.outputs[0].name if network.outputs else "?"
        self.state["builds"].append({"network": network, "config": config})
        if self.state.get("fail_on") in {t.name for t in network.inputs}:
            return None
        return json.dumps({"inputs": [t.name for t in network.inputs], "out": name}).encode()


class Logger:
    WARNING = 2

    def __init__(self, level=None):
        self.level = level


BuilderFlag = enum.Enum("BuilderFlag", "FP16 OBEY_PRECISION_CONSTRAINTS TF32")
MemoryPoolType = enum.Enum("MemoryPoolType", "WORKSPACE")
NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
STATE: dict = {}


def make(version="10.3.0"):
    """A fresh fake module with empty call records."""
    STATE.clear()
    STATE.update(parsed=[], builds=[], cache_in=[])
    mod = types.SimpleNamespace(
        __version__=version,
        Builder=Builder,
        OnnxParser=OnnxParser,
        Logger=Logger,
        BuilderFlag=BuilderFlag,
        MemoryPoolType=MemoryPoolType,
        NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag,
        LayerType=LayerType,
        float32=DT.float32,
        float16=DT.float16,
        int64=DT.int64,
        state=STATE,
    )
    return mod
