"""Complete submissions (every take, object, camera pair and query-mask frame) and the official validator's
acceptance rules (`lmeec eval --validate`), on a split whose cameras list different annotated frames."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from lmeec.cli import main
from lmeec.eval.annotations import load_annotations, read_relations
from lmeec.eval.baselines import OracleReprojection, copy_query, predict
from lmeec.eval.rle import decode_encoded_mask, decode_rle, encode_rle, resize_nearest
from lmeec.eval.submission import Submission, SubmissionWriter
from lmeec.eval.synth import EGO_CAM, EXO_CAM, RELATIONS_FILE, load_synth
from lmeec.eval.validate import Refused, validate

DIRS = ["ego-exo", "exo-ego"]


def required_from_raw(doc: dict, direction: str) -> dict:
    """take -> object -> pair key -> query-mask frames, read straight from a raw relations document."""
    out: dict = {}
    for take, entry in doc["annotations"].items():
        out[take] = {}
        for obj, cams in entry["object_masks"].items():
            egos = [c for c in cams if c.startswith("aria")]
            exos = [c for c in cams if not c.startswith("aria")]
            pairs = [(e, x) for e in egos for x in exos]
            if direction == "exo-ego":
                pairs = [(x, e) for e, x in pairs]
            out[take][obj] = {f"{q}_{t}": sorted(int(f) for f in cams[q]["annotation"]) for q, t in pairs}
    return out


def raw(root: Path) -> dict:
    return json.loads((root / RELATIONS_FILE).read_text())


def edited_split(root: Path, tmp_path: Path) -> Path:
    """The sparse split plus the corner cases: an object seen only by an exo camera (no pair), a take with
    no objects, and a take whose exo camera holds no mask for any object (target shape by rule)."""
    doc = raw(root)
    first, second = list(doc["annotations"])
    doc["annotations"][first]["object_masks"]["mug_0"] = {
        EXO_CAM: copy.deepcopy(doc["annotations"][first]["object_masks"]["red ball_0"][EXO_CAM])
    }
    for cams in doc["annotations"][second]["object_masks"].values():
        cams[EXO_CAM]["annotation"] = {}
    doc["annotations"]["empty-take"] = {"take_name": "empty", "object_masks": {}}
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return path


def test_sparse_synth_cameras_list_different_annotated_frames(sparse_root):
    doc = raw(sparse_root)
    differ = 0
    for take, entry in doc["annotations"].items():
        for cams in entry["object_masks"].values():
            ego, exo = cams[EGO_CAM], cams[EXO_CAM]
            differ += ego["annotated_frames"] != exo["annotated_frames"]
            for cam in (ego, exo):
                assert len(cam["annotated_frames"]) == 6  # 8 frames less a quarter
                assert {int(f) for f in cam["annotation"]} <= set(cam["annotated_frames"])
        for cam in (EGO_CAM, EXO_CAM):  # every camera's frames are on disk, annotated or not
            assert sorted(int(p.stem) for p in (sparse_root / take / cam).glob("*.jpg")) == [
                30 * i for i in range(8)
            ]
    assert differ >= 4
    ann = load_synth(sparse_root)
    for direction in DIRS:  # some query-mask frames are not scored: the target did not annotate them
        extra = [(u, f) for u in ann.units(direction) for f in u.required_frames if f not in u.counted_frames]
        assert extra and all(f not in u.target.annotated_frames for u, f in extra)


def test_writer_round_trip_and_atomic_save(tmp_path, synth_root):
    ann = load_synth(synth_root)
    unit = next(u for u in ann.units("ego-exo") if len(u.required_frames) > 1)
    w = SubmissionWriter(ann, ["ego-exo"])
    m = np.zeros((270, 480), bool)
    m[10:20, 30:50] = True
    first = unit.required_frames[0]
    w.add(unit.take, unit.obj, unit.query_cam, unit.target_cam, first, m, 0.9)
    with pytest.raises(ValueError, match="incomplete submission: ego-exo take .* query frame .* has no"):
        w.save(tmp_path / "sub.json")
    assert not any(tmp_path.iterdir())  # nothing written for an incomplete file
    for u in ann.units("ego-exo"):
        for f in u.required_frames:
            if (u, f) != (unit, first):
                w.add(u.take, u.obj, u.query_cam, u.target_cam, f, np.zeros(u.target_eval_shape, bool), 0.1)
    path = w.save(tmp_path / "sub.json")
    assert [p.name for p in tmp_path.iterdir()] == ["sub.json"]  # no temp file left behind
    doc = json.loads(path.read_text())
    assert set(doc) == {"ego-exo"} and doc["ego-exo"]["challenge"] == "correspondence"
    entry = doc["ego-exo"]["results"][unit.take]
    assert entry["subsample_idx"] == sorted(entry["subsample_idx"])
    sub = Submission.load(path)
    pred = sub.get("ego-exo", unit.take, unit.obj, unit.query_cam, unit.target_cam, first)
    assert np.array_equal(pred.mask, m) and pred.confidence == 0.9
    other = sub.get("ego-exo", unit.take, unit.obj, unit.query_cam, unit.target_cam, unit.required_frames[1])
    assert not other.mask.any() and other.confidence == 0.1
    args = (unit.take, unit.obj, unit.query_cam, unit.target_cam, first)
    with pytest.raises(ValueError, match="one camera must be Aria"):
        w.add(unit.take, unit.obj, EXO_CAM, "cam02", first, m, 1.0)
    with pytest.raises(ValueError, match=r"evaluation shape \(270, 480\), got \(480, 480\)"):
        w.add(*args, np.zeros((480, 480), bool), 1.0)
    with pytest.raises(ValueError, match="not an evaluation unit"):
        w.add("no-such-take", *args[1:], m, 1.0)
    with pytest.raises(ValueError, match="not an evaluation unit"):  # direction not in this writer
        w.add(unit.take, unit.obj, unit.target_cam, unit.query_cam, first, np.zeros((480, 480), bool), 1.0)


def test_writer_lays_out_the_whole_split(sparse_root, tmp_path):
    path = edited_split(sparse_root, tmp_path)
    doc_raw = json.loads(path.read_text())
    ann = read_relations(path, frames_root=sparse_root)
    sub = predict(ann, copy_query, DIRS).to_dict()
    first, second = list(doc_raw["annotations"])[:2]
    for direction in DIRS:
        results = sub[direction]["results"]
        expected = required_from_raw(doc_raw, direction)
        assert list(results) == list(expected)  # every take, in split order, the empty one too
        assert results["empty-take"] == {"masks": {}, "subsample_idx": []}
        assert results[first]["masks"]["mug_0"] == {}  # an object without an Aria camera has no pair
        for take, objs in expected.items():
            masks = results[take]["masks"]
            assert {o: {k: sorted(int(f) for f in v) for k, v in p.items()} for o, p in masks.items()} == objs
    # the take whose exo camera has no mask: pairs exist, exo-ego ones are empty, ego-exo at the rule shape
    assert all(p == {"cam01_aria01_214-1": {}} for p in sub["exo-ego"]["results"][second]["masks"].values())
    for pairs in sub["ego-exo"]["results"][second]["masks"].values():
        for item in pairs["aria01_214-1_cam01"].values():
            assert item["pred_mask"]["size"] == [270, 480]
    # contents: the copy baseline's mask on a frame the target never annotated is the resized query mask
    take, obj = first, "red ball_0"
    cams = doc_raw["annotations"][take]["object_masks"][obj]
    frame = next(f for f in cams[EGO_CAM]["annotation"] if int(f) not in cams[EXO_CAM]["annotated_frames"])
    a = cams[EGO_CAM]["annotation"][frame]
    query = decode_encoded_mask(a["encodedMask"], a["height"], a["width"], "q")
    item = sub["ego-exo"]["results"][take]["masks"][obj][f"{EGO_CAM}_{EXO_CAM}"][frame]
    assert np.array_equal(decode_rle(item["pred_mask"], "p"), resize_nearest(query, (270, 480)))
    assert item["confidence"] == 1.0
    summary = validate(ann, sub, DIRS, "copy.json")
    n_frames = sum(
        len(v)
        for d in DIRS
        for objs in required_from_raw(doc_raw, d).values()
        for p in objs.values()
        for v in p.values()
    )
    assert (summary.takes, summary.objects, summary.pairs, summary.frames) == (3, 7, 12, n_frames)


def test_target_without_masks_takes_the_evaluation_shape_rule(sparse_root, tmp_path):
    ann = read_relations(edited_split(sparse_root, tmp_path))
    second = list(ann.takes)[1]
    shapes = {
        (u.direction, u.target_native): u.target_eval_shape
        for d in DIRS
        for u in ann.units(d)
        if u.take == second
    }
    assert shapes == {("ego-exo", None): (270, 480), ("exo-ego", (176, 176)): (480, 480)}


@pytest.mark.parametrize("kind", ["copy", "oracle"])
def test_baselines_write_valid_files_with_every_query_mask_frame(sparse_root, kind):
    ann = load_synth(sparse_root)
    predictor = copy_query if kind == "copy" else OracleReprojection(sparse_root)
    sub = predict(ann, predictor, DIRS).to_dict()
    summary = validate(ann, sub, DIRS, kind)
    for direction in DIRS:
        expected = required_from_raw(raw(sparse_root), direction)
        got = {
            take: {o: {k: sorted(int(f) for f in v) for k, v in p.items()} for o, p in e["masks"].items()}
            for take, e in sub[direction]["results"].items()
        }
        assert got == expected
    assert summary.frames == sum(len(u.required_frames) for d in DIRS for u in ann.units(d))
    assert summary.frames > sum(len(u.counted_frames) for d in DIRS for u in ann.units(d))


def remove(doc: dict, what: str) -> str:
    """Drop (or spoil) one thing from a complete submission; returns the words the refusal must hold."""
    results = doc["ego-exo"]["results"]
    take = list(results)[1]
    masks = results[take]["masks"]
    obj = "blue box_0"
    key = f"{EGO_CAM}_{EXO_CAM}"
    frames = masks[obj][key]
    frame = sorted(frames, key=int)[-1]
    if what == "take":
        del results[take]
        return f"ego-exo take {take} missing"
    if what == "object":
        del masks[obj]
        return f"ego-exo take {take} object 'blue box_0' missing"
    if what == "pair":
        del masks[obj][key]
        return f"ego-exo take {take} object 'blue box_0' pair {key} missing"
    if what == "frame":
        del frames[frame]
        return f"ego-exo take {take} object 'blue box_0' pair {key} query frame {frame} missing"
    if what == "direction":
        del doc["exo-ego"]
        return "no 'exo-ego' block"
    if what == "shape":
        frames[frame]["pred_mask"] = encode_rle(np.zeros((480, 480), bool))
        return f"query frame {frame}: pred_mask has shape (480, 480), expected (270, 480)"
    if what == "confidence":
        frames[frame]["confidence"] = True
        return f"query frame {frame}: confidence must be a finite number, got True"
    if what == "rle":
        frames[frame]["pred_mask"]["counts"] = frames[frame]["pred_mask"]["counts"][:-2]
        return f"query frame {frame}"
    if what == "unknown take":
        results["zz-take"] = {"masks": {}}
        return "ego-exo: unknown take 'zz-take'"
    if what == "unknown object":
        masks["zz"] = {}
        return f"ego-exo take {take}: unknown object 'zz'"
    if what == "unknown pair":
        masks[obj]["aria01_214-1_cam09"] = {}
        return f"ego-exo take {take} object 'blue box_0': unknown camera pair 'aria01_214-1_cam09'"
    raise AssertionError(what)


@pytest.mark.parametrize(
    "what",
    ["take", "object", "pair", "frame", "direction", "shape", "confidence", "rle"]
    + ["unknown take", "unknown object", "unknown pair"],
)
def test_validate_names_the_first_violation(sparse_root, what):
    ann = load_synth(sparse_root)
    doc = predict(ann, copy_query, DIRS).to_dict()
    words = remove(doc, what)
    with pytest.raises(Refused) as info:
        validate(ann, doc, DIRS, "p.json")
    message = str(info.value)
    assert message.startswith("p.json: refused: ") and words in message and "\n" not in message, message


def test_validate_one_direction_only(sparse_root):
    ann = load_synth(sparse_root)
    doc = predict(ann, copy_query, ["exo-ego"]).to_dict()
    assert validate(ann, doc, ["exo-ego"], "p").directions == ("exo-ego",)
    with pytest.raises(Refused, match="no 'ego-exo' block"):
        validate(ann, doc, DIRS, "p")


def test_cli_validate(tmp_path, sparse_root, capsys):
    rel = sparse_root / RELATIONS_FILE
    pred = tmp_path / "copy.json"
    assert main(["data", "baseline", "copy", "--annotations", str(rel), "--out", str(pred)]) == 0
    capsys.readouterr()
    argv = ["eval", "--annotations", str(rel), "--validate", "--predictions"]
    assert main([*argv, str(pred)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"valid: {pred}: 2 takes, 6 objects; 12 camera pairs and ")
    assert not pred.with_suffix(".report.json").exists()  # validating scores nothing
    for what in ("take", "object", "pair", "frame"):
        doc = json.loads(pred.read_text())
        words = remove(doc, what)
        bad = tmp_path / f"no-{what}.json"
        bad.write_text(json.dumps(doc))
        assert main([*argv, str(bad)]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == f"lmeec eval: invalid: {bad}: refused: {words}\n"
    assert main([*argv, str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_processed_ground_truth_validates_the_same(sparse_root, tmp_path):
    """The validator walks the official processed GT file as it walks the raw one."""
    ann = load_synth(sparse_root)
    doc = predict(ann, copy_query, DIRS).to_dict()
    processed = load_annotations(sparse_root, relations=sparse_root / RELATIONS_FILE)
    assert validate(processed, doc, DIRS, "p") == validate(ann, doc, DIRS, "p")


def test_writer_for_chosen_takes_covers_only_them(sparse_root):
    ann = load_synth(sparse_root)
    first, second = list(ann.takes)
    with pytest.raises(ValueError, match="take 'nope' not in"):
        SubmissionWriter(ann, DIRS, takes=["nope"])
    w = SubmissionWriter(ann, ["ego-exo"], takes=[second])
    for u in ann.units("ego-exo"):
        for f in u.required_frames if u.take == second else ():
            w.add(u.take, u.obj, u.query_cam, u.target_cam, f, np.zeros(u.target_eval_shape, bool), 0.0)
    doc = w.to_dict()
    assert list(doc["ego-exo"]["results"]) == [second]
    with pytest.raises(Refused, match=f"ego-exo take {first} missing"):
        validate(ann, doc, ["ego-exo"], "p")
