"""Which layout a one-take mask folder is read as: binary masks keep the one mask rule, index PNGs give one
object per value, subfolders one object each."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lmeec.runtime.takes import ObjectMasks

NAMES = ["0", "1"]


def _save(folder, values: np.ndarray, palette: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        image = Image.fromarray(values.astype(np.uint8))
        if palette:
            image = image.convert("P")
            image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        image.save(folder / f"{int(name):04d}.png")


def _values() -> np.ndarray:
    v = np.zeros((6, 8), np.uint8)
    v[1:3, 1:3], v[4:, 5:] = 1, 2
    return v


def test_palette_binary_masks_are_one_object_and_palette_indices_are_objects(tmp_path):
    v = _values()
    _save(tmp_path / "pal01", np.minimum(v, 1), palette=True)
    one = ObjectMasks(tmp_path / "pal01", NAMES)
    assert one.single and one.ids == ["0"]
    (mask,) = one.read("1", v.shape)  # frame "1" matches 0001.png
    np.testing.assert_array_equal(mask, v > 0)
    _save(tmp_path / "pal", v, palette=True)
    index = ObjectMasks(tmp_path / "pal", NAMES)
    assert index.layout == "index" and index.ids == ["1", "2"]
    for mask, value in zip(index.read("0", v.shape), (1, 2), strict=True):
        np.testing.assert_array_equal(mask, v == value)


def test_grey_levels_follow_the_mask_rule_unless_they_are_several_ids(tmp_path):
    v = _values()
    _save(tmp_path / "ids", v * 3)  # grey 0/3/6: two objects
    assert ObjectMasks(tmp_path / "ids", NAMES).ids == ["3", "6"]
    _save(tmp_path / "grey", np.minimum(v, 1) * 128)  # one grey level: a mask the rule refuses
    masks = ObjectMasks(tmp_path / "grey", NAMES)
    assert masks.single
    with pytest.raises(ValueError, match=r"0000\.png must be binary"):
        masks.read("0", v.shape)
    with_threshold = ObjectMasks(tmp_path / "grey", NAMES, threshold=100)
    np.testing.assert_array_equal(with_threshold.read("0", v.shape)[0], v > 0)
    _save(tmp_path / "soft", np.where(v == 2, 255, v * 100))  # 0/100/255 (antialiased edges): not ids
    assert ObjectMasks(tmp_path / "soft", NAMES).single


def test_one_subfolder_per_object(tmp_path):
    v = _values()
    _save(tmp_path / "objs" / "cup", (v == 1) * 255)
    _save(tmp_path / "objs" / "box", (v == 2) * 255)
    masks = ObjectMasks(tmp_path / "objs", NAMES)
    assert masks.layout == "folders" and masks.ids == ["box", "cup"]
    box, cup = masks.read("1", v.shape)
    np.testing.assert_array_equal(box, v == 2)
    np.testing.assert_array_equal(cup, v == 1)
    assert masks.read("7", v.shape) == [None, None]
