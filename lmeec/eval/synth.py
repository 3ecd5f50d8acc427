"""Synthetic EgoExo4D-style takes: a head-worn ego camera and a static exo camera watching textured objects.

Ground truth comes from the renderer's z-buffer. Each take is written in the raw format (one
`relations_synth.json` for all takes, LZString RLE masks at native size, annotated frames every 30 frames)
and in the processed layout (`{take}/annotation.json`, `{take}/{cam}/{frame}.jpg`), plus `{take}/scene.json`
(cameras and shapes per frame) for the oracle baseline. Out-of-view intervals: the wearer looks away
(ego) and a panel slides between the exo camera and the table (exo); in the first take one object sits
behind a shelf for the exo camera, so that camera has annotated frames but no masks. With `unannotated`,
each camera also skips some frames per object, so cameras list different annotated frames.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lmeec.eval.annotations import Annotations, read_relations
from lmeec.eval.render import Camera, Render, Shape, look_at, render
from lmeec.eval.rle import encode_mask_lz, encode_rle, eval_shape
from lmeec.files import atomic_write_json, read_json

EGO_CAM = "aria01_214-1"
EXO_CAM = "cam01"
RELATIONS_FILE = "relations_synth.json"
FRAME_STEP = 30  # annotation at 1 fps of 30 fps video
OBJECTS = ("red ball_0", "blue box_0", "green bottle_0")
TABLE_TOP = 0.75


@dataclass(frozen=True)
class SynthConfig:
    """Size and content of a synthetic benchmark; native sizes are the real ones times `scale`."""

    takes: int = 3
    frames: int = 16  # annotated frames per take: 0, 30, ..., 30 * (frames - 1)
    scale: float = 0.25  # Aria 1408x1408 -> 352x352, exo 3840x2160 -> 960x540
    seed: int = 0
    video: bool = False  # also write {take}/{cam}.mp4 (needs opencv)
    unannotated: float = 0.0  # fraction of frames each camera leaves unannotated, per object (as real splits)
    jpeg_quality: int = 90

    @property
    def ego_size(self) -> tuple[int, int]:
        """Native (height, width) of the ego camera: square."""
        side = round(1408 * self.scale)
        return side, side

    @property
    def exo_size(self) -> tuple[int, int]:
        """Native (height, width) of the exo camera: 16:9."""
        k = round(240 * self.scale)
        return 9 * k, 16 * k

    def validate(self) -> None:
        """Reject sizes whose evaluation shape is not the real one (480x480, 480x270) and empty takes."""
        if self.takes < 1 or self.frames < 4:
            raise ValueError(
                f"need at least 1 take and 4 frames per take, got {self.takes} and {self.frames}"
            )
        if not 0.0 <= self.unannotated <= 0.5:
            raise ValueError(f"unannotated must be in [0, 0.5], got {self.unannotated}")
        if not 0.02 <= self.scale <= 1.0:
            raise ValueError(f"scale must be in [0.02, 1], got {self.scale}")
        if eval_shape(*self.ego_size) != (480, 480) or eval_shape(*self.exo_size) != (270, 480):
            raise ValueError(
                f"scale {self.scale} gives sizes {self.ego_size}/{self.exo_size} off the 480 grid"
            )


@dataclass(frozen=True)
class TakeScene:
    """Everything needed to render one take: per-frame cameras and shapes (objects labelled 0..n-1)."""

    uid: str
    name: str
    objects: tuple[str, ...]
    frames: tuple[int, ...]
    cameras: dict[int, dict[str, Camera]]
    shapes: dict[int, list[Shape]]

    def render(self, frame: int, camera: str, size: tuple[int, int] | None = None) -> Render:
        """Render one camera at one frame, optionally at another resolution (height, width)."""
        cam = self.cameras[frame][camera]
        return render(cam if size is None else cam.resized(*size), self.shapes[frame])

    def to_json(self) -> dict:
        """JSON-ready description (scene.json)."""
        return {
            "uid": self.uid,
            "name": self.name,
            "objects": list(self.objects),
            "frames": {
                str(f): {
                    "cameras": {n: c.to_json() for n, c in self.cameras[f].items()},
                    "shapes": [s.to_json() for s in self.shapes[f]],
                }
                for f in self.frames
            },
        }

    @classmethod
    def from_json(cls, d: dict) -> TakeScene:
        """Inverse of to_json."""
        frames = sorted(int(f) for f in d["frames"])
        return cls(
            d["uid"],
            d["name"],
            tuple(d["objects"]),
            tuple(frames),
            {f: {n: Camera.from_json(c) for n, c in d["frames"][str(f)]["cameras"].items()} for f in frames},
            {f: [Shape.from_json(s) for s in d["frames"][str(f)]["shapes"]] for f in frames},
        )


def _interval(rng: np.random.Generator, n: int, low: float, high: float) -> set[int]:
    """A random contiguous run of frame indices covering a fraction in [low, high] of n."""
    length = max(1, round(rng.uniform(low, high) * n))
    start = int(rng.integers(1, n - length + 1)) if n - length >= 1 else 0
    return set(range(start, start + length))


def make_scene(config: SynthConfig, index: int) -> TakeScene:
    """Build take `index`: table, three moving objects, a sliding panel, head motion and (take 0) a shelf."""
    rng = np.random.default_rng([config.seed, index])
    uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lmeec-synth/{config.seed}/{index}"))
    frames = tuple(FRAME_STEP * i for i in range(config.frames))
    away = _interval(rng, config.frames, 0.2, 0.3)  # ego wearer looks away from the table
    blocked = _interval(rng, config.frames, 0.15, 0.25)  # panel between exo camera and table
    hidden = index == 0  # object 2 stays behind a shelf for the exo camera
    phase = rng.uniform(0, 2 * math.pi, size=8)
    exo_eye = np.array([2.6 + rng.uniform(-0.3, 0.3), 2.4 + rng.uniform(-0.3, 0.3), 1.9])
    exo = look_at(EXO_CAM, config.exo_size[1], config.exo_size[0], 55.0, exo_eye, [0.0, 0.0, 0.8])
    table = Shape(
        "box", (0.0, 0.0, TABLE_TOP / 2), (0.6, 0.4, TABLE_TOP / 2), 0.0, (0.55, 0.38, 0.22), texture=3
    )
    to_exo = (exo_eye - [0.0, 0.0, 0.8]) / np.linalg.norm(exo_eye - [0.0, 0.0, 0.8])
    side = np.cross(to_exo, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    panel_yaw = math.atan2(to_exo[1], to_exo[0]) + math.pi / 2
    bottle_at = np.array([-0.35, -0.2, TABLE_TOP + 0.14])
    scenery_static = [table]
    if hidden:
        dir_exo = (exo_eye - bottle_at) / np.linalg.norm(exo_eye - bottle_at)
        shelf_at = bottle_at + 0.25 * dir_exo
        yaw = math.atan2(dir_exo[1], dir_exo[0]) + math.pi / 2
        scenery_static.append(
            Shape("box", tuple(shelf_at), (0.16, 0.03, 0.22), yaw, (0.4, 0.4, 0.45), texture=2)
        )
    cameras: dict[int, dict[str, Camera]] = {}
    shapes: dict[int, list[Shape]] = {}
    for i, frame in enumerate(frames):
        t = frame / 30.0
        head = np.array([0.2 * math.sin(2 * math.pi * t / 11 + phase[0]), -0.62, 1.25 + 0.03 * math.sin(t)])
        if i in away:
            gaze = head + [2.0 * math.sin(phase[1]), -2.0, -0.3]
        else:
            gaze = [0.3 * math.sin(2 * math.pi * t / 7 + phase[2]), 0.0, TABLE_TOP]
        ego = look_at(EGO_CAM, config.ego_size[1], config.ego_size[0], 100.0, head, gaze)
        cameras[frame] = {EGO_CAM: ego, EXO_CAM: exo}
        offset = 0.0 if i in blocked else 1.3 + 0.3 * math.sin(t + phase[3])
        panel_at = np.array([0.0, 0.0, 0.8]) + 1.3 * to_exo + offset * side
        panel = Shape("box", tuple(panel_at), (0.5, 0.02, 0.4), panel_yaw, (0.75, 0.72, 0.65), texture=4)
        ball = Shape(
            "ellipsoid",
            (
                0.35 * math.sin(2 * math.pi * t / 9 + phase[4]),
                0.2 * math.cos(2 * math.pi * t / 13 + phase[5]),
                TABLE_TOP + 0.11,
            ),
            (0.11, 0.11, 0.11),
            1.5 * t,
            (0.85, 0.15, 0.12),
            label=0,
        )
        box = Shape(
            "box",
            (
                0.3 + 0.15 * math.sin(2 * math.pi * t / 10 + phase[6]),
                -0.1 + 0.12 * math.cos(2 * math.pi * t / 8),
                TABLE_TOP + 0.07,
            ),
            (0.12, 0.09, 0.07),
            0.4 * t + phase[7],
            (0.15, 0.3, 0.85),
            label=1,
        )
        bottle_pos = bottle_at if hidden else bottle_at + [0.1 * math.sin(2 * math.pi * t / 12), 0.3, 0.0]
        bottle = Shape("ellipsoid", tuple(bottle_pos), (0.06, 0.06, 0.14), 0.3 * t, (0.2, 0.7, 0.25), label=2)
        shapes[frame] = [*scenery_static, panel, ball, box, bottle]
    return TakeScene(uid, f"synth_scene_{index:03d}", OBJECTS, frames, cameras, shapes)


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    """Write an RGB frame as JPEG (temp file then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(rgb).save(tmp, format="JPEG", quality=quality)
    tmp.replace(path)


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    """Write frames as an MP4 at 1 fps (the annotation rate) with OpenCV."""
    try:
        import cv2
    except ImportError as exc:
        raise RuntimeError("writing videos needs opencv (pip install opencv-python-headless)") from exc
    h, w = frames[0].shape[:2]
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 1.0, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot open an mp4v writer")
    for rgb in frames:
        writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    writer.release()
    tmp.replace(path)


def annotated_frames(scene: TakeScene, config: SynthConfig, index: int) -> dict[str, dict[str, list[int]]]:
    """Frames each camera annotates, per object: all, less a random `unannotated` fraction drawn per
    (object, camera), so that cameras list different annotated frames as in the real splits."""
    rng = np.random.default_rng([config.seed, index, 1])  # apart from the scene's stream
    keep = len(scene.frames) - round(config.unannotated * len(scene.frames))
    return {
        obj: {
            cam: sorted(int(f) for f in rng.choice(scene.frames, keep, replace=False))
            for cam in (EGO_CAM, EXO_CAM)
        }
        for obj in scene.objects
    }


def write_take(
    root: Path, scene: TakeScene, config: SynthConfig, annotated: dict[str, dict[str, list[int]]]
) -> dict:
    """Render a take, write its processed layout and scene.json; return its raw relations entry.

    Frames of every camera are written; masks only where that camera annotated the frame (`annotated`)."""
    take_dir = root / scene.uid
    raw: dict[str, dict] = {obj: {} for obj in scene.objects}
    processed: dict[str, dict] = {obj: {} for obj in scene.objects}
    for cam in (EGO_CAM, EXO_CAM):
        video: list[np.ndarray] = []
        for obj in scene.objects:
            raw[obj][cam] = {"annotation": {}, "annotated_frames": annotated[obj][cam]}
            processed[obj][cam] = {}
        for frame in scene.frames:
            view = scene.render(frame, cam)
            _write_jpeg(take_dir / cam / f"{frame}.jpg", view.rgb, config.jpeg_quality)
            if config.video:
                video.append(view.rgb)
            h, w = view.label.shape
            for k, obj in enumerate(scene.objects):
                mask = view.label == k
                if frame not in annotated[obj][cam] or not mask.any():
                    continue  # not annotated, or not visible (annotated but without a mask)
                raw[obj][cam]["annotation"][str(frame)] = {
                    "width": w,
                    "height": h,
                    "encodedMask": encode_mask_lz(mask),
                }
                processed[obj][cam][str(frame)] = encode_rle(mask)
        if config.video:
            _write_video(take_dir / f"{cam}.mp4", video)
    atomic_write_json(take_dir / "annotation.json", {"masks": processed, "subsample_idx": list(scene.frames)})
    atomic_write_json(take_dir / "scene.json", scene.to_json())
    return {"scenario": "synthetic", "take_name": scene.name, "take_uid": scene.uid, "object_masks": raw}


def synthesize(out: Path | str, config: SynthConfig = SynthConfig()) -> Path:
    """Write a synthetic benchmark under `out`; returns the raw relations file (frames live beside it)."""
    config.validate()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    annotations = {}
    for index in range(config.takes):
        scene = make_scene(config, index)
        annotations[scene.uid] = write_take(root, scene, config, annotated_frames(scene, config, index))
    return atomic_write_json(root / RELATIONS_FILE, {"version": "synthetic", "annotations": annotations})


def load_synth(root: Path | str) -> Annotations:
    """Annotations of a synthetic benchmark, with frame access (`unit.frames()`) wired to its folder."""
    root = Path(root)
    return read_relations(root / RELATIONS_FILE, frames_root=root)


def load_scene(root: Path | str, take: str) -> TakeScene:
    """The scene description of one synthetic take (for re-rendering depth)."""
    return TakeScene.from_json(read_json(Path(root) / take / "scene.json"))
