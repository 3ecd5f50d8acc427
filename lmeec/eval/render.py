"""A small numpy ray caster: pinhole cameras, textured ellipsoids and boxes, a floor, and a z-buffer.

It exists so the synthetic benchmark has exact ground truth (object labels from the z-buffer) and so the
oracle baseline can re-render depth from the same scene description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LIGHT = np.array([0.35, -0.55, 1.0]) / np.linalg.norm([0.35, -0.55, 1.0])
BACKGROUND = -1  # label of pixels that show no object (scenery and sky included)
_EPS = 1e-6


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: x right, y down, z forward; `rotation` maps camera axes to world (columns)."""

    name: str
    width: int
    height: int
    fov_deg: float  # horizontal field of view
    position: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...]  # 3x3, camera-to-world

    @property
    def focal(self) -> float:
        """Focal length in pixels (square pixels)."""
        return (self.width / 2) / math.tan(math.radians(self.fov_deg) / 2)

    def resized(self, height: int, width: int) -> Camera:
        """The same camera rendering at another resolution (same field of view)."""
        return Camera(self.name, width, height, self.fov_deg, self.position, self.rotation)

    def rays(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """World ray directions for a pixel rectangle, scaled so their camera-z component is 1: (h, w, 3)."""
        f = self.focal
        xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - self.width / 2) / f
        ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - self.height / 2) / f
        cam = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        cam[..., 0] = xs[None, :]
        cam[..., 1] = ys[:, None]
        cam[..., 2] = 1.0
        return cam @ np.asarray(self.rotation, np.float32).T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel coordinates (u, v) and camera depth z of world points (..., 3)."""
        local = (points - np.asarray(self.position, np.float32)) @ np.asarray(self.rotation, np.float32)
        z = local[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = local[..., 0] / z * self.focal + self.width / 2
            v = local[..., 1] / z * self.focal + self.height / 2
        return u, v, z

    def to_json(self) -> dict:
        """JSON-ready description."""
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fov_deg": self.fov_deg,
            "position": list(self.position),
            "rotation": [list(r) for r in self.rotation],
        }

    @classmethod
    def from_json(cls, d: dict) -> Camera:
        """Inverse of to_json."""
        return cls(
            d["name"],
            int(d["width"]),
            int(d["height"]),
            float(d["fov_deg"]),
            tuple(d["position"]),
            tuple(tuple(r) for r in d["rotation"]),
        )


def look_at(name: str, width: int, height: int, fov_deg: float, eye, target) -> Camera:
    """A camera at `eye` looking at `target`, world z up, no roll."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward], axis=1)
    return Camera(name, width, height, fov_deg, tuple(eye.tolist()), tuple(tuple(r) for r in rot.tolist()))


def _matmul3(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(N, 3) @ (3, 3) as three broadcast products: far faster than numpy's matmul for tall thin arrays."""
    return v[:, 0:1] * m[0] + v[:, 1:2] * m[1] + v[:, 2:3] * m[2]


@dataclass(frozen=True)
class Shape:
    """An ellipsoid or box (yaw about world z) with a procedural texture; label >= 0 marks an object."""

    kind: str  # "ellipsoid" | "box"
    center: tuple[float, float, float]
    half: tuple[float, float, float]  # radii or half extents
    yaw: float
    color: tuple[float, float, float]
    label: int = BACKGROUND
    texture: float = 8.0  # checker frequency

    def to_json(self) -> dict:
        """JSON-ready description."""
        return {
            "kind": self.kind,
            "center": list(self.center),
            "half": list(self.half),
            "yaw": self.yaw,
            "color": list(self.color),
            "label": self.label,
            "texture": self.texture,
        }

    @classmethod
    def from_json(cls, d: dict) -> Shape:
        """Inverse of to_json."""
        return cls(
            d["kind"],
            tuple(d["center"]),
            tuple(d["half"]),
            d["yaw"],
            tuple(d["color"]),
            d["label"],
            d["texture"],
        )

    def _yaw_matrix(self) -> np.ndarray:
        """World-from-local rotation."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], np.float32)

    def corners(self) -> np.ndarray:
        """The 8 corners of the shape's bounding box in world coordinates (8, 3)."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float32)
        return (signs * np.asarray(self.half, np.float32)) @ self._yaw_matrix().T + np.asarray(self.center)

    def _local(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ray origin and directions in the shape's frame, and the world-from-local rotation."""
        rot = self._yaw_matrix()
        return (origin - np.asarray(self.center, np.float32)) @ rot, _matmul3(dirs, rot), rot

    def hit_distance(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Ray parameter t of the first hit per ray (N,), inf where the ray misses."""
        o, d, _ = self._local(origin, dirs)
        half = np.asarray(self.half, np.float32)
        if self.kind == "ellipsoid":
            os_, ds = o / half, d / half
            a = np.einsum("ij,ij->i", ds, ds)
            b = 2.0 * (ds @ os_)
            c = float(os_ @ os_) - 1.0
            disc = b * b - 4 * a * c
            with np.errstate(invalid="ignore"):
                t = (-b - np.sqrt(disc)) / (2 * a)
            return np.where((disc >= 0) & (t > _EPS), t, np.inf).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / np.where(np.abs(d) < _EPS, _EPS, d)
        t1, t2 = (-half - o) * inv, (half - o) * inv
        tmin = np.minimum(t1, t2).max(axis=1)
        tmax = np.maximum(t1, t2).min(axis=1)
        return np.where((tmax >= tmin) & (tmin > _EPS), tmin, np.inf).astype(np.float32)

    def surface(self, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World normals and a 0/1 checker value at the hit points `origin + t * dirs` (N,)."""
        o, d, rot = self._local(origin, dirs)
        half = np.asarray(self.half, np.float32)
        p = o + d * t[:, None]
        if self.kind == "ellipsoid":
            normal = p / (half * half)
            lon = np.arctan2(p[:, 1], p[:, 0])
            lat = np.arcsin(np.clip(p[:, 2] / half[2], -1, 1))
            tex = (np.floor(lon * self.texture / math.pi) + np.floor(lat * self.texture / math.pi)) % 2
        else:
            q = p / half
            axis = np.abs(q).argmax(axis=1)
            rows = np.arange(len(p))
            normal = np.zeros_like(p)
            normal[rows, axis] = np.sign(q[rows, axis])
            tex = np.floor(p * (self.texture / (2 * float(half.max())))).sum(axis=1) % 2
        normal = _matmul3(normal, rot.T)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        return normal, tex


@dataclass
class Render:
    """One rendered view: RGB uint8 HxWx3, camera depth (inf for sky) and object labels (-1 for none)."""

    rgb: np.ndarray
    depth: np.ndarray
    label: np.ndarray


def _screen_box(camera: Camera, shape: Shape) -> tuple[int, int, int, int]:
    """Pixel rectangle (y0, y1, x0, x1) that can contain the shape: its projected bounding box."""
    u, v, z = camera.project(shape.corners())
    if np.any(z <= 0.01):
        return 0, camera.height, 0, camera.width
    x0, x1 = int(max(0, math.floor(u.min()) - 1)), int(min(camera.width, math.ceil(u.max()) + 2))
    y0, y1 = int(max(0, math.floor(v.min()) - 1)), int(min(camera.height, math.ceil(v.max()) + 2))
    return y0, max(y0, y1), x0, max(x0, x1)


def render(camera: Camera, shapes: list[Shape]) -> Render:
    """Ray-cast the scene (floor z=0, sky, shapes) with Lambert shading and a z-buffer."""
    h, w = camera.height, camera.width
    origin = np.asarray(camera.position, np.float32)
    dirs = camera.rays(0, h, 0, w)
    dz = dirs[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dz < -_EPS, -origin[2] / dz, np.inf).astype(np.float32)
    floor = np.isfinite(t_floor)
    fx = origin[0] + dirs[..., 0] * np.where(floor, t_floor, 0)
    fy = origin[1] + dirs[..., 1] * np.where(floor, t_floor, 0)
    checker = (np.floor(fx * 2) + np.floor(fy * 2)) % 2
    up = dz / np.sqrt(np.einsum("ijk,ijk->ij", dirs, dirs))
    ground = 0.35 + 0.12 * checker
    rgb = np.empty((h, w, 3), np.float32)
    for c, (sky, slope, tint) in enumerate(((0.55, 0.2, 1.0), (0.62, 0.2, 0.95), (0.72, 0.25, 0.85))):
        rgb[..., c] = np.where(floor, ground * tint, sky + slope * up)
    depth = t_floor
    label = np.full((h, w), BACKGROUND, np.int16)
    for shape in shapes:
        y0, y1, x0, x1 = _screen_box(camera, shape)
        if y1 <= y0 or x1 <= x0:
            continue
        sub = dirs[y0:y1, x0:x1].reshape(-1, 3)
        t = shape.hit_distance(origin, sub)
        closer = t < depth[y0:y1, x0:x1].reshape(-1)
        if not closer.any():
            continue
        normal, tex = shape.surface(origin, sub[closer], t[closer])
        shade = 0.3 + 0.7 * np.clip(normal @ LIGHT.astype(np.float32), 0, 1)
        color = (0.6 + 0.4 * tex)[:, None] * shade[:, None] * np.asarray(shape.color, np.float32)
        win = closer.reshape(y1 - y0, x1 - x0)
        depth[y0:y1, x0:x1][win] = t[closer]
        label[y0:y1, x0:x1][win] = shape.label
        rgb[y0:y1, x0:x1][win] = color
    return Render((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), depth, label)
