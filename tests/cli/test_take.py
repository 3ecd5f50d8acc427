"""`lmeec run` on your own video: a prompt mask on synthetic MP4s, the overlay video, live takes, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lmeec.cli import main

cv2 = pytest.importorskip("cv2")
pytestmark = pytest.mark.usefixtures("one_thread")
FRAMES = 5
SRC_HW, TGT_HW = (72, 96), (54, 96)
TRACKER_SIZE = 32  # the test trunk's smallest (LM-EEC's 128 by default): the tracker is most of a step here


def _video(path, frames) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, frames[0].shape[1::-1])
    for rgb in frames:
        writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    writer.release()


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """Two synthetic MP4s (a square moving in each view) and the square's mask on source frame 0."""
    root = tmp_path_factory.mktemp("take")
    rng = np.random.default_rng(0)
    src, tgt = [], []
    for t in range(FRAMES):
        s = rng.integers(0, 60, (*SRC_HW, 3), dtype=np.uint8)
        s[20:50, 10 + 3 * t : 40 + 3 * t] = (220, 40, 40)
        g = rng.integers(0, 60, (*TGT_HW, 3), dtype=np.uint8)
        g[15:35, 30 + 2 * t : 50 + 2 * t] = (220, 40, 40)
        src.append(s)
        tgt.append(g)
    _video(root / "src.mp4", src)
    _video(root / "tgt.mp4", tgt)
    _video(root / "tgt_short.mp4", tgt[:3])
    mask = np.zeros(SRC_HW, np.uint8)
    mask[20:50, 10:40] = 255
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(np.zeros(SRC_HW, np.uint8)).save(root / "empty.png")
    return root


def _args(engines, take, out, *extra):
    return [
        "run",
        "--engines",
        str(engines),
        "--source",
        str(take / "src.mp4"),
        "--target",
        str(take / "tgt.mp4"),
        "--out",
        str(out),
        *extra,
    ]


def test_prompt_mask_with_overlay_video(test_engines, take, tmp_path, capsys):
    from lmeec.model.prompted import PromptedCorrespondence
    from lmeec.model.source_tracker import Prompt, SourceTracker
    from lmeec.runtime.backend import open_backend
    from lmeec.runtime.pipeline import Pipeline
    from lmeec.runtime.takes import FrameSource

    out, overlay = tmp_path / "out", tmp_path / "overlay.mp4"
    args = _args(test_engines, take, out, "--prompt-mask", str(take / "mask.png"), "--overlay", str(overlay))
    assert main([*args, "--tracker-size", str(TRACKER_SIZE)]) == 0
    assert f"overlay: {overlay}" in capsys.readouterr().out

    video = cv2.VideoCapture(str(overlay))
    assert video.isOpened()
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    ok, picture = video.read()
    assert ok and picture.shape == (360, 480 + 640, 3)  # both panels at 360 px height, side by side
    video.release()

    # the same take through the Python API gives the same masks (tracker: test trunk, seed 0, --tracker-size)
    prompted = PromptedCorrespondence(
        Pipeline(open_backend("ort", engines=test_engines)), SourceTracker("test", image_size=TRACKER_SIZE)
    )
    with Image.open(take / "mask.png") as im:
        prompted.reset(Prompt(mask=np.asarray(im) > 0), 0, num_frames=FRAMES)
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["random_weights"] is True and len(doc["frames"]) == FRAMES
    for name, src, tgt in zip(
        FrameSource(take / "src.mp4", "s").names,
        FrameSource(take / "src.mp4", "s"),
        FrameSource(take / "tgt.mp4", "t"),
    ):
        want = prompted.step(src, tgt)
        source_png = np.asarray(Image.open(out / "source_masks" / f"{name}.png")) > 0
        assert np.array_equal(source_png, want.source.mask)
        if want.target.skipped:
            assert doc["frames"][name]["skipped"]
        else:
            target_png = np.asarray(Image.open(out / "masks" / f"{name}.png")) > 0
            assert np.array_equal(target_png, want.target.mask)
            assert doc["frames"][name]["object_score"] == pytest.approx(want.target.object_score, abs=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt-box", "10,10,200,40"], "not a box inside the 96×72 frame"),
        (["--prompt-points", "120,10,1"], "outside the 96×72 frame"),
        (["--prompt-mask", "{take}/empty.png"], "prompt mask is empty"),
        (["--prompt-mask", "{take}/mask.png", "--prompt-frame", "9"], "--prompt-frame 9 is not in the video"),
        (["--prompt-box", "1,2,3"], "expected 4 comma-separated numbers"),
        (["--live", "--source-masks", "{take}"], "live views need a prompt on the source view"),
        (["--prompt-mask", "{take}/mask.png", "--source-masks", "{take}"], "either a prompt"),
        (["--source-masks", "{take}", "--share-encoder"], "--share-encoder shares the source frame"),
    ],
)
def test_bad_prompts_exit_with_one_line(test_engines, take, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    extra = [e.format(take=take) for e in extra]
    assert main(_args(test_engines, take, out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("lmeec run: error:")
    assert not out.exists()  # nothing half-written


def test_camera_that_cannot_be_opened(test_engines, take, tmp_path, capsys):
    args = _args(test_engines, take, tmp_path / "out", "--prompt-mask", str(take / "mask.png"))
    args[args.index("--source") + 1] = "97"  # no such camera
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot open the source camera '97'" in err and len(err.splitlines()) == 1


def test_stream_that_stops_keeps_outputs_and_fails(test_engines, take, tmp_path, capsys):
    out, overlay = tmp_path / "out", tmp_path / "pictures"
    args = _args(
        test_engines, take, out, "--prompt-mask", str(take / "mask.png"), "--live", "--overlay", str(overlay)
    )
    args[args.index("--target") + 1] = str(take / "tgt_short.mp4")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lmeec run: error:") and "stopped after 3 frame pairs" in err[-1]
    doc = json.loads((out / "predictions.json").read_text())
    assert list(doc["frames"]) == ["000000", "000001", "000002"]  # the frames before the stop are kept
    assert sorted(p.name for p in overlay.iterdir()) == ["000000.png", "000001.png", "000002.png"]


def _masks(folder) -> dict[str, np.ndarray]:
    return {p.stem: np.asarray(Image.open(p)) > 0 for p in sorted(folder.glob("*.png"))}


def test_tracker_on_ort_from_exported_folder(test_engines, take, tmp_path):
    """`lmeec export tracker-onnx` + `--tracker-engines`: the source masks of the torch-tracker run."""
    folder = tmp_path / "tracker"
    export = ["export", "tracker-onnx", "--trunk", "test", "--random-weights", "0", "--no-simplify"]
    assert main([*export, "--size", str(TRACKER_SIZE), "--out", str(folder)]) == 0
    prompt = ["--prompt-mask", str(take / "mask.png")]
    assert main(_args(test_engines, take, tmp_path / "ort", *prompt, "--tracker-engines", str(folder))) == 0
    assert (
        main(_args(test_engines, take, tmp_path / "torch", *prompt, "--tracker-size", str(TRACKER_SIZE))) == 0
    )
    ort_masks, torch_masks = (
        _masks(tmp_path / "ort" / "source_masks"),
        _masks(tmp_path / "torch" / "source_masks"),
    )
    assert list(ort_masks) == list(torch_masks) and len(ort_masks) == FRAMES
    agree = np.mean([np.mean(ort_masks[k] == torch_masks[k]) for k in ort_masks])
    assert agree >= 0.999 and any(m.any() for m in torch_masks.values())


def test_share_encoder_gives_the_separate_run(take, tmp_path):
    """--share-encoder (one encoder pass of the source frame) against the separate run, same weights."""
    runs = {}
    for name, extra in (("separate", []), ("shared", ["--share-encoder"])):
        out = tmp_path / name
        args = _args("-", take, out, "--prompt-mask", str(take / "mask.png"), *extra)
        args[1:3] = ["--backend", "torch", "--preset", "test"]  # drop --engines: the torch backend, seed 0
        assert main(args) == 0
        runs[name] = out
    a, b = runs["separate"], runs["shared"]
    for sub in ("source_masks", "masks"):
        want, got = _masks(a / sub), _masks(b / sub)
        assert list(want) == list(got) and want
        agree = np.mean([np.mean(want[k] == got[k]) for k in want])
        assert agree >= 0.999, f"{sub}: {agree}"
    doc_a = json.loads((a / "predictions.json").read_text())["frames"]
    doc_b = json.loads((b / "predictions.json").read_text())["frames"]
    for name, frame in doc_a.items():
        assert frame["skipped"] == doc_b[name]["skipped"]
        if not frame["skipped"]:
            assert frame["object_score"] == pytest.approx(doc_b[name]["object_score"], abs=1e-3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--share-encoder"], "use it with --backend torch"),
        (["--backend", "torch", "--preset", "test", "--share-encoder", "--tracker-size", "32"], "same trunk"),
    ],
)
def test_share_encoder_refusals_are_one_line(test_engines, take, tmp_path, capsys, extra, message):
    args = _args(test_engines, take, tmp_path / "out", "--prompt-mask", str(take / "mask.png"), *extra)
    if "--backend" in extra:
        del args[1:3]  # no --engines: the torch backend from --preset
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("lmeec run: error:")
