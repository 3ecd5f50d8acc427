"""Synthetic takes in the real formats, the three readers, evaluation units and lazy frame access."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmeec.eval.annotations import load_annotations, read_processed, read_relations
from lmeec.eval.rle import decode_encoded_mask
from lmeec.eval.synth import EGO_CAM, EXO_CAM, RELATIONS_FILE, SynthConfig, load_synth, make_scene


def test_raw_file_matches_the_documented_layout(synth_root):
    doc = json.loads((synth_root / RELATIONS_FILE).read_text())
    take = next(iter(doc["annotations"].values()))
    cams = take["object_masks"]["red ball_0"]
    assert set(cams) == {EGO_CAM, EXO_CAM}
    assert cams[EGO_CAM]["annotated_frames"] == [30 * i for i in range(8)]
    frame, ann = next(iter(cams[EGO_CAM]["annotation"].items()))
    assert int(frame) % 30 == 0 and (ann["width"], ann["height"]) == (176, 176)
    mask = decode_encoded_mask(ann["encodedMask"], ann["height"], ann["width"], "t")
    assert mask.any()
    exo = next(iter(cams[EXO_CAM]["annotation"].values()))
    assert (exo["width"], exo["height"]) == (480, 270)  # 16:9 at scale 0.125


def test_negatives_and_a_camera_without_masks(synth_root):
    ann = load_synth(synth_root)
    empty_tracks = [
        (t, o, c)
        for t, take in ann.takes.items()
        for o, cams in take.objects.items()
        for c, tr in cams.items()
        if not tr.masks and tr.annotated_frames
    ]
    assert any(c == EXO_CAM for _, _, c in empty_tracks)  # shelf-hidden object in take 0
    for cam in (EGO_CAM, EXO_CAM):
        annotated = sum(
            len(t.objects[o][cam].annotated_frames) for t in ann.takes.values() for o in t.objects
        )
        masked = sum(len(t.objects[o][cam].masks) for t in ann.takes.values() for o in t.objects)
        assert 0.15 <= 1 - masked / annotated <= 0.45, (cam, masked, annotated)


def test_default_benchmark_has_20_to_40_percent_negatives():
    config = SynthConfig()
    for cam in (EGO_CAM, EXO_CAM):
        neg = tot = 0
        for i in range(config.takes):
            scene = make_scene(config, i)
            for f in scene.frames[::3]:
                label = scene.render(f, cam, (90, 160) if cam == EXO_CAM else (88, 88)).label
                neg += sum(not (label == k).any() for k in range(3))
                tot += 3
        assert 0.2 <= neg / tot <= 0.45, (cam, neg / tot)


def test_readers_agree(synth_root):
    raw = read_relations(synth_root / RELATIONS_FILE)
    processed = read_processed(synth_root, synth_root / RELATIONS_FILE)
    assert (
        load_annotations(synth_root, relations=synth_root / RELATIONS_FILE).takes.keys() == raw.takes.keys()
    )
    for direction in ("ego-exo", "exo-ego"):
        units_raw = list(raw.units(direction))
        units_proc = list(processed.units(direction))
        assert [(u.take, u.obj, u.query_cam, u.target_cam) for u in units_raw] == [
            (u.take, u.obj, u.query_cam, u.target_cam) for u in units_proc
        ]
        for a, b in zip(units_raw, units_proc, strict=True):
            assert a.counted_frames == b.counted_frames
            for f in a.counted_frames[:2]:
                ga, gb = a.gt_mask(f), b.gt_mask(f)
                assert (ga is None) == (gb is None)
                if ga is not None:
                    assert np.array_equal(ga, gb)


def test_units_count_frames_as_the_official_code(synth_root):
    ann = load_synth(synth_root)
    units = list(ann.units("ego-exo"))
    assert {u.query_cam for u in units} == {EGO_CAM} and {u.target_cam for u in units} == {EXO_CAM}
    for u in units:
        assert u.counted_frames == sorted(f for f in u.query.masks if f in u.target.annotated_frames)
        for f in u.counted_frames:
            gt = u.gt_mask(f)
            assert (gt is not None) == u.gt_visible(f)
            if gt is not None:
                assert gt.shape == (270, 480)
    back = list(ann.units("exo-ego"))
    assert all(u.target_eval_shape in (None, (480, 480)) for u in back)
    with pytest.raises(ValueError, match="direction"):
        list(ann.units("sideways"))


def test_frames_stream_lazily_with_images(synth_root):
    ann = load_synth(synth_root)
    unit = next(u for u in ann.units("exo-ego") if u.counted_frames)
    it = unit.frames()
    first = next(it)
    assert first.source_rgb.shape == (270, 480, 3) and first.source_rgb.dtype == np.uint8
    assert first.target_rgb.shape == (176, 176, 3)
    assert first.source_mask is not None and first.source_mask.shape == (270, 480) and first.counted
    everything = list(unit.frames(all_frames=True))
    assert [f.frame for f in everything] == [30 * i for i in range(8)]
    assert any(f.source_mask is None for f in everything) or len(unit.counted_frames) == 8
    assert all((f.gt_mask is None) or f.counted for f in everything)


def test_multiple_aria_cameras_rejected(tmp_path, synth_root):
    doc = json.loads((synth_root / RELATIONS_FILE).read_text())
    take = next(iter(doc["annotations"]))
    cams = doc["annotations"][take]["object_masks"]["red ball_0"]
    cams["aria02_1"] = cams[EGO_CAM]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="several Aria cameras"):
        list(read_relations(path).units("ego-exo"))
