"""Live input: two OpenCV captures (camera index, video file or stream URL) paired frame by frame.

Pairing rule: each step grabs one frame from the source capture, then one from the target capture, back to
back, and only then decodes them (OpenCV's grab/retrieve split), so a pair is the next frame each view
delivered, taken as close together in time as the two drivers allow. Nothing is resampled or matched by
timestamp; a view that runs faster than the step rate is read at the step rate (its driver buffers or drops).
The take ends when both views end on the same step; when only one ends (a camera unplugged, a stream cut),
`StreamStopped` says which and after how many pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class StreamStopped(RuntimeError):
    """One view stopped delivering frames while the other still did."""


def is_live(spec: str) -> bool:
    """A camera index ("0") or a stream URL ("rtsp://…"), as opposed to a file or folder."""
    return spec.isdigit() or "://" in spec


class Capture:
    """One view: an OpenCV capture of a camera index, a video file or a stream URL."""

    def __init__(self, spec: str, what: str) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise RuntimeError("live input needs OpenCV: pip install 'lmeec[video]'") from exc
        self.spec, self.what = spec, what
        self._capture = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
        if not self._capture.isOpened():
            kind = "camera" if spec.isdigit() else "stream or video"
            raise OSError(f"cannot open the {what} {kind} {spec!r}")

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> np.ndarray:
        ok, bgr = self._capture.retrieve()
        if not ok:
            raise StreamStopped(f"the {self.what} {self.spec!r} delivered a frame that could not be decoded")
        return np.ascontiguousarray(bgr[..., ::-1])

    def close(self) -> None:
        self._capture.release()


def frame_pairs(source: str, target: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """RGB (source, target) pairs from two views by the pairing rule above, until they end.

    >>> for ego, exo in frame_pairs("0", "rtsp://exo-cam/stream"):
    ...     result = prompted.step(ego, exo)
    """
    views = (Capture(source, "source"), Capture(target, "target"))
    try:
        pairs = 0
        while True:
            ok = [view.grab() for view in views]
            if not any(ok):
                return
            if not all(ok):
                stopped = views[ok.index(False)]
                raise StreamStopped(f"the {stopped.what} {stopped.spec!r} stopped after {pairs} frame pairs")
            pairs += 1
            yield views[0].retrieve(), views[1].retrieve()
    finally:
        for view in views:
            view.close()
