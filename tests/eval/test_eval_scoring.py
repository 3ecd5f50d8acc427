"""Submission files, end-to-end scoring (GT copy, empty, baselines), the CLI and malformed inputs."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from lmeec.cli import main
from lmeec.eval.annotations import load_annotations
from lmeec.eval.baselines import OracleReprojection, copy_query, predict
from lmeec.eval.evaluate import evaluate_direction
from lmeec.eval.metrics import LE_DIAGONAL
from lmeec.eval.rle import encode_rle
from lmeec.eval.submission import Submission
from lmeec.eval.synth import RELATIONS_FILE, load_synth


def gt_copy(unit, frame):
    gt = unit.gt_mask(frame)
    return (np.zeros(unit.target_eval_shape, bool), 0.0) if gt is None else (gt, 1.0)


def empty(unit, frame):
    return gt_copy(unit, frame)[0] & False, 0.0


@pytest.mark.parametrize("direction", ["ego-exo", "exo-ego"])
def test_gt_copy_and_empty_known_answers(tmp_path, synth_root, direction):
    ann = load_synth(synth_root)
    perfect = evaluate_direction(
        ann, Submission(predict(ann, gt_copy, [direction]).to_dict(), "p"), direction
    )
    s = perfect.total
    assert s.iou == pytest.approx(1.0) and s.contour_accuracy == 1.0 and s.location_error == 0.0
    assert s.balanced_accuracy == 1.0 and 0 < s.visible < s.frames
    zero = evaluate_direction(
        ann, Submission(predict(ann, empty, [direction]).to_dict(), "p"), direction
    ).total
    assert (zero.iou, zero.contour_accuracy, zero.balanced_accuracy) == (0.0, 0.0, 0.5)
    # LE of an empty prediction: distance from each GT box centre to the fixed empty centroid
    expected = []
    for unit in ann.units(direction):
        for f in unit.counted_frames:
            gt = unit.gt_mask(f)
            if gt is not None:
                ys, xs = np.nonzero(gt)
                cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
                ex, ey = (240, 240) if gt.shape == (480, 480) else (135, 240)
                expected.append(math.hypot(cx - ex, cy - ey) / LE_DIAGONAL)
    assert zero.location_error == pytest.approx(np.mean(expected), abs=1e-12)
    assert set(perfect.per_take) == set(ann.takes)


def test_baselines_bracket_the_scores(synth_root):
    ann = load_synth(synth_root)
    oracle = predict(ann, OracleReprojection(synth_root), ["ego-exo", "exo-ego"])
    copy = predict(ann, copy_query, ["ego-exo", "exo-ego"])
    for d in ("ego-exo", "exo-ego"):
        o = evaluate_direction(ann, Submission(oracle.to_dict(), "o"), d).total
        c = evaluate_direction(ann, Submission(copy.to_dict(), "c"), d).total
        assert o.iou > 0.4 > c.iou and o.location_error < c.location_error, (d, o, c)
        assert c.balanced_accuracy == 0.5  # copying always says "visible"


def run_cli(*argv):
    return main([str(a) for a in argv])


def test_cli_end_to_end(tmp_path, synth_root, capsys):
    rel = synth_root / RELATIONS_FILE
    pred, report = tmp_path / "copy.json", tmp_path / "report.json"
    assert run_cli("data", "baseline", "copy", "--annotations", rel, "--out", pred) == 0
    assert run_cli("eval", "--annotations", rel, "--predictions", pred, "--report", report) == 0
    out = capsys.readouterr().out
    assert "ego-exo" in out and "exo-ego" in out and "IoU" in out
    doc = json.loads(report.read_text())
    assert set(doc["directions"]) == {"ego-exo", "exo-ego"} and "challenge_score_mean_iou" in doc
    assert set(doc["directions"]["ego-exo"]["per_take"]) == set(load_synth(synth_root).takes)
    assert run_cli("eval", "--annotations", rel, "--predictions", pred, "--direction", "exo-ego") == 0
    assert "ego-exo" not in capsys.readouterr().out.splitlines()[1]


def drop_one_frame(doc):
    take = next(iter(doc["ego-exo"]["results"].values()))
    for pairs in take["masks"].values():
        for frames in pairs.values():
            if frames:
                key = next(iter(frames))
                del frames[key]
                return key
    raise AssertionError("no frame to drop")


def test_missing_prediction_is_an_error_unless_allowed(tmp_path, synth_root, capsys):
    rel = synth_root / RELATIONS_FILE
    ann = load_annotations(rel)
    doc = predict(ann, gt_copy, ["ego-exo"]).to_dict()
    frame = drop_one_frame(doc)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert run_cli("eval", "--annotations", rel, "--predictions", path, "--direction", "ego-exo") == 2
    err = capsys.readouterr().err
    assert "missing prediction for take" in err and f"frame {frame}" in err and "aria01_214-1->cam01" in err
    assert run_cli("eval", "--annotations", rel, "--predictions", path, "--allow-missing") == 0
    assert "1 missing predictions scored as empty" in capsys.readouterr().out


def corrupt(doc, what):
    take_id, take = next(iter(doc["ego-exo"]["results"].items()))
    obj, pairs = next(iter(take["masks"].items()))
    key, frames = next(iter(pairs.items()))
    frame, item = next(iter(frames.items()))
    if what == "take":
        doc["ego-exo"]["results"]["no-such-take"] = take
    elif what == "shape":
        item["pred_mask"] = encode_rle(np.zeros((480, 480), bool))
    elif what == "rle":
        item["pred_mask"]["counts"] = item["pred_mask"]["counts"][:-3]
    return take_id, obj, key, frame


@pytest.mark.parametrize(
    "what,pattern",
    [
        ("take", "unknown take 'no-such-take'"),
        ("shape", r"has shape \(480, 480\), expected \(270, 480\)"),
        ("rle", "RLE runs cover|ends inside a number"),
    ],
)
def test_malformed_predictions_name_the_place(tmp_path, synth_root, capsys, what, pattern):
    rel = synth_root / RELATIONS_FILE
    doc = predict(load_annotations(rel), gt_copy, ["ego-exo"]).to_dict()
    take, obj, key, frame = corrupt(doc, what)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert run_cli("eval", "--annotations", rel, "--predictions", path) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmeec eval: error:")
    assert re.search(pattern, err), err
    if what != "take":
        assert f"take {take}" in err and f"frame {frame}" in err


def test_malformed_annotations_name_the_place(tmp_path, synth_root, capsys):
    rel = synth_root / RELATIONS_FILE
    text = rel.read_text()
    truncated = tmp_path / "truncated.json"
    truncated.write_text(text[: len(text) // 2])
    pred = tmp_path / "copy.json"
    assert run_cli("data", "baseline", "copy", "--annotations", rel, "--out", pred) == 0
    assert run_cli("eval", "--annotations", truncated, "--predictions", pred) == 2
    assert "truncated.json: not valid JSON (truncated?)" in capsys.readouterr().err

    doc = json.loads(text)
    take_id, take = next(iter(doc["annotations"].items()))
    frames = take["object_masks"]["red ball_0"]["cam01"]["annotation"]
    frame = next(iter(frames))
    frames[frame]["encodedMask"] = frames[frame]["encodedMask"][:-6]
    bad = tmp_path / "bad_rle.json"
    bad.write_text(json.dumps(doc))
    assert run_cli("eval", "--annotations", bad, "--predictions", pred) == 2
    err = capsys.readouterr().err
    assert f"take {take_id} object 'red ball_0' camera cam01 frame {frame}" in err
    assert run_cli("eval", "--annotations", tmp_path / "nope.json", "--predictions", pred) == 2
    assert "no such file" in capsys.readouterr().err


def test_eval_package_does_not_import_torch():
    code = "import sys, lmeec.cli.eval, lmeec.cli.data; print('torch' in sys.modules, 'sam2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
