"""Frame sources for `lmeec run`: folders of images or video files, read lazily one frame at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


class FrameSource:
    """A sequence of RGB frames from an image folder (natural name order) or a video file."""

    def __init__(self, path: Path | str, what: str) -> None:
        self.path, self.what = Path(path), what
        if self.path.is_dir():
            self.files = sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
            )
            if not self.files:
                raise ValueError(f"{what} folder {self.path} holds no {'/'.join(IMAGE_SUFFIXES)} images")
            self.names = [p.stem for p in self.files]
        elif self.path.is_file() and self.path.suffix.lower() in VIDEO_SUFFIXES:
            self.files = []
            capture = _open_video(self.path)
            count = int(capture.get(7))  # CAP_PROP_FRAME_COUNT
            capture.release()
            if count <= 0:
                raise ValueError(f"{what} video {self.path} reports no frames")
            self.names = [f"{i:06d}" for i in range(count)]
        else:
            raise FileNotFoundError(f"{what} {self.path} is neither an image folder nor a video file")

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files:
            for path in self.files:
                with Image.open(path) as image:
                    yield np.asarray(image.convert("RGB"))
            return
        capture = _open_video(self.path)
        try:
            for i in range(len(self.names)):
                ok, bgr = capture.read()
                if not ok:
                    raise ValueError(f"{self.what} video {self.path}: could not read frame {i}")
                yield np.ascontiguousarray(bgr[..., ::-1])
        finally:
            capture.release()


def _open_video(path: Path):
    try:
        import cv2
    except ImportError as exc:
        raise RuntimeError("reading video needs OpenCV: pip install 'lmeec[video]'") from exc
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {path}")
    return capture


def read_mask(folder: Path, name: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The source mask for frame `name` (any non-zero pixel is foreground); None if there is no file."""
    for suffix in (".png", ".PNG"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            with Image.open(path) as image:
                mask = np.asarray(image.convert("L")) > 0
            if mask.shape != shape:
                raise ValueError(
                    f"mask {path} is {mask.shape[0]}×{mask.shape[1]}, its frame is {shape[0]}×{shape[1]}"
                )
            return mask
    return None
