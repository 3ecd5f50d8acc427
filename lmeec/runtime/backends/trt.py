"""The `trt` backend: TensorRT 10/11 plans run over torch CUDA buffers by address (no copies).

One execution context per engine, its input shapes set once (`set_input_shape`) and every I/O shape checked
against the manifest; one CUDA stream for every engine (ordered after and before the caller's current torch
stream with events, never a host wait), `execute_async_v3` inside the engine's device. I/O buffers must start
on 256-byte boundaries (TensorRT's rule), checked when binding. Plans built by another TensorRT version or for
another GPU are refused with the command that rebuilds them. Bound runners are CUDA launches on that stream,
forked from and joined to the caller's: the pipeline's `--graph` records them inside its captured step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from lmeec.export.manifest import Manifest, check_manifest, read_manifest
from lmeec.export.trt import check_plan_compat, gpu_facts, import_tensorrt
from lmeec.runtime.backend import Backend, Runner, check_bindings

ALIGNMENT = 256  # bytes: TensorRT's requirement for every I/O tensor address


class TrtBackend(Backend):
    name = "trt"

    def __init__(
        self,
        engines: Path | str,
        *,
        preset: str | None = None,
        device: torch.device | str | None = None,
        trt=None,
        cuda=None,
        gpu: dict | None = None,
    ) -> None:
        """trt, cuda, gpu: the tensorrt module, the `torch.cuda` API and the GPU facts (stand-ins in tests)."""
        self.folder = Path(engines)
        self.manifest: Manifest = read_manifest(self.folder)
        check_manifest(self.folder, self.manifest, preset)
        self.preset = self.manifest.preset_config
        self.max_objects = self.manifest.max_objects
        self.weights = self.manifest.checkpoint
        self.device = torch.device(device or "cuda")
        self.cuda = cuda or torch.cuda
        if cuda is None and self.device.type != "cuda":
            raise ValueError("the trt backend runs on a CUDA device (--device cuda)")
        self.trt = trt = trt or import_tensorrt()
        self.gpu = gpu or gpu_facts(self.device.index or 0)
        check_plan_compat(self.manifest, str(trt.__version__), self.gpu, self.folder)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.stream = self.cuda.Stream(self.device)
        self.engines, self.contexts = {}, {}
        self._bound: dict[str, int] = {}  # graph -> the binding its context holds now
        self._binds = 0
        with self.cuda.device(self.device):
            for name, entry in self.manifest.graphs.items():
                engine = self.runtime.deserialize_cuda_engine((self.folder / entry.file).read_bytes())
                if engine is None:
                    raise RuntimeError(
                        f"{self.folder / entry.file}: TensorRT {trt.__version__} cannot load this plan; "
                        f"rebuild it on this machine with `lmeec build trt`"
                    )
                self._check_engine(name, engine)
                context = engine.create_execution_context()
                if context is None:
                    raise RuntimeError(
                        f"{self.folder / entry.file}: TensorRT could not create an execution context "
                        "(out of GPU memory?)"
                    )
                self._set_shapes(name, context)
                self.engines[name], self.contexts[name] = engine, context

    def _check_engine(self, graph: str, engine) -> None:
        """The plan's I/O tensors must be the manifest's (names, directions, dtypes; shapes up to -1)."""
        trt = self.trt
        entry = self.manifest.graphs[graph]
        want = {s.name: ("input", s) for s in entry.inputs} | {s.name: ("output", s) for s in entry.outputs}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        if sorted(names) != sorted(want):
            raise RuntimeError(
                f"{graph}: plan tensors {sorted(names)} differ from the manifest's {sorted(want)}"
            )
        dtypes = {"float32": trt.float32, "float16": trt.float16, "int64": trt.int64}
        for name in names:
            role, spec = want[name]
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))  # -1: set per context
            if (
                is_input != (role == "input")
                or len(shape) != len(spec.shape)
                or any(d not in (-1, w) for d, w in zip(shape, spec.shape))
            ):
                raise RuntimeError(
                    f"{graph}.{name}: plan has {'input' if is_input else 'output'} shape {list(shape)}, "
                    f"manifest {role} {list(spec.shape)}"
                )
            if engine.get_tensor_dtype(name) != dtypes[spec.dtype]:
                raise RuntimeError(
                    f"{graph}.{name}: plan dtype {engine.get_tensor_dtype(name)}, manifest {spec.dtype}"
                )

    def _set_shapes(self, graph: str, context) -> None:
        """Give the context the manifest's input shapes; every I/O shape must then be fully known."""
        entry = self.manifest.graphs[graph]
        for spec in entry.inputs:
            if not context.set_input_shape(spec.name, tuple(spec.shape)):
                raise RuntimeError(
                    f"{graph}.{spec.name}: TensorRT refused the input shape {list(spec.shape)}"
                )
        for spec in [*entry.inputs, *entry.outputs]:
            shape = tuple(int(d) for d in context.get_tensor_shape(spec.name))
            if shape != tuple(spec.shape):
                raise RuntimeError(
                    f"{graph}.{spec.name}: shape {list(shape)} in the execution context, manifest {list(spec.shape)}"
                )

    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        entry = self.manifest.graphs[graph]
        check_bindings(graph, entry.inputs, feeds, "inputs", self.device)
        check_bindings(graph, entry.outputs, fetches, "outputs", self.device)
        addresses = [(name, t.data_ptr()) for name, t in {**feeds, **fetches}.items()]
        for name, ptr in addresses:
            if ptr % ALIGNMENT:
                raise ValueError(
                    f"{graph}.{name}: buffer address is {ptr % ALIGNMENT} bytes past a {ALIGNMENT}-byte "
                    "boundary; TensorRT needs aligned I/O (bind a tensor of its own, not a slice)"
                )
        context, stream, cuda, device = self.contexts[graph], self.stream, self.cuda, self.device
        self._binds += 1
        key = self._binds  # a graph bound twice (mask decoder) re-points its context when it alternates
        bound = self._bound

        def run() -> None:
            with cuda.device(device):
                if bound.get(graph) != key:
                    for name, ptr in addresses:
                        if not context.set_tensor_address(name, ptr):
                            raise RuntimeError(f"{graph}.{name}: TensorRT refused the buffer address")
                    bound[graph] = key
                caller = cuda.current_stream(device)
                stream.wait_stream(caller)  # inputs written by torch ops on the caller's stream
                if not context.execute_async_v3(stream.cuda_stream):
                    raise RuntimeError(f"{graph}: TensorRT execution failed")
                caller.wait_stream(stream)  # outputs visible to the caller's next torch ops

        return run

    def synchronize(self) -> None:
        self.stream.synchronize()
        self.cuda.synchronize(self.device)

    def describe(self) -> dict:
        t = self.manifest.tensorrt
        return {
            **super().describe(),
            "tensorrt": str(self.trt.__version__),
            "gpu": self.gpu["gpu"],
            "precision": t.get("precision"),
            "mode": t.get("mode"),
        }
