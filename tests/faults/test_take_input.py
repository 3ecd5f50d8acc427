"""§2 one-take input: frames paired by name, masks matched by name (padded or not, PNG/JPG, alpha or palette),
one binary mask rule for the CLI and the Python API, and no silent "wrote 0 frame predictions"."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lmeec.model.preprocess import check_mask
from lmeec.runtime.takes import read_mask
from tests.conftest import synthetic_pair, write_video_take
from tests.faults.conftest import errors, run_take_args, snapshot, write_take


def _frames(out):
    return json.loads((out / "predictions.json").read_text())["frames"]


def test_frames_in_one_view_only_are_refused(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d", names=("0", "1", "2", "3"))
    (data / "src" / "1.png").unlink()
    (data / "tgt" / "2.png").unlink()
    before = snapshot(tmp_path)
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 2
    (line,) = errors(lines)
    assert (
        "1 only in the source (2)" in line
        and "1 only in the target (1)" in line
        and "--skip-unpaired" in line
    )
    assert snapshot(tmp_path) == before


def test_skip_unpaired_pairs_the_rest_by_name(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d", names=("0", "1", "2", "3"))
    (data / "src" / "1.png").unlink()
    (data / "tgt" / "2.png").unlink()
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"), "--skip-unpaired")
    assert rc == 0
    assert any("warning: frames are paired by name" in ln and "skipped" in ln for ln in lines)
    got = _frames(tmp_path / "o")
    assert list(got) == ["0", "3"]
    # The same frames given as a complete take give the same masks: frame 3 ran against target 3.
    ref = tmp_path / "ref"
    for sub in ("src", "tgt", "masks"):
        (ref / sub).mkdir(parents=True)
        for name in ("0", "3"):
            (ref / sub / f"{name}.png").write_bytes((data / sub / f"{name}.png").read_bytes())
    assert cli(*run_take_args(test_engines, ref, tmp_path / "o2"))[0] == 0
    assert _frames(tmp_path / "o2") == got


def test_numeric_names_pair_and_match_with_or_without_padding(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d", names=("0", "1", "2"))
    for sub, fmt in (("tgt", "{:04d}"), ("masks", "{:06d}")):
        for i in range(3):
            (data / sub / f"{i}.png").rename(data / sub / f"{fmt.format(i)}.png")
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 0, lines
    assert list(_frames(tmp_path / "o")) == ["0", "1", "2"]
    assert all(not f["skipped"] for f in _frames(tmp_path / "o").values())


def test_video_input_with_unpadded_masks(tmp_path, cli, test_engines):
    pytest.importorskip("cv2")
    write_video_take(tmp_path, lambda t: f"{t}")  # not 000000.png
    args = [
        "run",
        "--engines",
        test_engines,
        "--source",
        tmp_path / "src.avi",
        "--target",
        tmp_path / "tgt.avi",
    ]
    rc, lines = cli(*args, "--source-masks", tmp_path / "masks", "--out", tmp_path / "o", "--no-progress")
    assert rc == 0, lines
    frames = _frames(tmp_path / "o")
    assert list(frames) == ["000000", "000001", "000002"] and not any(f["skipped"] for f in frames.values())


def test_no_mask_matching_any_frame_is_an_error(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d")
    for p in (data / "masks").iterdir():
        p.rename(p.with_name(f"mask_{p.name}"))
    before = snapshot(tmp_path)
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 2
    (line,) = errors(lines)
    assert "no mask in" in line and "matched any of the 3 frames" in line
    assert snapshot(tmp_path) == before


def test_some_frames_without_a_mask_warn(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d", masks=("0", "2"))
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 0
    assert any("warning: 2 of 3 frames have a source mask" in ln for ln in lines)
    assert _frames(tmp_path / "o")["1"] == {"skipped": True}


def _mask_variants(tmp_path):
    """One mask saved as 0/255 grey, 0/1 palette, alpha channel and bool ('1') images."""
    _, mask, _ = synthetic_pair(np.random.default_rng(0), 0)
    grey = Image.fromarray(mask.astype(np.uint8) * 255)
    pal = Image.fromarray(mask.astype(np.uint8), mode="L").convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[..., 3] = mask * 255
    rgba[..., :3] = 200  # colour everywhere: only the alpha channel tells the object
    paths = {}
    for name, image in (
        ("grey", grey),
        ("pal", pal),
        ("alpha", Image.fromarray(rgba)),
        ("one", grey.convert("1")),
    ):
        paths[name] = tmp_path / f"{name}.png"
        image.save(paths[name])
    return mask, paths


def test_mask_forms_read_the_same(tmp_path):
    mask, paths = _mask_variants(tmp_path)
    for name, path in paths.items():
        np.testing.assert_array_equal(read_mask(path, mask.shape), mask, err_msg=name)


def test_grey_mask_refused_naming_the_file_and_threshold_relaxes(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d")
    m = np.asarray(Image.open(data / "masks" / "1.png"))
    Image.fromarray(np.where(m > 0, 128, 0).astype(np.uint8)).save(data / "masks" / "1.png")
    before = snapshot(tmp_path)
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 2
    (line,) = errors(lines)
    assert "1.png" in line and "must be binary (0/1, 0/255 or bool)" in line and "--mask-threshold" in line
    assert snapshot(tmp_path) == before
    rc, _ = cli(*run_take_args(test_engines, data, tmp_path / "o"), "--mask-threshold", "100")
    assert rc == 0 and not _frames(tmp_path / "o")["1"]["skipped"]


def test_jpeg_masks_need_a_threshold(tmp_path, cli, test_engines):
    data = write_take(tmp_path / "d", mask_suffix=".jpg")
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"))
    assert rc == 2 and ".jpg" in errors(lines)[0]
    rc, lines = cli(*run_take_args(test_engines, data, tmp_path / "o"), "--mask-threshold", "128")
    assert rc == 0, lines
    assert all(not f["skipped"] for f in _frames(tmp_path / "o").values())


def test_one_mask_rule_for_the_cli_and_the_python_api(tmp_path):
    mask, _ = _mask_variants(tmp_path)
    for values in (mask, mask.astype(np.uint8), mask.astype(np.uint8) * 255, mask.astype(np.float32)):
        np.testing.assert_array_equal(check_mask(values, mask.shape), mask)
        path = tmp_path / f"m{values.dtype}{int(values.max())}.png"
        Image.fromarray(values.astype(np.uint8)).save(path)
        np.testing.assert_array_equal(read_mask(path, mask.shape), mask)
    grey = mask.astype(np.uint8) * 128
    with pytest.raises(ValueError, match="must be binary"):
        check_mask(grey, mask.shape)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    with pytest.raises(ValueError, match=r"grey\.png must be binary"):
        read_mask(tmp_path / "grey.png", mask.shape)
    mixed = mask.astype(np.uint8)
    mixed[0, 0] = 255  # 0, 1 and 255 together: neither rule
    with pytest.raises(ValueError, match="must be binary"):
        check_mask(mixed, mask.shape)
