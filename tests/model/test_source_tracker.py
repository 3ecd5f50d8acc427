"""The source tracker against sam2's own video predictor (the oracle), and its bounded memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lmeec.model.preprocess import frame_to_tensor
from lmeec.model.source_tracker import Prompt, SourceTracker

FRAMES, H, W = 20, 72, 96
TOL = 1e-4
pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 32  # the model's input size: the smallest the test trunk takes (2×2 tokens at stride 16)


def _clip(folder) -> list[np.ndarray]:
    """A textured clip with a red square moving right, written as sam2's JPEG folder and read back."""
    rng = np.random.default_rng(3)
    frames = []
    for t in range(FRAMES):
        img = rng.integers(0, 80, (H, W, 3), dtype=np.uint8)
        x = 10 + 2 * t
        img[20:50, x : x + 30] = (230, 40, 40)
        path = folder / f"{t:05d}.jpg"
        Image.fromarray(img).save(path, quality=95)
        with Image.open(path) as im:
            frames.append(np.asarray(im.convert("RGB")))
    return frames


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sam2.build_sam import build_sam2_video_predictor

    folder = tmp_path_factory.mktemp("clip")
    frames = _clip(folder)
    ours = SourceTracker("test", image_size=SIZE, seed=2)  # seed 2: random weights that see an object
    stock = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        device="cpu",
        hydra_overrides_extra=[f"++model.image_size={SIZE}"],
    )
    stock.load_state_dict(ours.model.state_dict(), strict=True)
    return folder, frames, ours, stock.eval()


def _stock_run(stock, folder, add) -> list[torch.Tensor]:
    state = stock.init_state(video_path=str(folder))
    add(state)
    return [masks.clone() for _, _, masks in stock.propagate_in_video(state)]


def _our_run(ours, frames, prompt) -> list[torch.Tensor]:
    ours.reset(num_frames=len(frames))
    out = [ours.prompt(frames[0], prompt).logits]
    out += [ours.step(f).logits for f in frames[1:]]
    return out


def _compare(want, got) -> None:
    assert len(want) == len(got) == FRAMES
    worst = max((a - b).abs().max().item() for a, b in zip(want, got))
    print(f"max |logit diff| vs sam2's predictor over {FRAMES} frames: {worst:.2e}")
    for t, (a, b) in enumerate(zip(want, got)):
        assert a.shape == b.shape == (1, 1, H, W)
        diff = (a - b).abs().max().item()
        assert diff <= TOL, f"frame {t}: logits differ by {diff}"
        assert torch.equal(a > 0, b > 0), f"frame {t}: masks differ"
    # the oracle must have produced something to compare: real masks, not only no-object frames
    assert any((a > 0).any() for a in want[1:]) and any((a > -1000).all() for a in want[1:])


def test_mask_prompt_matches_sam2_video_predictor(setup):
    folder, frames, ours, stock = setup
    mask = np.zeros((H, W), bool)
    mask[20:50, 10:40] = True
    with torch.inference_mode():
        want = _stock_run(stock, folder, lambda s: stock.add_new_mask(s, 0, 1, mask))
    _compare(want, _our_run(ours, frames, Prompt(mask=mask)))


def test_points_prompt_matches_sam2_video_predictor(setup):
    folder, frames, ours, stock = setup
    points = np.array([[25.0, 35.0], [80.0, 10.0]], np.float32)
    labels = np.array([1, 0], np.int32)
    with torch.inference_mode():
        want = _stock_run(
            stock, folder, lambda s: stock.add_new_points_or_box(s, 0, 1, points=points, labels=labels)
        )
    got = _our_run(ours, frames, Prompt(points=((25.0, 35.0, 1), (80.0, 10.0, 0))))
    _compare(want, got)


def test_memory_is_a_fixed_ring_over_200_frames():
    """Prompt frame + 6 recent memories + 15 recent pointers, in the same tensors from frame 1 to frame 199."""
    rng = np.random.default_rng(0)
    tracker = SourceTracker("test", image_size=SIZE, seed=2)
    frame = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    mask = np.zeros((64, 80), bool)
    mask[10:30, 10:30] = True
    # four distinct frames encoded once and passed as shared features: the memory path is the same, the
    # image encoder (most of a step's time) runs 4 times instead of 199
    frames = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(4)]
    with torch.no_grad():
        encoded = [tracker.model.encode_frames(frame_to_tensor(f, SIZE)[None]) for f in frames]
    tracker.reset()  # live stream: unknown length
    tracker.prompt(frame, Prompt(mask=mask))
    ring = tracker.ring
    storage = {k: v.data_ptr() for k, v in tracker.buffers.items()} | {"memory": ring.memory.data_ptr()}
    held = {}
    for t in range(1, 200):
        tracker.step(frames[t % 4], features=encoded[t % 4])
        if t in (30, 199):
            held[t] = tracker.memory_bytes()
            assert {k: v.data_ptr() for k, v in tracker.buffers.items()} | {
                "memory": ring.memory.data_ptr()
            } == storage
    assert ring.slot_frame[0] == 0 and sorted(ring.slot_frame[1:]) == list(range(194, 200))
    assert ring.pointer_frame[0] == 0 and sorted(ring.pointer_frame[1:]) == list(range(185, 200))
    assert held[30] == held[199] > 0
    # the last step's memory sits in frame 199's slot, rounded to bfloat16 as sam2 stores it
    slot = list(ring.slot_frame).index(199)
    assert torch.equal(ring.memory[slot], tracker.buffers["memory"][0].to(torch.bfloat16))


@pytest.mark.parametrize(
    "prompt, message",
    [
        (Prompt(mask=np.zeros((10, 12), bool)), "empty"),
        (Prompt(mask=np.ones((10, 11), bool)), "10×11"),
        (Prompt(box=(2, 2, 13, 8)), "inside"),
        (Prompt(points=((12, 3, 1),)), "outside"),
        (Prompt(points=((3, 3, 0),)), "positive"),
        (Prompt(points=((3, 3, 2),)), "label"),
        (Prompt(), "exactly one"),
    ],
)
def test_bad_prompts_are_refused(prompt, message):
    with pytest.raises(ValueError, match=message):
        prompt.check((10, 12))


def test_step_before_prompt_is_refused():
    tracker = SourceTracker("test")
    with pytest.raises(RuntimeError, match="prompt"):
        tracker.step(np.zeros((8, 8, 3), np.uint8))
