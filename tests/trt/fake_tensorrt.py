"""A recording stand-in for the `tensorrt` module, faithful where lmeec's bugs would show.

It is installed as `sys.modules["tensorrt"]`, so polygraphy's real loaders drive it. Faithful to TensorRT:
the enum values (`STRONGLY_TYPED` = 1, so a strongly typed network's flags word is 2), which names exist
per major (10: FP16 / OBEY_PRECISION_CONSTRAINTS / `layer.precision` / `set_output_type` /
`precision_is_set`; 11: none of them), tensor dtypes from the ONNX (BOOL, INT64, HALF), unset layer
precisions and output types reading FLOAT, helper layers without metadata (`node_<k>`, `ONNXTRT_*`),
layer metadata `[ONNX Layer: NAME]`, builds refused under OBEY when a non-float output is pinned to FLOAT,
`set_timing_cache` / `get_timing_cache` results, and a Runtime / engine / execution context that records
shapes, addresses (256-byte alignment) and launches. The scripts/trt_api_names.py name lists check that
every name used here exists in the real bindings (tests/trt/test_api_surface.py).
"""

from __future__ import annotations

import contextlib
import enum
import json
import sys
import types

import onnx

STATE: dict = {}
state = STATE
MAJOR = 10
__version__ = "10.3.0"


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


float32, float16, int32, int64 = DataType.FLOAT, DataType.HALF, DataType.INT32, DataType.INT64


def __getattr__(name: str):
    if name == "bool":  # `trt.bool`, without shadowing the builtin inside this module
        return DataType.BOOL
    raise AttributeError(name)


ONNX_TYPES = {
    onnx.TensorProto.FLOAT: DataType.FLOAT,
    onnx.TensorProto.FLOAT16: DataType.HALF,
    onnx.TensorProto.INT64: DataType.INT64,
    onnx.TensorProto.INT32: DataType.INT32,
    onnx.TensorProto.BOOL: DataType.BOOL,
}


class LayerType(enum.IntEnum):
    CONVOLUTION = 0
    ACTIVATION = 2
    ELEMENTWISE = 8
    SOFTMAX = 10
    SHUFFLE = 15
    CONSTANT = 18
    MATRIX_MULTIPLY = 17
    CAST = 40
    SHAPE = 21


OPS = {
    "Conv": LayerType.CONVOLUTION,
    "MatMul": LayerType.MATRIX_MULTIPLY,
    "Gemm": LayerType.MATRIX_MULTIPLY,
    "Softmax": LayerType.SOFTMAX,
    "Reshape": LayerType.SHUFFLE,
    "Flatten": LayerType.SHUFFLE,
    "Constant": LayerType.CONSTANT,
    "Cast": LayerType.CAST,
}
COMPARISONS = {"Greater", "Less", "Equal", "Not", "And", "Or"}
HELPERS = {"Softmax": "ONNXTRT_ShapeShuffle", "MatMul": "node_of_{}"}  # extra layers the parser adds


CREATION_FLAGS = {10: {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}, 11: {"STRONGLY_TYPED": 1}}


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DeviceType(enum.IntEnum):
    GPU = 0
    DLA = 1


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


BUILDER_FLAGS = {
    10: {"FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5,
         "TF32": 6, "SPARSE_WEIGHTS": 7, "OBEY_PRECISION_CONSTRAINTS": 9, "PREFER_PRECISION_CONSTRAINTS": 10},
    11: {"DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 4, "DISABLE_TIMING_CACHE": 5, "TF32": 6, "SPARSE_WEIGHTS": 7},
}  # fmt: skip


class ILogger:
    def __init__(self) -> None:
        pass


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, level=None) -> None:
        self.level = level


def init_libnvinfer_plugins(logger, namespace) -> bool:
    return True


# --- network ------------------------------------------------------------------------------------------


class ITensor:
    def __init__(self, name: str, dtype: DataType, shape=()) -> None:
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)
        self.is_shape_tensor = False


class Layer10:
    """TensorRT 10 ILayer: precision and output types read FLOAT until set; `precision_is_set` says which."""

    def __init__(self, name: str, type_: LayerType, outputs: list[ITensor], metadata: str, typed: bool):
        self.name, self.type, self.metadata, self._outputs, self._typed = (
            name,
            type_,
            metadata,
            outputs,
            typed,
        )
        self._precision: DataType | None = None
        self.output_types: dict[int, DataType] = {}

    num_outputs = property(lambda self: len(self._outputs))

    def get_output(self, j: int) -> ITensor:
        return self._outputs[j]

    @property
    def precision(self) -> DataType:
        return DataType.FLOAT if self._precision is None else self._precision

    @precision.setter
    def precision(self, value: DataType) -> None:
        if self._typed:
            raise RuntimeError("strongly typed network: layer precision cannot be set")
        self._precision = value

    @property
    def precision_is_set(self) -> bool:
        return self._precision is not None

    def get_output_type(self, j: int) -> DataType:
        return self.output_types.get(j, DataType.FLOAT)

    def set_output_type(self, j: int, dt: DataType) -> None:
        if self._typed:
            raise RuntimeError("strongly typed network: output type cannot be set")
        self.output_types[j] = dt


class Layer11:
    """TensorRT 11 ILayer: no precision, output type or precision_is_set."""

    def __init__(self, name, type_, outputs, metadata, typed):
        self.name, self.type, self.metadata, self._outputs = name, type_, metadata, outputs

    num_outputs = property(lambda self: len(self._outputs))

    def get_output(self, j: int) -> ITensor:
        return self._outputs[j]


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.layers, self.inputs, self.outputs = [], [], []

    num_layers = property(lambda self: len(self.layers))
    num_inputs = property(lambda self: len(self.inputs))
    num_outputs = property(lambda self: len(self.outputs))

    def get_flag(self, flag) -> bool:
        return bool(self.flags & (1 << int(flag)))

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int):
        return self.layers[i]

    def get_layer(self, i: int):
        return self.layers[i]

    def get_input(self, i: int) -> ITensor:
        return self.inputs[i]

    def get_output(self, i: int) -> ITensor:
        return self.outputs[i]


class OnnxParser:
    """Parses with real ONNX type inference: one layer per node named after it (metadata set), helper layers."""

    def __init__(self, network: INetworkDefinition, logger) -> None:
        self.network, self.num_errors, self.flags = network, 0, 0

    def parse_from_file(self, path: str) -> bool:
        model = onnx.load(path)
        net = self.network
        STATE["parsed"].append(model)
        typed = net.get_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        types_ = {vi.name: ONNX_TYPES[vi.type.tensor_type.elem_type] for vi in model.graph.input}
        types_ |= {t.name: ONNX_TYPES[t.data_type] for t in model.graph.initializer}
        for node in model.graph.node:  # the parser's type propagation, for the ops the fixtures use
            if node.op_type == "Cast":
                dt = ONNX_TYPES[next(a.i for a in node.attribute if a.name == "to")]
            elif node.op_type in COMPARISONS:
                dt = DataType.BOOL
            else:
                dt = types_[node.input[0]]
            types_ |= {o: dt for o in node.output}
        for vi in model.graph.input:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if vi.name in STATE.get("dynamic_inputs", set()):
                dims[0] = -1
            if vi.name in STATE.get("wrong_shape", set()):
                dims[-1] += 1
            net.inputs.append(ITensor(vi.name, types_[vi.name], dims))
        layer_cls = Layer10 if MAJOR <= 10 else Layer11
        names: set[str] = set()
        for k, node in enumerate(model.graph.node):
            outs = [ITensor(o, types_[o]) for o in node.output]
            kind = OPS.get(node.op_type, LayerType.ELEMENTWISE)
            name = node.name
            while name in names:  # the parser's generateUniqueName
                name += "_1"
            names.add(name)
            net.layers.append(layer_cls(name, kind, outs, f"[ONNX Layer: {node.name}]", typed))
            if node.op_type in HELPERS:
                helper = HELPERS[node.op_type].format(k)
                dt = outs[0].dtype
                kind = LayerType.SHUFFLE if helper.startswith("ONNXTRT") else LayerType.ELEMENTWISE
                net.layers.append(layer_cls(helper, kind, [ITensor(helper + "_out", dt)], "", typed))
        net.outputs = [
            ITensor(
                vi.name,
                ONNX_TYPES[vi.type.tensor_type.elem_type],
                [d.dim_value for d in vi.type.tensor_type.shape.dim],
            )
            for vi in model.graph.output
        ]
        return True

    def get_error(self, i: int) -> str:
        return "no error"


# --- builder ------------------------------------------------------------------------------------------


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name, mn, opt, mx) -> None:
        self.shapes[name] = (tuple(mn), tuple(opt), tuple(mx))

    def __bool__(self) -> bool:
        return bool(self.shapes)


class HostMemory(bytes):
    """IHostMemory: a buffer that is also a context manager."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class ITimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> HostMemory:
        return HostMemory(self.data)

    def combine(self, other, ignore_mismatch) -> bool:
        return True


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags = {BuilderFlag.TF32}  # TensorRT's default
        self.profiles: list[IOptimizationProfile] = []
        self.pool: dict = {}
        self.cache: ITimingCache | None = None
        self.DLA_core = -1
        self.default_device_type = DeviceType.GPU
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY

    num_optimization_profiles = property(lambda self: len(self.profiles))

    def set_flag(self, f) -> None:
        self.flags.add(f)

    def clear_flag(self, f) -> None:
        self.flags.discard(f)

    def get_flag(self, f) -> bool:
        return f in self.flags

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.pool[pool] = size

    def get_memory_pool_limit(self, pool) -> int:
        return self.pool.get(pool, 1 << 40)

    def add_optimization_profile(self, p: IOptimizationProfile) -> int:
        self.profiles.append(p)
        return len(self.profiles) - 1

    def create_timing_cache(self, data) -> ITimingCache:
        STATE["cache_in"].append(bytes(data))
        return ITimingCache(bytes(data) + b"+" if data else b"")

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if STATE.get("cache_mismatch") and cache.data:
            return False  # a cache from another GPU or TensorRT version
        self.cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return None if STATE.get("no_cache_out") else self.cache


class Builder:
    def __init__(self, logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig):
        STATE["builds"].append({"network": network, "config": config})
        if STATE.get("fail_on") in {t.name for t in network.inputs}:
            return None
        obey = getattr(BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None) in config.flags
        for layer in network.layers:
            for j, dt in getattr(layer, "output_types", {}).items():
                if (
                    obey
                    and dt != layer.get_output(j).dtype
                    and layer.get_output(j).dtype
                    not in (
                        DataType.FLOAT,
                        DataType.HALF,
                    )
                ):
                    STATE["errors"].append(f"{layer.name}: output {j} cannot be {dt.name}")
                    return None  # TensorRT: no implementation obeys the constraints
        for t in network.inputs:
            if -1 in t.shape and not any(t.name in p.shapes for p in config.profiles):
                return None  # dynamic input without a profile
        tensors = [
            {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, "mode": "INPUT"}
            for t in network.inputs
        ] + [
            {"name": t.name, "shape": list(t.shape), "dtype": t.dtype.name, "mode": "OUTPUT"}
            for t in network.outputs
        ]
        return HostMemory(json.dumps({"tensors": tensors}).encode())


# --- runtime ------------------------------------------------------------------------------------------


class ICudaEngine:
    def __init__(self, plan: dict) -> None:
        self.tensors = {t["name"]: t for t in plan["tensors"]}
        self.order = [t["name"] for t in plan["tensors"]]

    num_io_tensors = property(lambda self: len(self.order))

    def get_tensor_name(self, i: int) -> str:
        return self.order[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode[self.tensors[name]["mode"]]

    def get_tensor_shape(self, name: str) -> tuple:
        return tuple(self.tensors[name]["shape"])  # -1 for dynamic dimensions, as TensorRT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType[self.tensors[name]["dtype"]]

    def create_execution_context(self):
        if STATE.get("no_context"):
            return None  # out of device memory
        ctx = IExecutionContext(self)
        STATE["contexts"].append(ctx)
        return ctx


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.input_shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.launches: list[dict] = []

    def set_input_shape(self, name: str, shape) -> bool:
        want = self.engine.get_tensor_shape(name)
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(want) or any(w not in (-1, d) for w, d in zip(want, shape)):
            return False
        self.input_shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if self.engine.get_tensor_mode(name) == TensorIOMode.INPUT:
            return self.input_shapes.get(name, self.engine.get_tensor_shape(name))
        return self.engine.get_tensor_shape(name)

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        if ptr % 256:
            return False  # TensorRT: I/O addresses must be 256-byte aligned
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        inputs = [n for n in self.engine.order if self.engine.get_tensor_mode(n) == TensorIOMode.INPUT]
        if any(-1 in self.get_tensor_shape(n) for n in inputs) or set(self.addresses) != set(
            self.engine.order
        ):
            return False
        self.launches.append(
            {
                "stream": stream_handle,
                "device": STATE.get("current_device"),
            }
        )
        return True


class Runtime:
    def __init__(self, logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes):
        if STATE.get("bad_plan"):
            return None
        return ICudaEngine(json.loads(bytes(data)))


BuilderFlag = enum.IntEnum("BuilderFlag", BUILDER_FLAGS[10])
NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", CREATION_FLAGS[10])


def make(version: str = "10.3.0", **state) -> types.ModuleType:
    """This module as TensorRT `version` (10.x or 11.x) with empty call records, installed as `tensorrt`."""
    global MAJOR, BuilderFlag, NetworkDefinitionCreationFlag, __version__
    MAJOR = int(version.split(".")[0])
    surface = 10 if MAJOR <= 10 else 11  # other majors only test the version check
    BuilderFlag = enum.IntEnum("BuilderFlag", BUILDER_FLAGS[surface])
    NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", CREATION_FLAGS[surface])
    __version__ = version
    STATE.clear()
    STATE.update(parsed=[], builds=[], cache_in=[], errors=[], contexts=[], **state)
    sys.modules["tensorrt"] = sys.modules[__name__]
    return sys.modules[__name__]


# --- the torch.cuda API the trt backend uses, on the CPU ---------------------------------------------


class FakeStream:
    _next = 1

    def __init__(self, device=None, handle: int | None = None) -> None:
        if handle is None:
            handle, FakeStream._next = FakeStream._next, FakeStream._next + 1
        self.cuda_stream, self.device, self.waits = handle, device, []

    def wait_stream(self, other: FakeStream) -> None:
        self.waits.append(other.cuda_stream)

    def synchronize(self) -> None:
        pass


class FakeCuda:
    """`torch.cuda` for TrtBackend on the CPU: device scopes are recorded in STATE."""

    Stream = FakeStream

    def __init__(self) -> None:
        self.default = FakeStream(handle=0)

    def current_stream(self, device=None) -> FakeStream:
        return self.default

    def synchronize(self, device=None) -> None:
        STATE.setdefault("synchronized", []).append(str(device))

    @contextlib.contextmanager
    def device(self, device):
        previous, STATE["current_device"] = STATE.get("current_device"), str(device)
        try:
            yield
        finally:
            STATE["current_device"] = previous
