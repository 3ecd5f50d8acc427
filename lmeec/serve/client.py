"""A headset's stream to the served model over `tritonclient` HTTP: one request per frame, in order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmeec.serve.triton import MODEL


@dataclass(frozen=True)
class ServedFrame:
    """One frame's answer: the target mask at the target frame's size, the object score, skipped flag."""

    mask: np.ndarray
    object_score: float
    skipped: bool


class HeadsetClient:
    """One session: `step` sends a frame (START on the first, END when `last`); one HTTP connection each."""

    def __init__(self, url: str, session: int) -> None:
        import tritonclient.http as http

        self.http, self.session, self.started = http, session, False
        self.client = http.InferenceServerClient(url)

    def _input(self, name: str, value: np.ndarray, dtype: str):
        x = self.http.InferInput(name, list(value.shape), dtype)
        x.set_data_from_numpy(value, binary_data=True)
        return x

    def step(
        self, source: np.ndarray, mask: np.ndarray, target: np.ndarray, last: bool = False
    ) -> ServedFrame:
        inputs = [
            self._input("SESSION_ID", np.array([self.session], np.uint64), "UINT64"),
            self._input("START", np.array([not self.started], np.uint8), "UINT8"),
            self._input("END", np.array([last], np.uint8), "UINT8"),
            self._input("SOURCE_FRAME", np.ascontiguousarray(source, np.uint8), "UINT8"),
            self._input("SOURCE_MASK", np.ascontiguousarray(mask, np.uint8), "UINT8"),
            self._input("TARGET_FRAME", np.ascontiguousarray(target, np.uint8), "UINT8"),
        ]
        outputs = [
            self.http.InferRequestedOutput(n, binary_data=True)
            for n in ("TARGET_MASK", "OBJECT_SCORE", "SKIPPED")
        ]
        result = self.client.infer(MODEL, inputs, outputs=outputs)
        self.started = not last
        return ServedFrame(
            result.as_numpy("TARGET_MASK").astype(bool),
            float(result.as_numpy("OBJECT_SCORE")[0]),
            bool(result.as_numpy("SKIPPED")[0]),
        )

    def close(self) -> None:
        self.client.close()
