"""The `trt` backend: TensorRT 10 plans run over torch CUDA buffers by address (no copies).

One execution context per engine, one CUDA stream for every engine (ordered after and before the
caller's current torch stream with events, never a host wait), `execute_async_v3`. Plans built by
another TensorRT version or for another GPU are refused with the command that rebuilds them.
`capture(runner)` records any sequence of bound runners as one CUDA graph (optional).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from lmeec.export.manifest import Manifest, check_manifest, read_manifest
from lmeec.export.trt import check_plan_compat, gpu_facts, import_tensorrt
from lmeec.runtime.backend import Backend, Runner, check_bindings


class TrtBackend(Backend):
    name = "trt"

    def __init__(
        self,
        engines: Path | str,
        *,
        preset: str | None = None,
        device: torch.device | str | None = None,
        trt=None,
    ) -> None:
        self.folder = Path(engines)
        self.manifest: Manifest = read_manifest(self.folder)
        check_manifest(self.folder, self.manifest, preset)
        self.preset = self.manifest.preset_config
        self.max_objects = self.manifest.max_objects
        self.device = torch.device(device or "cuda")
        if self.device.type != "cuda":
            raise ValueError("the trt backend runs on a CUDA device (--device cuda)")
        self.trt = trt = trt or import_tensorrt()
        self.gpu = gpu_facts(self.device.index or 0)
        check_plan_compat(self.manifest, str(trt.__version__), self.gpu, self.folder)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.stream = torch.cuda.Stream(self.device)
        self.engines, self.contexts = {}, {}
        self._bound: dict[str, int] = {}  # graph -> the binding its context holds now
        self._binds = 0
        with torch.cuda.device(self.device):
            for name, entry in self.manifest.graphs.items():
                engine = self.runtime.deserialize_cuda_engine((self.folder / entry.file).read_bytes())
                if engine is None:
                    raise RuntimeError(
                        f"{self.folder / entry.file}: TensorRT {trt.__version__} cannot load this plan; "
                        f"rebuild it on this machine with `lmeec build trt`"
                    )
                self._check_engine(name, engine)
                self.engines[name] = engine
                self.contexts[name] = engine.create_execution_context()

    def _check_engine(self, graph: str, engine) -> None:
        """The plan's I/O tensors must be the manifest's (names, directions, shapes, dtypes)."""
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
            mode = engine.get_tensor_mode(name)
            is_input = mode == trt.TensorIOMode.INPUT
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            if is_input != (role == "input") or shape != tuple(spec.shape):
                raise RuntimeError(
                    f"{graph}.{name}: plan has {role} shape {list(shape)}, manifest {list(spec.shape)}"
                )
            if engine.get_tensor_dtype(name) != dtypes[spec.dtype]:
                raise RuntimeError(
                    f"{graph}.{name}: plan dtype {engine.get_tensor_dtype(name)}, manifest {spec.dtype}"
                )

    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        entry = self.manifest.graphs[graph]
        check_bindings(graph, entry.inputs, feeds, "inputs", self.device)
        check_bindings(graph, entry.outputs, fetches, "outputs", self.device)
        context, stream = self.contexts[graph], self.stream
        addresses = [(name, t.data_ptr()) for name, t in {**feeds, **fetches}.items()]
        self._binds += 1
        key = self._binds  # a graph bound twice (mask decoder) re-points its context when it alternates
        bound = self._bound

        def run() -> None:
            if bound.get(graph) != key:
                for name, ptr in addresses:
                    if not context.set_tensor_address(name, ptr):
                        raise RuntimeError(f"{graph}.{name}: TensorRT refused the buffer address")
                bound[graph] = key
            caller = torch.cuda.current_stream(self.device)
            stream.wait_stream(caller)  # inputs written by torch ops on the caller's stream
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"{graph}: TensorRT execution failed")
            caller.wait_stream(stream)  # outputs visible to the caller's next torch ops

        return run

    def capture(self, runner: Callable[[], None]) -> Runner:
        """Record `runner` (e.g. a frame's sequence of bound runners) as one CUDA graph; replay it."""
        runner()  # TensorRT needs one launch before capture (lazy initialisation)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            runner()
        return graph.replay

    def synchronize(self) -> None:
        self.stream.synchronize()
        torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        t = self.manifest.tensorrt
        return {
            **super().describe(),
            "tensorrt": str(self.trt.__version__),
            "gpu": self.gpu["gpu"],
            "precision": t.get("precision"),
            "mode": t.get("mode"),
        }
