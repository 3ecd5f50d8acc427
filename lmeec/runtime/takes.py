"""Frame sources for `lmeec run`: folders of images or video files, read lazily one frame at a time, and the
source masks of one or several objects."""

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
    path = _mask_file(folder, name)
    if path is None:
        return None
    with Image.open(path) as image:
        mask = np.asarray(image.convert("L")) > 0
    _check_shape(path, mask.shape, shape)
    return mask


class ObjectMasks:
    """Source masks of a take's objects, one of three layouts in one folder: binary PNGs (one object, any
    non-zero pixel), index or palette PNGs (each non-zero value is one object's id), or one subfolder of
    binary PNGs per object (the subfolder's name is the object's id). Files are named like the frames."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"source mask folder {self.folder} does not exist")
        subfolders = sorted(p for p in self.folder.iterdir() if p.is_dir())
        pngs = [p for p in self.folder.iterdir() if p.suffix.lower() == ".png"]
        self.values: list[int] = []  # index layout: the pixel value of each object
        if subfolders and not pngs:
            self.layout, self.ids = "folders", [p.name for p in subfolders]
            return
        found, palette = set(), False
        for path in pngs:
            with Image.open(path) as image:
                palette |= image.mode == "P"
                found |= set(np.unique(_index_array(image)).tolist())
        found.discard(0)
        if not palette and (found <= {1} or found <= {255}):
            self.layout, self.ids = "binary", ["0"]
        else:
            self.layout, self.values = "index", sorted(found)
            self.ids = [str(v) for v in self.values]

    @property
    def single(self) -> bool:
        """Binary masks of one object (the single-object output layout)."""
        return self.layout == "binary"

    def read(self, name: str, shape: tuple[int, int]) -> list[np.ndarray | None]:
        """Each object's mask for frame `name` (None where there is no file)."""
        if self.layout == "folders":
            return [read_mask(self.folder / obj, name, shape) for obj in self.ids]
        if self.layout == "binary":
            return [read_mask(self.folder, name, shape)]
        path = _mask_file(self.folder, name)
        if path is None:
            return [None] * len(self.ids)
        with Image.open(path) as image:
            index = _index_array(image)
        _check_shape(path, index.shape, shape)
        return [index == v for v in self.values]


def _index_array(image: Image.Image) -> np.ndarray:
    """Pixel values of an index PNG: palette indices as stored, or 8-bit grey levels."""
    return np.asarray(image if image.mode in ("P", "L") else image.convert("L"))


def _mask_file(folder: Path, name: str) -> Path | None:
    for suffix in (".png", ".PNG"):
        if (path := folder / f"{name}{suffix}").is_file():
            return path
    return None


def _check_shape(path: Path, got: tuple[int, ...], shape: tuple[int, int]) -> None:
    if tuple(got) != tuple(shape):
        raise ValueError(f"mask {path} is {got[0]}×{got[1]}, its frame is {shape[0]}×{shape[1]}")
