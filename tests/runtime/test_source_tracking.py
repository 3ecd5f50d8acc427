"""The source tracker's stages exported to ONNX and run by the torch and ort backends, against the eager tracker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmeec.model.source_tracker import Prompt, SourceTracker
from lmeec.runtime.source_tracking import open_source_tracker

SIZE, SEED, FRAMES, H, W = 64, 2, 10, 72, 96
pytestmark = pytest.mark.usefixtures("one_thread")


def _clip() -> list[np.ndarray]:
    """A textured clip with a red square moving right (as the parity test's)."""
    rng = np.random.default_rng(3)
    frames = []
    for t in range(FRAMES):
        img = rng.integers(0, 80, (H, W, 3), dtype=np.uint8)
        img[20:50, 10 + 2 * t : 40 + 2 * t] = (230, 40, 40)
        frames.append(img)
    return frames


def _track(tracker: SourceTracker, frames: list[np.ndarray]) -> list:
    mask = np.zeros((H, W), bool)
    mask[20:50, 10:40] = True
    tracker.reset(num_frames=len(frames))
    return [tracker.prompt(frames[0], Prompt(mask=mask))] + [tracker.step(f) for f in frames[1:]]


@pytest.fixture(scope="module")
def tracker_engines(tmp_path_factory):
    from lmeec.export.onnx import export_tracker_onnx

    out = tmp_path_factory.mktemp("tracker") / "tracker-test"
    model = SourceTracker("test", image_size=SIZE, seed=SEED).model
    export_tracker_onnx(model, out, checkpoint=None, seed=SEED, simplify=False, progress=False)
    return out


@pytest.fixture(scope="module")
def reference():
    frames = _clip()
    return frames, _track(SourceTracker("test", image_size=SIZE, seed=SEED), frames)


def test_torch_backend_equals_eager_tracker(reference):
    frames, want = reference
    tracker, backend = open_source_tracker("torch", trunk="test", image_size=SIZE, seed=SEED)
    assert backend.name == "torch"
    got = _track(tracker, frames)
    for a, b in zip(want, got, strict=True):
        assert (a.logits - b.logits).abs().max().item() <= 1e-4


def test_ort_backend_masks_equal_eager_tracker(reference, tracker_engines):
    frames, want = reference
    tracker, backend = open_source_tracker("ort", engines=tracker_engines)
    assert backend.name == "ort" and tracker.preset.image_size == SIZE
    got = _track(tracker, frames)
    pixels = agree = 0
    worst = 0.0
    for a, b in zip(want[1:], got[1:], strict=True):
        agree += int((a.mask == b.mask).sum())
        pixels += a.mask.size
        worst = max(worst, (a.logits - b.logits).abs().max().item())
    print(f"ort vs eager tracker: {agree / pixels:.6f} of mask pixels agree, max |logit diff| {worst:.2e}")
    assert agree / pixels >= 0.999
    # the clip must be tracked, not an empty mask on both sides
    assert any(r.mask.any() for r in want[1:]) and any(not r.mask.all() for r in want[1:])


def test_ort_tracker_refuses_an_lmeec_folder(tmp_path, tracker_engines):
    import json
    import shutil

    folder = shutil.copytree(tracker_engines, tmp_path / "lmeec")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"model": "lmeec"}))
    with pytest.raises(ValueError, match="holds LM-EEC's graphs, not the source tracker's"):
        open_source_tracker("ort", engines=folder)


def test_ort_tracker_needs_the_exported_checkpoint(tmp_path, tracker_engines):
    from lmeec.model.checkpoint import save_checkpoint

    path = save_checkpoint(SourceTracker("test", seed=1).model, tmp_path / "other.pt", fmt="sam2.1")
    with pytest.raises(ValueError, match="random weights"):
        open_source_tracker("ort", engines=tracker_engines, checkpoint=path)


def test_ring_feeds_mask_what_sam2_does_not_read():
    """At frame 20 of a take prompted on frame 3: memory from 3 (cond) and 14…19, pointers from 3 and 5…19."""
    tracker = SourceTracker("test", image_size=32)
    ring = tracker.ring
    ring.write_prompt(3, torch.zeros(1, 4, 64), torch.zeros(1, 256))
    for f in range(4, 20):
        ring.write(f, torch.full((1, 4, 64), float(f)), torch.full((1, 256), float(f)))
    ring.prepare(20, 15)
    feeds = ring.feeds()
    valid = feeds["slot_valid"].bool().tolist()
    frames = {int(f) for f, v in zip(ring.slot_frame, valid, strict=True) if v}
    assert frames == {3, 14, 15, 16, 17, 18, 19}
    tpos = {int(f): int(p) for f, p, v in zip(ring.slot_frame, feeds["slot_tpos"], valid, strict=True) if v}
    assert tpos == {3: 6, 19: 0, 18: 1, 17: 2, 16: 3, 15: 4, 14: 5}
    for slot, f in enumerate(ring.slot_frame):
        if f >= 4:
            assert torch.equal(feeds["slot_memory"][slot], torch.full((4, 64), float(f)))
    pvalid = feeds["pointer_valid"].bool().tolist()
    pframes = {int(f) for f, v in zip(ring.pointer_frame, pvalid, strict=True) if v}
    assert pframes == {3, *range(5, 20)}
    dist = {int(f): float(d) for f, d, v in zip(ring.pointer_frame, feeds["pointer_dist"], pvalid) if v}
    assert dist[3] == pytest.approx(17 / 15) and dist[19] == pytest.approx(1 / 15)
