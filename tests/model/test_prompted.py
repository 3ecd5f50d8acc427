"""Prompted mode: frames before the prompt are skipped, a shared encoder changes nothing when weights agree."""

from __future__ import annotations

import numpy as np
import pytest

from lmeec.model.prompted import PromptedCorrespondence
from lmeec.model.source_tracker import Prompt, SourceTracker
from lmeec.model.tracker import Correspondence
from tests.conftest import synthetic_pair

FRAMES = 3
pytestmark = pytest.mark.usefixtures("one_thread")


def _take():
    rng = np.random.default_rng(0)
    return [synthetic_pair(rng, t) for t in range(FRAMES)]


def _run(share: bool, prompt_frame: int, take):
    # seed 0 for both: the tracker's SAM 2.1 part is drawn exactly as LM-EEC's, so their encoders agree
    run = PromptedCorrespondence(Correspondence("test"), SourceTracker("test", seed=0), share_encoder=share)
    _, first_mask, _ = take[prompt_frame]
    run.reset(Prompt(mask=first_mask), prompt_frame, num_frames=FRAMES)
    return [run.step(src, tgt) for src, _, tgt in take]


def test_shared_encoder_gives_the_separate_results():
    take = _take()
    separate, shared = _run(False, 1, take), _run(True, 1, take)
    assert separate[0].source is None and separate[0].target.skipped  # before the prompt frame
    assert shared[0].source is None and shared[0].target.skipped
    for a, b in zip(separate[1:], shared[1:]):
        assert np.abs(a.source.logits.numpy() - b.source.logits.numpy()).max() <= 1e-3
        assert a.target.skipped == b.target.skipped
        if not a.target.skipped:
            assert np.abs(a.target.logits - b.target.logits).max() <= 1e-3


def test_shared_encoder_needs_matching_sizes():
    with pytest.raises(ValueError, match="same trunk and image size"):
        PromptedCorrespondence(
            Correspondence("test"), SourceTracker("test", image_size=64), share_encoder=True
        )


def test_prompt_frame_outside_the_take_is_refused():
    run = PromptedCorrespondence(Correspondence("test"), SourceTracker("test"))
    with pytest.raises(ValueError, match="prompt frame 5 is not in the take"):
        run.reset(Prompt(box=(1, 1, 5, 5)), 5, num_frames=3)


def test_tracker_checkpoint_loads_and_names_its_trunk(tmp_path):
    import torch

    from lmeec.cli.take import _tracker_trunk
    from lmeec.model.checkpoint import save_checkpoint

    trained = SourceTracker("test", seed=5)
    path = save_checkpoint(trained.model, tmp_path / "sam2.1_tiny.pt", fmt="sam2.1")
    assert _tracker_trunk(str(path), "b+") == "t"  # Hiera-T, whatever LM-EEC's preset
    loaded = SourceTracker("t", path, image_size=128)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    with pytest.raises(ValueError, match="does not fit tracker 'tracker-s'"):
        SourceTracker("s", path, image_size=128)


class _EncodedOnce(Correspondence):
    """LM-EEC whose image features of a frame pair are computed once (the memory paths run every frame)."""

    def encode(self, source_frame, target_frame):
        key = (source_frame.tobytes(), target_frame.tobytes())
        if key not in self.encoded:
            self.encoded[key] = super().encode(source_frame, target_frame)
        return self.encoded[key]


def test_prompted_mode_memory_is_flat_over_200_frames():
    """Tracker + LM-EEC over a 200-frame live take (shared encoder, 4 distinct frames encoded once): from
    frame 30 (all windows full) to 199 the tracker ring's bytes and buffers, the number and bytes of live
    tensors stay the same."""
    import dataclasses
    import gc

    import torch

    from lmeec.model.config import get_preset

    rng = np.random.default_rng(0)
    sources = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
    target = rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 10:30] = True
    lmeec = _EncodedOnce(dataclasses.replace(get_preset("test"), image_size=32))
    lmeec.encoded = {}
    tracker = SourceTracker("test", image_size=32)
    run = PromptedCorrespondence(lmeec, tracker, share_encoder=True)
    run.reset(Prompt(mask=mask), 0)  # live: unknown length

    def snapshot() -> dict:
        gc.collect()
        tensors = [o for o in gc.get_objects() if type(o) is torch.Tensor]
        return {
            "ring_bytes": tracker.memory_bytes(),
            "buffers": {k: v.data_ptr() for k, v in tracker.buffers.items()},
            "ring": tracker.ring.memory.data_ptr(),
            "tensors": len(tensors),
            "tensor_bytes": sum(t.numel() * t.element_size() for t in tensors),
        }

    seen, tracked = {}, 0
    for t in range(200):
        result = run.step(sources[t % 4], target)
        tracked += bool(result.source.mask.any()) and not result.target.skipped
        if t in (30, 199):
            seen[t] = snapshot()
    a, b = seen[30], seen[199]
    assert a["ring_bytes"] == b["ring_bytes"] > 0
    assert a["buffers"] == b["buffers"] and a["ring"] == b["ring"]
    assert (a["tensors"], a["tensor_bytes"]) == (b["tensors"], b["tensor_bytes"])
    assert tracked > 100  # both models kept an object: every memory path ran
    assert sorted(tracker.ring.pointer_frame[1:]) == list(range(185, 200))
