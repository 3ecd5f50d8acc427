"""`--overlay`: side-by-side pictures of a run — source frame with its mask, target frame with the prediction.

An MP4 (path ending in .mp4) or a folder of PNGs, written atomically. One tint per object (the same on both
views); frame index, object scores and step latency are burned in, and "RANDOM WEIGHTS" when the masks come
from untrained models.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HEIGHT = 360  # each panel is scaled to this height, aspect kept
# one tint per object, in object order (RGB): amber first, then colours far from it and from each other
PALETTE = np.array(
    [
        [255, 200, 0],
        [0, 170, 255],
        [255, 60, 200],
        [60, 220, 60],
        [255, 100, 40],
        [150, 90, 255],
        [0, 230, 200],
        [230, 230, 230],
    ],
    np.float32,
)
ALPHA = 0.5


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise RuntimeError("--overlay needs OpenCV: pip install 'lmeec[video]'") from exc
    return cv2


class Overlay:
    """Collects one picture per frame pair and writes them as an MP4 or PNGs on `close()`."""

    def __init__(self, path: str | Path, random_weights: bool, fps: float = 10.0) -> None:
        self.path, self.random_weights, self.fps = Path(path), random_weights, fps
        self.video = self.path.suffix.lower() == ".mp4"
        if self.path.exists():
            raise FileExistsError(f"overlay output {self.path} already exists")
        # the video's temp name keeps .mp4: OpenCV picks the container from it
        tmp_name = f".{self.path.stem}.tmp.mp4" if self.video else f".{self.path.name}.tmp"
        self.tmp = self.path.with_name(tmp_name)
        self.count, self._writer, self._size = 0, None, None
        self._cv2 = _cv2()
        if not self.video:
            self.tmp.mkdir(parents=True)

    def add(
        self,
        index: int,
        source: np.ndarray,
        source_masks: Sequence[np.ndarray | None],
        target: np.ndarray,
        target_masks: Sequence[np.ndarray | None],
        scores: Sequence[float | None],
        latency_ms: float,
    ) -> None:
        """One frame pair; masks and scores per object, in object order (None: no mask / skipped)."""
        cv2 = self._cv2
        left = _panel(cv2, source, source_masks)
        right = _panel(cv2, target, target_masks)
        picture = np.concatenate([left, right], axis=1)
        if self._size is None:
            self._size = (picture.shape[1] // 2 * 2, HEIGHT)  # even width for the video codec
        picture = np.ascontiguousarray(picture[:, : self._size[0]])
        cv2.line(picture, (left.shape[1], 0), (left.shape[1], HEIGHT - 1), (255, 255, 255), 2)
        _label(cv2, picture, f"frame {index}   {_scores(scores)}   {latency_ms:.0f} ms", (8, 24))
        _label(cv2, picture, "source", (8, HEIGHT - 10))
        _label(cv2, picture, "target", (left.shape[1] + 8, HEIGHT - 10))
        if self.random_weights:
            _label(cv2, picture, "RANDOM WEIGHTS", (picture.shape[1] - 230, 24), colour=(255, 60, 60))
        bgr = np.ascontiguousarray(picture[..., ::-1])
        if self.video:
            if self._writer is None:
                self._writer = cv2.VideoWriter(
                    str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size
                )
                if not self._writer.isOpened():
                    raise RuntimeError(f"{self.path}: OpenCV cannot open an mp4v writer")
            if (bgr.shape[1], bgr.shape[0]) != self._size:  # views changed size mid-take: keep one frame size
                bgr = cv2.resize(bgr, self._size)
            self._writer.write(bgr)
        else:
            cv2.imwrite(str(self.tmp / f"{index:06d}.png"), bgr)
        self.count += 1

    def __enter__(self) -> Overlay:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        """A run that fails leaves no pictures behind (a finished one is moved into place by `close`)."""
        if kind is not None:
            self.discard()

    def close(self) -> Path | None:
        """Finish and move into place; None (and nothing written) when no frame was added."""
        if self._writer is not None:
            self._writer.release()
        if self.count == 0:
            self.discard()
            return None
        self.tmp.replace(self.path)
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp)
        else:
            self.tmp.unlink(missing_ok=True)


def _scores(scores: Sequence[float | None]) -> str:
    """The burned-in score text: one object's score, or each object's (a dash where it was skipped)."""
    if len(scores) == 1:
        return "no source mask" if scores[0] is None else f"score {scores[0]:+.2f}"
    return "scores " + " ".join("-" if s is None else f"{s:+.1f}" for s in scores)


def _panel(cv2, rgb: np.ndarray, masks: Sequence[np.ndarray | None]) -> np.ndarray:
    """The frame at HEIGHT with each object's mask tinted and outlined in its palette colour."""
    h, w = rgb.shape[:2]
    size = (max(1, round(w * HEIGHT / h)), HEIGHT)
    out = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    outlines = []
    for k, mask in enumerate(masks):
        if mask is None or not mask.any():
            continue
        colour = PALETTE[k % len(PALETTE)]
        m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        out[m] = (1 - ALPHA) * out[m] + ALPHA * colour
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outlines.append((contours, tuple(int(c) for c in colour)))
    out = out.astype(np.uint8)
    for contours, colour in outlines:  # outlines last, so a tint never covers another object's edge
        cv2.drawContours(out, contours, -1, colour, 2)
    return out


def _label(cv2, image: np.ndarray, text: str, org: tuple[int, int], colour=(255, 255, 255)) -> None:
    """Text on a dark box, readable on any frame (image is RGB)."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    cv2.rectangle(image, (x - 4, y - th - 6), (x + tw + 4, y + base + 2), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), font, scale, colour, thick, cv2.LINE_AA)
