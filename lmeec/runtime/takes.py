"""One take's input for `lmeec run`: two frame sources (image folders or video files) paired by frame
name, and the source masks matched to the frames by name.

Frame names: an image's file stem (`00042.jpg` -> `00042`), or a video frame's index (`000000`, `000001`, …).
Numeric names compare by value, so `7.jpg` in one view pairs with `0007.png` in the other.
A mask belongs to a frame when its stem equals the frame's name or, for numeric names, the same number
(`7.png`, `0007.png` and `000007.png` all match frame 7). Masks may be PNG, JPEG or BMP, grey, RGB,
palette or with the object in the alpha channel; values follow `binary_mask` (0/1, 0/255 or a threshold).

Several objects: index PNGs (palette indices, or grey levels with two or more object ids other than 255;
each non-zero value is one object), or one subfolder of masks per object (its name is the object's id).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lmeec.model.preprocess import binary_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def _frame_key(name: str) -> str:
    """Numeric names compare by value (`0007` is frame 7); others by the exact stem."""
    return str(int(name)) if name.isdigit() else name


def read_image(path: Path) -> Image.Image:
    """Open and fully decode an image, naming the file when it is truncated or not an image."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read this image ({exc})") from exc


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
            keys = [_frame_key(n) for n in self.names]
            if len(set(keys)) != len(keys):
                dup = next(n for n, k in zip(self.names, keys, strict=True) if keys.count(k) > 1)
                raise ValueError(f"{what} folder {self.path} holds two images for frame {dup!r}")
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

    def frames(self, keep: set[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """(name, RGB frame) in order, only the frames whose name keys (`_frame_key`) are in `keep`."""
        if self.files:
            for name, path in zip(self.names, self.files, strict=True):
                if keep is None or _frame_key(name) in keep:
                    yield name, np.asarray(read_image(path).convert("RGB"))
            return
        capture = _open_video(self.path)
        try:
            for name in self.names:
                ok, bgr = capture.read()
                if not ok:
                    raise ValueError(f"{self.what} video {self.path}: could not read frame {name}")
                if keep is None or _frame_key(name) in keep:
                    yield name, np.ascontiguousarray(bgr[..., ::-1])
        finally:
            capture.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, frame in self.frames():
            yield frame


def _open_video(path: Path):
    try:
        import cv2
    except ImportError as exc:
        raise RuntimeError("reading video needs OpenCV: pip install 'lmeec[video]'") from exc
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {path}")
    return capture


@dataclass
class TakeInput:
    """The frames both views hold (in source order), and each frame's source-mask file where there is one."""

    source: FrameSource
    target: FrameSource
    names: list[str]
    masks: ObjectMasks

    def pairs(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(name, source frame, target frame) for every paired frame name."""
        keep = {_frame_key(n) for n in self.names}
        for (a, src), (b, tgt) in zip(self.source.frames(keep), self.target.frames(keep), strict=True):
            if _frame_key(a) != _frame_key(b):
                raise ValueError(
                    f"frame order differs between the views ({a!r} in {self.source.path}, {b!r} in "
                    f"{self.target.path}): name the frames so that they sort the same way"
                )
            yield a, src, tgt


def open_take(
    source: Path | str,
    masks: Path | str,
    target: Path | str,
    skip_unpaired: bool = False,
    threshold: float | None = None,
) -> TakeInput:
    """Pair the views by frame name and match the masks; refuses frames in one view only (unless
    `skip_unpaired`, then warns) and a mask folder matching no frame, warns when some frames lack a mask."""
    src, tgt = FrameSource(source, "source"), FrameSource(target, "target")
    masks = Path(masks)
    if not masks.is_dir():
        raise FileNotFoundError(f"source mask folder {masks} does not exist")
    target_keys = {_frame_key(n): n for n in tgt.names}
    source_keys = {_frame_key(n) for n in src.names}
    only_source = [n for n in src.names if _frame_key(n) not in target_keys]
    only_target = [n for n in tgt.names if _frame_key(n) not in source_keys]
    if only_source or only_target:
        parts = [
            f"{len(names)} only in the {view} ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})"
            for view, names in (("source", only_source), ("target", only_target))
            if names
        ]
        message = f"frames are paired by name and {'; '.join(parts)}"
        if not skip_unpaired:
            raise ValueError(f"{message}: pass --skip-unpaired to run the others")
        warnings.warn(f"{message}: skipped", stacklevel=2)
    names = [n for n in src.names if _frame_key(n) in target_keys]
    if not names:
        raise ValueError(f"no frame name appears in both {src.path} and {tgt.path}")
    objects = ObjectMasks(masks, names, threshold)
    found = {n for files in objects.files for n in files}
    if not found:
        example = names[0]
        raise ValueError(
            f"no mask in {masks} matched any of the {len(names)} frames (a frame {example!r} needs a mask "
            f"named {example}.png, .jpg or, for numbered frames, with or without leading zeros)"
        )
    if len(found) < len(names):
        warnings.warn(
            f"{len(found)} of {len(names)} frames have a source mask in {masks}; the others are skipped",
            stacklevel=2,
        )
    return TakeInput(src, tgt, names, objects)


class ObjectMasks:
    """The source masks of a take's objects, matched to its frames: binary masks (one object), index PNGs
    (each non-zero value one object) or one subfolder per object (binary masks; the subfolder names it)."""

    def __init__(self, folder: Path, names: list[str], threshold: float | None = None) -> None:
        self.folder, self.threshold = folder, threshold
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
        self.values: list[int] = []  # index layout: each object's pixel value
        if subfolders and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            self.layout, self.ids = "folders", [p.name for p in subfolders]
            self.files = [_mask_files(p, names) for p in subfolders]
            return
        self.files = [_mask_files(folder, names)]
        values = set() if threshold is not None else _index_values(self.files[0].values())
        if values:
            self.layout, self.values, self.ids = "index", sorted(values), [str(v) for v in sorted(values)]
        else:
            self.layout, self.ids = "binary", ["0"]

    @property
    def single(self) -> bool:
        """Binary masks of one object (the single-object output layout)."""
        return self.layout == "binary"

    def read(self, name: str, shape: tuple[int, int]) -> list[np.ndarray | None]:
        """Each object's mask for frame `name` (None where there is no file)."""
        if self.layout == "folders":
            return [
                read_mask(files[name], shape, self.threshold) if name in files else None
                for files in self.files
            ]
        path = self.files[0].get(name)
        if path is None:
            return [None] * len(self.ids)
        if self.layout == "binary":
            return [read_mask(path, shape, self.threshold)]
        index = np.asarray(read_image(path))
        _check_shape(path, index.shape, shape)
        return [index == v for v in self.values]


def _index_values(paths) -> set[int]:
    """The object ids of index PNGs: non-zero palette indices (unless only 1), or grey levels when there are
    two or more and none is 255 (binary and antialiased masks keep the binary rule); empty: not index PNGs."""
    palette, found = False, set()
    for path in paths:
        if path.suffix.lower() != ".png":
            return set()
        image = read_image(path)
        if image.mode not in ("P", "L"):
            return set()
        palette |= image.mode == "P"
        found |= set(np.unique(np.asarray(image)).tolist())
    found.discard(0)
    if palette:
        return found if not found <= {1} else set()
    return found if len(found) >= 2 and 255 not in found else set()


def _mask_files(folder: Path, names: list[str]) -> dict[str, Path]:
    """Frame name -> its mask file, refusing two files for one frame."""
    by_key: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        key = _frame_key(path.stem)
        if key in by_key:
            raise ValueError(
                f"two masks for frame {path.stem!r} in {folder}: {by_key[key].name} and {path.name}"
            )
        by_key[key] = path
    return {n: by_key[_frame_key(n)] for n in names if _frame_key(n) in by_key}


def read_mask(path: Path, shape: tuple[int, int], threshold: float | None = None) -> np.ndarray:
    """A source mask file as bool H×W: palette indices, the alpha channel where it holds the object, or the
    grey/RGB values (brightest channel), under the one mask rule (`binary_mask`)."""
    image = read_image(path)
    if image.mode == "P":
        values = np.asarray(image)
    elif "A" in image.getbands() and np.asarray(image.getchannel("A")).min() < 255:
        values = np.asarray(image.getchannel("A"))
    elif image.mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
        values = np.asarray(image.convert("RGB")).max(axis=2)
    elif image.mode == "1":
        values = np.asarray(image).astype(bool)
    else:
        values = np.asarray(image.convert("L") if image.mode == "LA" else image)
    mask = binary_mask(values, f"mask {path}", threshold)
    _check_shape(path, mask.shape, shape)
    return mask


def _check_shape(path: Path, got: tuple[int, ...], shape: tuple[int, int]) -> None:
    if tuple(got) != tuple(shape):
        raise ValueError(f"mask {path} is {got[0]}×{got[1]}, its frame is {shape[0]}×{shape[1]}")
