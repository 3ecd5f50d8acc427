"""`lmeec run` end to end, and the refusals: mismatched manifest, missing or altered engine files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lmeec.cli import main
from lmeec.runtime.backend import open_backend
from tests.conftest import synthetic_pair, write_video_take


@pytest.fixture()
def engines_copy(test_engines, tmp_path):
    dst = tmp_path / "engines"
    shutil.copytree(test_engines, dst)
    return dst


def _write_take(root, n: int = 4):
    rng = np.random.default_rng(0)
    for sub in ("src", "masks", "tgt"):
        (root / sub).mkdir(parents=True)
    for t in range(n):
        src, mask, tgt = synthetic_pair(rng, t)
        Image.fromarray(src).save(root / "src" / f"frame_{t}.png")
        Image.fromarray(tgt).save(root / "tgt" / f"frame_{t}.png")
        if t != 2:  # frame 2 has no mask: skipped
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"frame_{t}.png")


def test_run_one_take_writes_masks_and_rle(test_engines, tmp_path, capsys):
    _write_take(tmp_path)
    out = tmp_path / "out"
    args = ["run", "--engines", str(test_engines), "--source", str(tmp_path / "src"), "--source-masks"]
    args += [str(tmp_path / "masks"), "--target", str(tmp_path / "tgt"), "--out", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "predictions.json").read_text())
    assert list(doc["frames"]) == [f"frame_{t}" for t in range(4)]
    assert doc["frames"]["frame_2"] == {"skipped": True}
    rle = doc["frames"]["frame_1"]["mask"]
    assert rle["size"] == [54, 96]
    png = np.asarray(Image.open(out / "masks" / "frame_1.png"))
    assert png.shape == (54, 96) and set(np.unique(png)) <= {0, 255}
    assert main(args) == 2  # the folder exists now
    assert "already exists" in capsys.readouterr().err


def _sparse_split(root):
    """A synthetic split whose cameras list different annotated frames, trimmed to stay fast; in the second
    take the exo camera holds no mask for any object (its evaluation shape comes from the rule)."""
    from lmeec.eval.synth import EXO_CAM, SynthConfig, synthesize

    relations = synthesize(root, SynthConfig(takes=2, frames=4, scale=0.125, seed=1, unannotated=0.25))
    doc = json.loads(relations.read_text())
    first, second = doc["annotations"].values()
    first["object_masks"].pop("green bottle_0")
    second["object_masks"] = {"blue box_0": second["object_masks"]["blue box_0"]}
    second["object_masks"]["blue box_0"][EXO_CAM]["annotation"] = {}
    relations.write_text(json.dumps(doc))
    return relations


def test_run_split_predicts_every_query_mask_frame(test_engines, tmp_path, capsys):
    from lmeec.eval.annotations import read_relations
    from lmeec.eval.rle import decode_rle, resize_nearest
    from lmeec.runtime.pipeline import Pipeline

    relations = _sparse_split(tmp_path / "synth")
    out = tmp_path / "pred"
    args = ["run", "--engines", str(test_engines), "--annotations", str(relations), "--out", str(out)]
    assert main(args) == 0
    predictions = out / "predictions.json"
    doc = json.loads(predictions.read_text())
    ann = read_relations(relations, frames_root=relations.parent)
    units = [u for d in ("ego-exo", "exo-ego") for u in ann.units(d)]
    assert any(set(u.required_frames) - set(u.counted_frames) for u in units)  # unscored query-mask frames
    for u in units:  # exactly the query-mask frames, scored or not, at the target's evaluation shape
        frames = doc[u.direction]["results"][u.take]["masks"][u.obj][f"{u.query_cam}_{u.target_cam}"]
        assert sorted(int(f) for f in frames) == u.required_frames
        assert all(item["pred_mask"]["size"] == list(u.target_eval_shape) for item in frames.values())
        pngs = sorted(
            int(p.stem)
            for p in (out / "masks" / u.take / f"{u.query_cam}_{u.target_cam}" / u.obj).glob("*.png")
        )
        assert pngs == u.required_frames
    second = list(ann.takes)[1]
    box = doc["ego-exo"]["results"][second]["masks"]["blue box_0"]["aria01_214-1_cam01"]
    assert box and all(item["pred_mask"]["size"] == [270, 480] for item in box.values())  # shape by rule
    assert doc["exo-ego"]["results"][second]["masks"]["blue box_0"] == {"cam01_aria01_214-1": {}}
    # contents: the file holds what the pipeline gives when it walks every frame of the unit in order
    unit = next(u for u in units if set(u.required_frames) - set(u.counted_frames))
    pipeline = Pipeline(open_backend("ort", engines=test_engines))
    walk = list(unit.frames(all_frames=True))
    pipeline.reset(num_frames=len(walk))
    frames = doc[unit.direction]["results"][unit.take]["masks"][unit.obj][
        f"{unit.query_cam}_{unit.target_cam}"
    ]
    for fr in walk:
        result = pipeline.step(fr.source_rgb, fr.source_mask, fr.target_rgb)
        if fr.source_mask is not None:
            item = frames[str(fr.frame)]
            expected = resize_nearest(result.mask, unit.target_eval_shape)
            assert np.array_equal(decode_rle(item["pred_mask"], "p"), expected)
            assert item["confidence"] == float(result.visible)
    capsys.readouterr()
    check = ["eval", "--annotations", str(relations), "--predictions", str(predictions)]
    assert main([*check, "--validate"]) == 0
    assert capsys.readouterr().out.startswith(f"valid: {predictions}: 2 takes, 3 objects; 6 camera pairs")
    assert main(check) == 0


def test_manifest_for_another_preset_is_refused(test_engines, tmp_path, capsys):
    with pytest.raises(ValueError, match="exported for preset 'test', not 'b\\+'"):
        open_backend("ort", engines=test_engines, preset="b+")
    args = ["run", "--engines", str(test_engines), "--preset", "b+", "--source", "x", "--source-masks", "y"]
    assert main([*args, "--target", "z", "--out", str(tmp_path / "o")]) == 2
    assert "exported for preset 'test'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_engine_file_is_refused(engines_copy, tmp_path, capsys):
    (engines_copy / "moe_fusion.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="engine file moe_fusion.onnx for moe_fusion is missing"):
        open_backend("ort", engines=engines_copy)
    args = ["run", "--engines", str(engines_copy), "--source", "x", "--source-masks", "y", "--target", "z"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "is missing" in capsys.readouterr().err


def test_altered_engine_or_shapes_are_refused(engines_copy):
    with open(engines_copy / "mask_decoder.onnx", "ab") as fp:
        fp.write(b"\0")
    with pytest.raises(ValueError, match="does not match the manifest's hash"):
        open_backend("ort", engines=engines_copy)
    manifest = json.loads((engines_copy / "manifest.json").read_text())
    manifest["graphs"]["moe_fusion"]["inputs"][0]["shape"] = [1, 256, 30, 30]
    (engines_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="moe_fusion inputs are f_mem\\[1, 256, 30, 30\\]"):
        open_backend("ort", engines=engines_copy)
    (engines_copy / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        open_backend("ort", engines=engines_copy)


def test_run_one_take_from_video_files(test_engines, tmp_path):
    pytest.importorskip("cv2")
    write_video_take(tmp_path, lambda t: f"{t:06d}")
    args = ["run", "--engines", str(test_engines), "--source", str(tmp_path / "src.avi"), "--no-png"]
    args += [
        "--source-masks",
        str(tmp_path / "masks"),
        "--target",
        str(tmp_path / "tgt.avi"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 0
    frames = json.loads((tmp_path / "o" / "predictions.json").read_text())["frames"]
    assert list(frames) == ["000000", "000001", "000002"]
    assert all(not f["skipped"] and f["mask"]["size"] == [54, 96] for f in frames.values())


def test_engines_from_another_lmeec_version_warn(engines_copy):
    manifest = json.loads((engines_copy / "manifest.json").read_text())
    manifest["versions"]["lmeec"] = "0.0.1"
    (engines_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="exported by lmeec 0.0.1"):
        open_backend("ort", engines=engines_copy)


def _write_objects_take(root, n: int = 4):
    """Three objects as index PNGs (ids 3, 7, 9) and as one folder per object (a, b, c); frame names f<t>."""
    from tests.objects import object_take

    for sub in ("src", "tgt", "index", "folders/a", "folders/b", "folders/c"):
        (root / sub).mkdir(parents=True)
    take = object_take(n, skips=({1}, set(), {0}))
    for t, (src, masks, tgt) in enumerate(take):
        Image.fromarray(src).save(root / "src" / f"f{t}.png")
        Image.fromarray(tgt).save(root / "tgt" / f"f{t}.png")
        index = np.zeros(masks.shape[1:], np.uint8)
        for value, mask in zip((3, 7, 9), masks):
            index[mask] = value
        Image.fromarray(index).save(root / "index" / f"f{t}.png")
        for obj, mask in zip("abc", masks):
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "folders" / obj / f"f{t}.png")
    return take


def test_run_one_take_with_several_objects(test_engines, tmp_path):
    _write_objects_take(tmp_path)
    base = ["run", "--engines", str(test_engines), "--source", str(tmp_path / "src")]
    base += ["--target", str(tmp_path / "tgt")]
    docs = {}
    for layout in ("index", "folders", "folders/b"):
        out = tmp_path / "out" / layout
        assert main([*base, "--source-masks", str(tmp_path / layout), "--out", str(out)]) == 0
        docs[layout] = json.loads((out / "predictions.json").read_text())
    index, folders, alone = docs["index"]["objects"], docs["folders"]["objects"], docs["folders/b"]["frames"]
    assert list(index) == ["3", "7", "9"] and list(folders) == ["a", "b", "c"]
    assert index["3"]["frames"]["f1"] == {"skipped": True} and index["9"]["frames"]["f0"] == {"skipped": True}
    for i, f in zip(("3", "7", "9"), ("a", "b", "c")):  # both layouts: the same masks, object by object
        assert index[i] == folders[f]
    together = folders["b"]["frames"]  # object b alone (binary masks): the same predictions
    assert list(alone) == list(together) and alone["f0"]["mask"] == together["f0"]["mask"]
    for name, a in alone.items():
        assert a["skipped"] == together[name]["skipped"]
        if not a["skipped"]:
            assert a["mask"] == together[name]["mask"]
            assert a["object_score"] == pytest.approx(together[name]["object_score"], abs=1e-4)
    png = np.asarray(Image.open(tmp_path / "out" / "index" / "masks" / "7" / "f2.png"))
    assert png.shape == (54, 96) and set(np.unique(png)) <= {0, 255}


def test_overlay_of_a_mask_folder_take_tints_each_object(test_engines, tmp_path, capsys):
    """--source-masks with --overlay: frames paired with their masks by name (here the mask folder also
    holds a file of no frame), one picture per pair, each object's source mask in its own palette colour."""
    from lmeec.cli.overlay import HEIGHT, PALETTE

    take = _write_objects_take(tmp_path)
    Image.fromarray(np.zeros((54, 96), np.uint8)).save(tmp_path / "index" / "a_stray_mask.png")
    out, pictures = tmp_path / "out", tmp_path / "pictures"
    args = ["run", "--engines", str(test_engines), "--source", str(tmp_path / "src"), "--target"]
    args += [str(tmp_path / "tgt"), "--source-masks", str(tmp_path / "index"), "--out", str(out)]
    assert main([*args, "--overlay", str(pictures)]) == 0
    assert f"overlay: {pictures}" in capsys.readouterr().out
    files = sorted(pictures.iterdir())
    assert [p.name for p in files] == [f"{t:06d}.png" for t in range(len(take))]
    for t, (src, masks, _) in enumerate(take):
        picture = np.asarray(Image.open(files[t]).convert("RGB")).astype(np.float32)
        assert picture.shape[0] == HEIGHT
        scale = HEIGHT / src.shape[0]
        for k, mask in enumerate(masks):
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            y, x = int(ys.mean() * scale), int(xs.mean() * scale)  # inside the object's square
            tint = picture[y, x] - 0.5 * src[int(ys.mean()), int(xs.mean())]
            nearest = int(np.argmin(np.abs(PALETTE[:3] * 0.5 - tint).sum(axis=1)))
            assert nearest == k, f"frame {t} object {k}: tinted like object {nearest}"
    # a run that fails mid-take (the last frame's mask has the wrong size) leaves no overlay and no output
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "index", broken)
    Image.fromarray(np.full((10, 20), 3, np.uint8)).save(broken / "f3.png")
    args[args.index(str(tmp_path / "index"))], args[-1] = str(broken), str(tmp_path / "out2")
    assert main([*args, "--overlay", str(tmp_path / "again.mp4")]) == 2
    assert "f3.png" in capsys.readouterr().err
    assert not (tmp_path / "again.mp4").exists() and not list(tmp_path.glob(".again*"))
    assert not (tmp_path / "out2").exists()


def test_object_passes_group_by_frames_and_cap_at_max_objects():
    from types import SimpleNamespace

    from lmeec.cli.split import object_passes

    def unit(obj, frames, take="t1"):
        numbers = list(frames)
        return SimpleNamespace(
            take=take, obj=obj, query_cam="aria", target_cam="cam01", frame_numbers=lambda all_frames: numbers
        )

    units = [
        unit("a", [0, 30]),
        unit("b", [0, 30]),
        unit("c", [0, 60]),
        unit("d", [0, 30]),
        unit("e", [0, 30], "t2"),
    ]
    passes = object_passes(units, max_objects=2)
    assert [[u.obj for u in p] for p in passes] == [["a", "b"], ["d"], ["c"], ["e"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "torch", "--graph", "--device", "cpu"], "--graph needs a CUDA device"),
        (["--backend", "ort", "--precision", "bf16", "--device", "cpu"], "apply to --backend torch, not ort"),
    ],
)
def test_impossible_step_options_are_refused(test_engines, tmp_path, capsys, extra, message):
    args = ["run", "--engines", str(test_engines), "--source", "x", "--source-masks", "y", "--target", "z"]
    assert main([*args, *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
