"""Readers for EgoExo4D relation annotations and the evaluation units (take, object, query, target).

Three inputs are read as they are: the raw `relations_{split}.json` (LZString-wrapped RLE), the official
processed ground-truth file (`correspondence-gt.json`: masks, subsample_idx and annotated_frames per take)
and the processed layout (`{root}/{take}/annotation.json` plus JPEG frames), which carries no
annotated_frames and so takes them from the raw file. Masks stay encoded until asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from lmeec.eval.rle import decode_encoded_mask, decode_rle, eval_shape, resize_nearest
from lmeec.files import read_json

Direction = Literal["ego-exo", "exo-ego"]
DIRECTIONS: tuple[Direction, ...] = ("ego-exo", "exo-ego")


def is_ego(camera: str) -> bool:
    """Aria (ego) cameras are named `aria...`; every other camera is exo."""
    return camera.startswith("aria")


def pair_key(query_cam: str, target_cam: str) -> str:
    """Submission key of a camera pair: `{query}_{target}` (ego first for ego-exo)."""
    return f"{query_cam}_{target_cam}"


def _frame_number(key: object, where: str) -> int:
    """A frame number from a JSON key or list item."""
    try:
        value = int(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: frame {key!r} is not an integer") from None
    if value < 0 or str(value) != str(key).strip():
        raise ValueError(f"{where}: frame {key!r} is not a non-negative integer")
    return value


def _mapping(value: object, where: str) -> dict:
    """`value` if it is a JSON object, else a ValueError naming where."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class MaskRecord:
    """One stored mask, still encoded: raw LZString (`lz=True`) or a COCO counts string."""

    height: int
    width: int
    data: str
    lz: bool
    where: str

    def decode(self) -> np.ndarray:
        """The mask at its native size, bool HxW."""
        if self.lz:
            return decode_encoded_mask(self.data, self.height, self.width, self.where)
        return decode_rle({"size": [self.height, self.width], "counts": self.data}, self.where)

    def decode_eval(self) -> np.ndarray:
        """The mask at evaluation resolution (long side 480, nearest neighbour), as the official evaluator."""
        return resize_nearest(self.decode(), eval_shape(self.height, self.width))


@dataclass
class CameraTrack:
    """One object's annotation in one camera: masks where visible, and all frames that were annotated."""

    masks: dict[int, MaskRecord]
    annotated_frames: list[int]

    def native_size(self) -> tuple[int, int] | None:
        """(height, width) of this camera's masks, or None when it holds none."""
        for record in self.masks.values():
            return record.height, record.width
        return None


@dataclass
class Take:
    """One take's annotations: object -> camera -> track."""

    uid: str
    name: str
    objects: dict[str, dict[str, CameraTrack]]

    def camera_size(self, camera: str) -> tuple[int, int] | None:
        """Native (height, width) of a camera, from any object's mask in it."""
        for tracks in self.objects.values():
            if camera in tracks and (size := tracks[camera].native_size()) is not None:
                return size
        return None


@dataclass
class UnitFrame:
    """One frame of an evaluation unit as a model consumes it (images RGB uint8 HxWx3)."""

    frame: int
    source_rgb: np.ndarray
    source_mask: np.ndarray | None  # native size; None where the query camera has no mask
    target_rgb: np.ndarray
    counted: bool  # scored by the benchmark
    gt_mask: np.ndarray | None  # evaluation resolution; None when not visible or not counted


@dataclass(frozen=True)
class EvaluationUnit:
    """(take, object, query camera, target camera) for one direction, with its counted frames."""

    take: str
    obj: str
    direction: Direction
    query_cam: str
    target_cam: str
    query: CameraTrack
    target: CameraTrack
    target_native: tuple[int, int] | None
    frames_root: Path | None = None

    @property
    def counted_frames(self) -> list[int]:
        """Frames with a query mask whose number is in the target's annotated frames."""
        annotated = set(self.target.annotated_frames)
        return sorted(f for f in self.query.masks if f in annotated)

    @property
    def required_frames(self) -> list[int]:
        """Frames with a query mask: a submission must predict each of them, scored or not."""
        return sorted(self.query.masks)

    @property
    def target_eval_shape(self) -> tuple[int, int]:
        """Shape predictions must have: from the target's native size, else the benchmark's rule (480x480
        Aria, 480 wide x 270 high exo) when the target camera holds no mask in this take."""
        if self.target_native is not None:
            return eval_shape(*self.target_native)
        return (480, 480) if is_ego(self.target_cam) else (270, 480)

    def gt_visible(self, frame: int) -> bool:
        """Whether the target camera holds a mask at `frame`."""
        return frame in self.target.masks

    def gt_mask(self, frame: int) -> np.ndarray | None:
        """Target ground truth at evaluation resolution, None when not visible."""
        record = self.target.masks.get(frame)
        return None if record is None else record.decode_eval()

    def query_mask(self, frame: int) -> np.ndarray | None:
        """Query mask at native size, None where the query camera has no mask."""
        record = self.query.masks.get(frame)
        return None if record is None else record.decode()

    def frame_path(self, camera: str, frame: int) -> Path:
        """JPEG path of a frame in the processed layout."""
        if self.frames_root is None:
            raise ValueError(f"take {self.take}: no frames folder given (processed layout root)")
        return self.frames_root / self.take / camera / f"{frame}.jpg"

    def load_rgb(self, camera: str, frame: int) -> np.ndarray:
        """One frame as RGB uint8 HxWx3."""
        path = self.frame_path(camera, frame)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing frame (take {self.take}, camera {camera}, frame {frame})"
            )
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or not an image: name the file
            raise ValueError(f"{path}: cannot read this frame ({exc})") from exc

    def frame_numbers(self, all_frames: bool = False) -> list[int]:
        """The frames `frames` yields: required ones, or with `all_frames` every frame annotated in either camera."""
        if not all_frames:
            return self.required_frames
        return sorted(
            set(self.query.annotated_frames) | set(self.query.masks) | set(self.target.annotated_frames)
        )

    def frames(self, all_frames: bool = False) -> Iterator[UnitFrame]:
        """Yield frames lazily (one pair of images in memory at a time), by default the required frames
        (those with a query mask, which a submission must predict).

        With `all_frames`, every frame annotated in either camera is yielded in order, `source_mask` None
        where the query has none — the sequence a tracker with memory walks through.
        """
        counted = set(self.counted_frames)
        for frame in self.frame_numbers(all_frames):
            is_counted = frame in counted
            yield UnitFrame(
                frame=frame,
                source_rgb=self.load_rgb(self.query_cam, frame),
                source_mask=self.query_mask(frame),
                target_rgb=self.load_rgb(self.target_cam, frame),
                counted=is_counted,
                gt_mask=self.gt_mask(frame) if is_counted else None,
            )


@dataclass
class Annotations:
    """A split's annotations: take uid -> Take, plus where frames live (processed layout), if known."""

    takes: dict[str, Take]
    source: str
    frames_root: Path | None = None
    subsample_idx: dict[str, list[int]] = field(default_factory=dict)

    def units(self, direction: Direction) -> Iterator[EvaluationUnit]:
        """Evaluation units of one direction: each object's single Aria camera paired with each exo camera.

        As the official evaluator, objects without an Aria camera are skipped; two Aria cameras are an error.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        for uid, take in self.takes.items():
            for obj, tracks in take.objects.items():
                egos = [cam for cam in tracks if is_ego(cam)]
                if not egos:
                    continue
                if len(egos) > 1:
                    raise ValueError(
                        f"{self.source}: take {uid} object {obj!r} has several Aria cameras {egos}"
                    )
                ego = egos[0]
                for exo in (cam for cam in tracks if not is_ego(cam)):
                    query, target = (ego, exo) if direction == "ego-exo" else (exo, ego)
                    yield EvaluationUnit(
                        take=uid,
                        obj=obj,
                        direction=direction,
                        query_cam=query,
                        target_cam=target,
                        query=tracks[query],
                        target=tracks[target],
                        target_native=take.camera_size(target),
                        frames_root=self.frames_root,
                    )

    def unit(self, take: str, obj: str, query_cam: str, target_cam: str) -> EvaluationUnit:
        """The unit for one take, object and camera pair (direction from the query camera)."""
        direction: Direction = "ego-exo" if is_ego(query_cam) else "exo-ego"
        if take not in self.takes:
            raise KeyError(f"take {take!r} not in {self.source}")
        for unit in self.units(direction):
            if (unit.take, unit.obj, unit.query_cam, unit.target_cam) == (take, obj, query_cam, target_cam):
                return unit
        raise KeyError(f"no unit take {take} object {obj!r} {query_cam}->{target_cam} in {self.source}")


def _raw_track(cam_entry: object, where: str) -> CameraTrack:
    """A CameraTrack from a raw `object_masks[obj][cam]` entry."""
    entry = _mapping(cam_entry, where)
    masks: dict[int, MaskRecord] = {}
    for key, ann in _mapping(entry.get("annotation", {}), f"{where} annotation").items():
        fwhere = f"{where} frame {key}"
        frame = _frame_number(key, fwhere)
        ann = _mapping(ann, fwhere)
        missing = [k for k in ("width", "height", "encodedMask") if k not in ann]
        if missing:
            raise ValueError(f"{fwhere}: mask lacks {', '.join(missing)}")
        width, height = ann["width"], ann["height"]
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ValueError(f"{fwhere}: width/height must be positive integers, got {width!r}x{height!r}")
        masks[frame] = MaskRecord(height, width, ann["encodedMask"], True, fwhere)
    return CameraTrack(masks, _annotated(entry.get("annotated_frames"), where))


def _annotated(value: object, where: str) -> list[int]:
    """Sorted annotated frame numbers from a JSON list."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: annotated_frames must be a list of frame numbers")
    return sorted({_frame_number(v, f"{where} annotated_frames") for v in value})


def read_relations(path: Path | str, frames_root: Path | str | None = None) -> Annotations:
    """Read a raw `relations_{split}.json`; `frames_root` is the processed layout holding its JPEG frames."""
    return _relations_from_doc(read_json(Path(path)), Path(path), frames_root)


def _relations_from_doc(doc: object, path: Path, frames_root: Path | str | None) -> Annotations:
    """Annotations from a parsed raw relations document."""
    doc = _mapping(doc, str(path))
    annotations = _mapping(doc.get("annotations"), f"{path}: 'annotations'")
    takes: dict[str, Take] = {}
    for uid, entry in annotations.items():
        twhere = f"{path}: take {uid}"
        entry = _mapping(entry, twhere)
        objects: dict[str, dict[str, CameraTrack]] = {}
        for obj, cams in _mapping(entry.get("object_masks"), f"{twhere} object_masks").items():
            objects[obj] = {
                cam: _raw_track(cam_entry, f"{twhere} object {obj!r} camera {cam}")
                for cam, cam_entry in _mapping(cams, f"{twhere} object {obj!r}").items()
            }
        takes[uid] = Take(uid, str(entry.get("take_name", uid)), objects)
    return Annotations(takes, str(path), Path(frames_root) if frames_root is not None else None)


def _processed_masks(masks: object, where: str) -> dict[str, dict[str, dict[int, MaskRecord]]]:
    """object -> camera -> frame -> MaskRecord from a processed `masks` entry (COCO counts strings)."""
    out: dict[str, dict[str, dict[int, MaskRecord]]] = {}
    for obj, cams in _mapping(masks, f"{where} masks").items():
        out[obj] = {}
        for cam, frames in _mapping(cams, f"{where} object {obj!r}").items():
            track: dict[int, MaskRecord] = {}
            for key, rle in _mapping(frames, f"{where} object {obj!r} camera {cam}").items():
                fwhere = f"{where} object {obj!r} camera {cam} frame {key}"
                rle = _mapping(rle, fwhere)
                size, counts = rle.get("size"), rle.get("counts")
                if not (isinstance(size, list) and len(size) == 2 and isinstance(counts, str)):
                    raise ValueError(f"{fwhere}: mask must be a COCO RLE with size [h, w] and counts string")
                track[_frame_number(key, fwhere)] = MaskRecord(
                    int(size[0]), int(size[1]), counts, False, fwhere
                )
            out[obj][cam] = track
    return out


def _with_annotated(
    masks: dict[str, dict[str, dict[int, MaskRecord]]], annotated: dict, where: str
) -> dict[str, dict[str, CameraTrack]]:
    """Join processed masks with annotated_frames (object -> camera -> list)."""
    objects: dict[str, dict[str, CameraTrack]] = {}
    for obj, cams in masks.items():
        objects[obj] = {}
        for cam, track in cams.items():
            try:
                frames = annotated[obj][cam]
            except (KeyError, TypeError):
                raise ValueError(f"{where}: no annotated_frames for object {obj!r} camera {cam}") from None
            objects[obj][cam] = CameraTrack(track, _annotated(frames, f"{where} object {obj!r} camera {cam}"))
    return objects


def read_processed_gt(path: Path | str, frames_root: Path | str | None = None) -> Annotations:
    """Read the official processed ground truth (`process_annotations.py` output)."""
    return _processed_gt_from_doc(read_json(Path(path)), Path(path), frames_root)


def _processed_gt_from_doc(doc: object, path: Path, frames_root: Path | str | None) -> Annotations:
    """Annotations from a parsed processed ground-truth document."""
    doc = _mapping(doc, str(path))
    takes: dict[str, Take] = {}
    subsample: dict[str, list[int]] = {}
    for uid, entry in _mapping(doc.get("annotations"), f"{path}: 'annotations'").items():
        twhere = f"{path}: take {uid}"
        entry = _mapping(entry, twhere)
        masks = _processed_masks(entry.get("masks"), twhere)
        takes[uid] = Take(uid, uid, _with_annotated(masks, entry.get("annotated_frames", {}), twhere))
        subsample[uid] = [int(v) for v in entry.get("subsample_idx", [])]
    return Annotations(takes, str(path), Path(frames_root) if frames_root is not None else None, subsample)


def read_processed(root: Path | str, relations: Path | str) -> Annotations:
    """Read the processed layout `{root}/{take}/annotation.json` for the takes of a raw relations file.

    The processed files hold masks and subsample_idx only; annotated frames come from the raw file.
    """
    root = Path(root)
    raw = read_relations(relations)
    takes: dict[str, Take] = {}
    subsample: dict[str, list[int]] = {}
    for uid, raw_take in raw.takes.items():
        path = root / uid / "annotation.json"
        doc = _mapping(read_json(path), str(path))
        masks = _processed_masks(doc.get("masks"), str(path))
        annotated = {
            obj: {cam: t.annotated_frames for cam, t in cams.items()}
            for obj, cams in raw_take.objects.items()
        }
        takes[uid] = Take(uid, raw_take.name, _with_annotated(masks, annotated, str(path)))
        subsample[uid] = [int(v) for v in doc.get("subsample_idx", [])]
    return Annotations(takes, str(root), root, subsample)


def load_annotations(
    path: Path | str, relations: Path | str | None = None, frames_root: Path | str | None = None
) -> Annotations:
    """Read whichever input `path` is: raw relations file, processed GT file or processed folder."""
    path = Path(path)
    if path.is_dir():
        if relations is None:
            raise ValueError(f"{path}: a processed folder needs the raw relations file for annotated frames")
        return read_processed(path, relations)
    doc = _mapping(read_json(path), str(path))
    annotations = _mapping(doc.get("annotations"), f"{path}: 'annotations'")
    first = next(iter(annotations.values()), {})
    if isinstance(first, dict) and "masks" in first and "object_masks" not in first:
        return _processed_gt_from_doc(doc, path, frames_root)
    return _relations_from_doc(doc, path, frames_root)
