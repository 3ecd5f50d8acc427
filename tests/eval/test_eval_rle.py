"""LZString/RLE codecs on the public sample masks, validation of bad RLE, and the official 480 resize."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmeec.eval.rle import (
    decode_encoded_mask,
    decode_rle,
    encode_mask_lz,
    encode_rle,
    eval_shape,
    lz_decompress,
    resize_nearest,
    run_lengths,
    to_eval_resolution,
)

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "egoexo4d_relations_doc_sample.json"
EXPECTED_AREA = {
    ("aria01_214-1", 270): 0.0191,
    ("aria01_214-1", 210): 0.0150,
    ("cam04", 0): 0.0063,
    ("cam04", 150): 0.0062,
}


def test_public_sample_masks_decode():
    masks = json.loads(SAMPLE.read_text())["masks"]
    assert len(masks) == 4
    for m in masks:
        where = f"{m['camera']} frame {m['frame']}"
        counts = lz_decompress(m["encodedMask"], where)
        assert sum(run_lengths(counts, where)) == m["width"] * m["height"]
        mask = decode_encoded_mask(m["encodedMask"], m["height"], m["width"], where)
        assert mask.shape == (m["height"], m["width"])
        assert mask.mean() == pytest.approx(EXPECTED_AREA[(m["camera"], m["frame"])], abs=5e-5)
        for click in m["positive_clicks"]:
            assert mask[int(click["y"]), int(click["x"])]
        assert to_eval_resolution(mask).shape == (
            (480, 480) if m["camera"].startswith("aria") else (270, 480)
        )
        # round trip through our encoder gives back the same pixels
        again = decode_encoded_mask(encode_mask_lz(mask), m["height"], m["width"], where)
        assert np.array_equal(again, mask)


def test_bad_rle_is_rejected_with_location():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    rle = encode_rle(m)
    assert np.array_equal(decode_rle(rle, "x"), m)
    with pytest.raises(ValueError, match="take T frame 3: RLE runs cover 100 pixels but size 20x20"):
        decode_rle({"size": [20, 20], "counts": rle["counts"]}, "take T frame 3")
    with pytest.raises(ValueError, match="runs cover 100 pixels but size 5x5"):
        decode_rle({"size": [5, 5], "counts": rle["counts"]}, "w")
    with pytest.raises(ValueError, match="invalid character"):
        decode_rle({"size": [10, 10], "counts": "P1 37"}, "w")
    with pytest.raises(ValueError, match="ends inside a number"):
        run_lengths("P1h", "w")
    with pytest.raises(ValueError, match="size must be"):
        decode_rle({"size": [10], "counts": rle["counts"]}, "w")
    with pytest.raises(ValueError, match="not valid LZString"):
        lz_decompress("!!!not-lz!!!", "cam04 frame 0")


def test_eval_shape_and_nearest_resize():
    assert eval_shape(1408, 1408) == (480, 480)
    assert eval_shape(2160, 3840) == (270, 480)
    assert eval_shape(540, 960) == (270, 480)
    m = np.zeros((4, 4), bool)
    m[1, 2] = True
    up = resize_nearest(m, (8, 8))
    assert up.sum() == 4 and up[2:4, 4:6].all()


def test_nearest_resize_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    for src in [(1408, 1408), (2160, 3840), (352, 352), (540, 960), (37, 53)]:
        m = rng.random(src) > 0.5
        dst = eval_shape(*src)
        ref = cv2.resize(m.astype(np.uint8), (dst[1], dst[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
        assert np.array_equal(resize_nearest(m, dst), ref)


def test_atomic_writes_leave_no_temp_files_and_usual_permissions(tmp_path):
    import os

    import pytest

    from lmeec.files import atomic_dir, atomic_write_bytes

    path = atomic_write_bytes(tmp_path / "a.bin", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]  # nothing half-written is left
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done.txt").write_text("done")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~mask
