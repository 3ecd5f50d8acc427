"""A deterministic ego/exo take for the scripts here: a red square moving over noise in both views."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def moving_square(
    n: int, seed: int = 0, ego: int = 480, empty: tuple[int, ...] = ()
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(source RGB ego×ego, source mask, target RGB 16:9) per frame; frames in `empty` get an empty mask."""
    rng = np.random.default_rng(seed)
    k = ego / 480
    for t in range(n):
        src = rng.integers(0, 90, (ego, ego, 3), dtype=np.uint8)
        tgt = rng.integers(0, 90, (ego * 9 // 16, ego, 3), dtype=np.uint8)
        y, x, side = int(k * (100 + (5 * t) % 200)), int(k * (80 + (7 * t) % 250)), int(k * 120)
        src[y : y + side, x : x + side] = (230, 40, 40)
        ty, tx, tside = int(k * 100), int(k * (150 + (3 * t) % 200)), int(k * 40)
        tgt[ty : ty + tside, tx : tx + tside] = (230, 40, 40)
        mask = np.zeros((ego, ego), bool)
        if t not in empty:
            mask[y : y + side, x : x + side] = True
        yield src, mask, tgt
