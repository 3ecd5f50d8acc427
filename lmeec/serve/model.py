"""The Triton Python-backend model: (session id, start, end, source frame, source mask, target frame) ->
(target mask 0/1, object score, skipped), one `SessionTable` per model instance.

Runs inside Triton's Python stub (`triton_python_backend_utils` exists only there); the repository's
`model.py` imports this class. Its settings come from the model configuration's parameters.
"""

from __future__ import annotations

import json

import numpy as np

INPUTS = ("SESSION_ID", "START", "END", "SOURCE_FRAME", "SOURCE_MASK", "TARGET_FRAME")


def _from_triton(tensor: object) -> np.ndarray:
    """An input tensor as a numpy array, through DLPack (the stub's numpy view assumes numpy 1's layout)."""
    import torch

    return torch.from_dlpack(tensor.to_dlpack()).numpy().copy()


def _to_triton(pb: object, name: str, value: np.ndarray) -> object:
    """An output tensor from a numpy array, through DLPack."""
    import torch

    return pb.Tensor.from_dlpack(name, torch.from_numpy(np.ascontiguousarray(value)))


class TritonPythonModel:
    """Triton's Python-backend contract: `initialize`, `execute` (a list of requests), `finalize`."""

    def initialize(self, args: dict) -> None:
        from lmeec.runtime.backend import open_backend
        from lmeec.serve.sessions import SessionTable

        params = {k: v["string_value"] for k, v in json.loads(args["model_config"])["parameters"].items()}
        threads = int(params["threads"]) if params.get("threads") else None
        backend = open_backend(
            params["backend"], engines=params["engines"], device=params["device"], threads=threads
        )
        self.table = SessionTable(
            backend, int(params["max_sessions"]), timeout_s=float(params["session_timeout_s"])
        )

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb

        responses = []
        for request in requests:
            try:
                x = {name: _from_triton(pb.get_input_tensor_by_name(request, name)) for name in INPUTS}
                target = x["TARGET_FRAME"]
                result = self.table.step(
                    int(x["SESSION_ID"].reshape(-1)[0]),
                    bool(x["START"].reshape(-1)[0]),
                    bool(x["END"].reshape(-1)[0]),
                    x["SOURCE_FRAME"],
                    x["SOURCE_MASK"].astype(bool),
                    target,
                )
                mask = np.zeros(target.shape[:2], bool) if result.skipped else result.mask
                score = 0.0 if result.skipped else result.object_score
                outputs = [
                    _to_triton(pb, "TARGET_MASK", mask.astype(np.uint8)),
                    _to_triton(pb, "OBJECT_SCORE", np.array([score], np.float32)),
                    _to_triton(pb, "SKIPPED", np.array([result.skipped], np.uint8)),
                ]
                responses.append(pb.InferenceResponse(output_tensors=outputs))
            except Exception as exc:  # one bad request fails alone, with its reason
                responses.append(pb.InferenceResponse(error=pb.TritonError(str(exc))))
        return responses

    def finalize(self) -> None:
        self.table = None
