"""The `ort` backend: ONNX Runtime sessions bound to torch buffers by data pointer (IOBinding, no copies).

On CUDA the sessions run on a stream of the backend's own (passed to the CUDA and TensorRT providers as
`user_compute_stream`; ONNX Runtime reads torch's default stream, handle 0, as "no stream"), ordered after
and before the caller's current torch stream, so CUDA events on the caller's stream time ONNX Runtime's
kernels. The TensorRT provider always has the CUDA provider behind it for the nodes TensorRT does not take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmeec.export.manifest import Manifest, check_manifest, read_manifest
from lmeec.runtime.backend import Backend, Runner, check_bindings

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def tensorrt_provider_options(
    device_id: int = 0,
    fp16: bool = True,
    cache_dir: Path | str | None = None,
    workspace_mb: int | None = None,
) -> dict:
    """Options for ONNX Runtime's TensorRT provider: FP16 and persistent engine/timing caches.

    Its FP16 lets TensorRT pick FP16 per layer without the lmeec islands; for the policy, feed the
    provider the graphs of `lmeec build onnx-fp16` (explicit casts) with fp16=False.
    """
    opts: dict = {"device_id": device_id, "trt_fp16_enable": bool(fp16)}
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        opts |= {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache_dir),
        }
    if workspace_mb:
        opts["trt_max_workspace_size"] = int(workspace_mb) << 20
    return opts


def cuda_provider_options(device_id: int = 0, conv_algo_search: str = "HEURISTIC") -> dict:
    """Options for ONNX Runtime's CUDA provider (cuDNN algorithm search: EXHAUSTIVE, HEURISTIC, DEFAULT)."""
    if conv_algo_search not in ("EXHAUSTIVE", "HEURISTIC", "DEFAULT"):
        raise ValueError(
            f"cudnn conv algo search must be EXHAUSTIVE, HEURISTIC or DEFAULT, not {conv_algo_search!r}"
        )
    return {"device_id": device_id, "cudnn_conv_algo_search": conv_algo_search}


def provider_list(
    names: list[str], device_id: int, stream: int | None, overrides: dict[str, dict] | None = None
) -> list[tuple[str, dict]]:
    """(provider, options) in priority order: CUDA behind TensorRT, CPU last, GPU providers on `stream`."""
    if "tensorrt" in names and "cuda" not in names:
        names = [*names[: names.index("tensorrt") + 1], "cuda", *names[names.index("tensorrt") + 1 :]]
    on_stream = {} if stream is None else {"user_compute_stream": str(stream)}
    defaults = {
        "cuda": cuda_provider_options(device_id) | on_stream,
        "tensorrt": tensorrt_provider_options(device_id, fp16=False) | on_stream,
    }
    providers = [(PROVIDERS[p], defaults.get(p, {}) | (overrides or {}).get(p, {})) for p in names]
    if "cpu" not in names:
        providers.append((PROVIDERS["cpu"], {}))
    return providers


def _session(ort, path: Path, options, providers):
    """An ONNX Runtime session; a file it cannot load (corrupt, truncated) becomes a one-line error naming it."""
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind types (Fail, InvalidProtobuf, …)
        text = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ValueError(
            f"{path}: ONNX Runtime cannot load this graph ({text[:200]}); re-export the folder"
        ) from exc


NUMPY = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


class OrtBackend(Backend):
    name = "ort"

    def __init__(
        self,
        engines: Path | str,
        *,
        preset: str | None = None,
        device: torch.device | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
        provider_options: dict[str, dict] | None = None,
        spinning: bool = False,
        model: str = "lmeec",
    ) -> None:
        """spinning: let idle intra-op threads spin-wait (ONNX Runtime's default). Off here: between graph
        runs the pipeline does host work that spinning threads would starve on small CPUs.
        model: which graphs the folder must hold, LM-EEC's or the source tracker's (manifest `model`)."""
        import onnxruntime as ort

        self.folder = Path(engines)
        self.manifest: Manifest = read_manifest(self.folder)
        check_manifest(self.folder, self.manifest, preset, model=model)
        self.preset = self.manifest.preset_config
        self.max_objects = self.manifest.max_objects
        self.weights = self.manifest.checkpoint
        self.device = device = device or torch.device("cpu")
        names = providers or (["cuda"] if device.type == "cuda" else ["cpu"])
        unknown = [p for p in names if p not in PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown ONNX Runtime provider(s) {unknown}; choose from {', '.join(PROVIDERS)}"
            )
        if device.type != "cuda" and any(p in ("cuda", "tensorrt") for p in names):
            raise ValueError("providers cuda/tensorrt bind CUDA buffers: pass a CUDA device (--device cuda)")
        unknown_opts = sorted(set(provider_options or {}) - set(names))
        if unknown_opts:
            raise ValueError(
                f"provider options for {unknown_opts}, which are not among the providers {names}"
            )
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.providers = provider_list(
            names, device.index or 0, self.stream and self.stream.cuda_stream, provider_options
        )
        available = ort.get_available_providers()
        missing = [p for p, _ in self.providers if p not in available]
        if missing:
            raise RuntimeError(
                f"ONNX Runtime here lacks {', '.join(missing)} (available: {', '.join(available)}); "
                "install onnxruntime-gpu (the [ort-gpu] extra) for cuda/tensorrt"
            )
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        self.spinning = spinning
        for scope in ("intra_op", "inter_op"):
            so.add_session_config_entry(f"session.{scope}.allow_spinning", "1" if spinning else "0")
        so.log_severity_level = 3  # shape-merge notes from Hiera's padded windows are expected
        self.sessions = {
            name: _session(ort, self.folder / g.file, so, self.providers)
            for name, g in self.manifest.graphs.items()
        }

    def bind(self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]) -> Runner:
        entry = self.manifest.graphs[graph]
        check_bindings(graph, entry.inputs, feeds, "inputs", self.device)
        check_bindings(graph, entry.outputs, fetches, "outputs", self.device)
        session = self.sessions[graph]
        binding = session.io_binding()
        device_type = "cuda" if self.device.type == "cuda" else "cpu"
        device_id = self.device.index or 0
        for spec in entry.inputs:
            t = feeds[spec.name]
            binding.bind_input(
                spec.name, device_type, device_id, NUMPY[spec.dtype], list(t.shape), t.data_ptr()
            )
        for spec in entry.outputs:
            t = fetches[spec.name]
            binding.bind_output(
                spec.name, device_type, device_id, NUMPY[spec.dtype], list(t.shape), t.data_ptr()
            )

        stream, device = self.stream, self.device

        def run() -> None:
            if stream is None:
                session.run_with_iobinding(binding)
                return
            caller = torch.cuda.current_stream(device)
            stream.wait_stream(caller)  # inputs written by torch ops on the caller's stream
            session.run_with_iobinding(binding)
            caller.wait_stream(stream)  # outputs visible to the caller's next torch ops

        return run

    def describe(self) -> dict:
        import onnxruntime as ort

        return {
            **super().describe(),
            "onnxruntime": ort.__version__,
            "providers": [p for p, _ in self.providers],
            "spinning": self.spinning,
        }
