"""Source-view tracking from one prompt: SAM 2.1 video object segmentation with a bounded memory.

The rules are those of sam2's `SAM2VideoPredictor` (its `track_step` runs every frame): the prompt frame is the
conditioning memory, the 6 most recent frames are the recent memory, up to 16 object pointers (the prompt
frame's and those of the 15 previous frames), its prompt encoder, mask decoder and no-object rule, and its
post-processing flags (stability fallback to multi-mask, binarised prompt masks in memory, bf16 memory
features). Differences, both deliberate: the stock predictor keeps every frame's state, this tracker keeps a
fixed ring (`TrackerRing`: the prompt frame's memory and pointer, the last 6 frames' memory, the last 15
frames' pointers: all that the rules can ever read) and attends over all of it with empty slots masked (the
same result up to float summation order); and sam2's small-hole filling (a CUDA extension, skipped by sam2
itself without it) is not applied.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmeec.model.checkpoint import MOE_PREFIX, Checkpoint, check_fit, read_checkpoint
from lmeec.model.config import HIERA_B_PLUS, HIERA_L, HIERA_S, HIERA_T, Preset, get_preset
from lmeec.model.network import SAM21, FrameFeatures, seeded
from lmeec.model.preprocess import check_frame, frame_to_tensor, mask_to_input
from lmeec.model.tracker_ring import TrackerRing
from lmeec.model.tracker_stages import build_tracker_stages

# Who runs a tracker stage: (graph, feeds, fetches) -> a no-argument runner (a runtime backend's `bind`).
Bind = Callable[[str, dict[str, Tensor], dict[str, Tensor]], Callable[[], None]]

TRACKER_TRUNKS = {"t": HIERA_T, "s": HIERA_S, "b+": HIERA_B_PLUS, "l": HIERA_L}
TRAINED_SIZE = 1024  # SAM 2.1 checkpoints were trained at 1024×1024
STREAM_LENGTH = sys.maxsize  # unknown length: pointer distances are normalised by 15, as for long takes

# What sam2's build_sam2_video_predictor(apply_postprocessing=True) sets on top of the SAM 2.1 config.
PREDICTOR_FLAGS = {
    "binarize_mask_from_pts_for_mem_enc": True,
    "sam_mask_decoder_extra_args": {
        "dynamic_multimask_via_stability": True,
        "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98,
    },
}


def tracker_preset(trunk: str, image_size: int | None = None) -> Preset:
    """The tracker's model configuration: a SAM 2.1 trunk (t, s, b+, l or test) at an image size (multiple of 16)."""
    if trunk == "test":
        base = get_preset("test")
        size = image_size or base.image_size
        return Preset("tracker-test", base.trunk, image_size=size)
    if trunk not in TRACKER_TRUNKS:
        raise ValueError(f"unknown tracker size {trunk!r}; choose one of {', '.join(TRACKER_TRUNKS)}, test")
    size = image_size or TRAINED_SIZE
    if size % 16 or size < 64:
        raise ValueError(f"tracker image size must be a multiple of 16 and at least 64, got {size}")
    return Preset(f"tracker-{trunk}", TRACKER_TRUNKS[trunk], image_size=size)


@dataclass(frozen=True)
class Prompt:
    """What the user gives on one source frame: a mask, or a box and/or points (x, y, label 1 = on, 0 = off)."""

    mask: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float, int], ...] = ()

    def check(self, hw: tuple[int, int]) -> None:
        """Refuse prompts that cannot describe an object in an H×W frame."""
        h, w = hw
        given = [self.mask is not None, self.box is not None or bool(self.points)]
        if sum(given) != 1:
            raise ValueError("a prompt is either a mask, or a box and/or points (exactly one kind)")
        if self.mask is not None:
            if self.mask.shape != (h, w):
                raise ValueError(
                    f"prompt mask is {self.mask.shape[0]}×{self.mask.shape[1]}, the frame is {h}×{w}"
                )
            if not self.mask.any():
                raise ValueError("prompt mask is empty: it marks no pixel of the object")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise ValueError(
                    f"prompt box {self.box} is not a box inside the {w}×{h} frame (x0<x1, y0<y1)"
                )
        for x, y, label in self.points:
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"prompt point ({x}, {y}) lies outside the {w}×{h} frame")
            if label not in (0, 1):
                raise ValueError(f"prompt point label must be 1 (object) or 0 (background), got {label}")
        if self.box is None and self.points and not any(lab == 1 for _, _, lab in self.points):
            raise ValueError("prompt points need at least one positive point (label 1)")


@dataclass
class SourceResult:
    """The tracked source mask of one frame."""

    frame_index: int
    mask: np.ndarray  # bool [H, W] at the source frame's size
    logits: Tensor  # float32 [1, 1, H, W] (the predictor's video-resolution scores)
    low_res_logits: Tensor  # float32 [1, 1, S/4, S/4]
    object_score: float  # logit; the object is taken as absent at <= 0 (its mask is then empty)


class SourceTracker:
    """SAM 2.1 video object segmentation of one object in the source view, one frame at a time.

    Every frame after the prompt frame runs the static-shape tracker stages (`tracker_stages`) over fixed
    buffers and the fixed ring (`TrackerRing`); `bind` chooses who runs them (default: these PyTorch modules
    eagerly; `bind()` hands them to a runtime backend). The prompt frame, once per take, runs sam2's own
    `track_step` on this model (variable-length point prompts, the mask-as-output path).

    >>> tracker = SourceTracker("t", "sam2.1_hiera_tiny.pt")
    >>> tracker.reset(num_frames=n)          # omit for a live stream
    >>> first = tracker.prompt(frame0, Prompt(box=(10, 20, 90, 120)))
    >>> later = tracker.step(frame1)
    """

    def __init__(
        self,
        trunk: str = "t",
        checkpoint: str | Path | None = None,
        image_size: int | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        """checkpoint=None gives seeded random weights (tests and demos only)."""
        self.preset = tracker_preset(trunk, image_size)
        self.device = torch.device(device)
        self.model: SAM21 = seeded(SAM21, self.preset, seed, self.device, **PREDICTOR_FLAGS)
        self.checkpoint = load_tracker_weights(self.model, checkpoint) if checkpoint is not None else None
        self.stages = build_tracker_stages(self.model)
        self.ring = TrackerRing(self.preset, self.device)
        self.buffers = dict(self.ring.feeds())
        for stage in self.stages.values():
            for spec in (*stage.inputs(), *stage.outputs()):
                if spec.name not in self.buffers:
                    dtype = getattr(torch, spec.dtype)
                    self.buffers[spec.name] = torch.zeros(spec.shape, dtype=dtype, device=self.device)
        self.bind(self._bind_eager)
        self.reset()

    def bind(self, bind: Bind) -> None:
        """Let `bind` (e.g. a runtime backend's) run the stages over this tracker's buffers from now on."""
        self._runners = {
            name: bind(
                name,
                {s.name: self.buffers[s.name] for s in stage.inputs()},
                {s.name: self.buffers[s.name] for s in stage.outputs()},
            )
            for name, stage in self.stages.items()
        }

    def _bind_eager(
        self, graph: str, feeds: dict[str, Tensor], fetches: dict[str, Tensor]
    ) -> Callable[[], None]:
        stage = self.stages[graph]
        args = [feeds[s.name] for s in stage.inputs()]
        outs = [fetches[s.name] for s in stage.outputs()]

        def run() -> None:
            result = stage(*args)
            for out, value in zip(outs, result if isinstance(result, tuple) else (result,), strict=True):
                out.copy_(value)

        return run

    def reset(self, num_frames: int | None = None) -> None:
        """Forget the take; its length (when known) bounds the pointer distances as in sam2."""
        self.num_frames = num_frames
        self.index: int | None = None  # next frame index; None until prompted
        self.ring.clear()

    @torch.inference_mode()
    def prompt(
        self, frame: object, prompt: Prompt, frame_index: int = 0, features: FrameFeatures | None = None
    ) -> SourceResult:
        """Start tracking from a prompt on this frame (it becomes the conditioning memory)."""
        frame = check_frame(frame, "source frame")
        prompt.check(frame.shape[:2])
        self.reset(self.num_frames)
        s, (h, w) = self.model.image_size, frame.shape[:2]
        mask_inputs = point_inputs = None
        if prompt.mask is not None:
            mask_inputs = mask_to_input(prompt.mask, s).to(self.device)
        else:
            coords = [] if prompt.box is None else [prompt.box[:2], prompt.box[2:]]
            labels = [] if prompt.box is None else [2, 3]  # sam2: a box is two corner points labelled 2, 3
            coords += [(x, y) for x, y, _ in prompt.points]
            labels += [lab for _, _, lab in prompt.points]
            xy = torch.tensor(coords, dtype=torch.float32) / torch.tensor([w, h]) * s
            point_inputs = {
                "point_coords": xy[None].to(self.device),
                "point_labels": torch.tensor([labels], dtype=torch.int32, device=self.device),
            }
        self._encode(frame, features)
        b = self.buffers
        levels = (b["feat_s0"], b["feat_s1"], b["feats"])
        feats = [x.flatten(2).permute(2, 0, 1) for x in levels]
        pos = [None, None, self.stages["tracker_memory_attention"].get_buffer("feat_pos")]
        sizes = [tuple(x.shape[-2:]) for x in levels]
        out = self.model.track_step(
            frame_idx=frame_index,
            is_init_cond_frame=True,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            num_frames=self._length,
            run_mem_encoder=False,
        )
        # sam2 encodes a prompted frame's memory from its low-res mask, upsampled and binarised
        high_res = F.interpolate(out["pred_masks"], size=(s, s), mode="bilinear", align_corners=False)
        memory, _ = self.model._encode_new_memory(
            feats, sizes, high_res, out["object_score_logits"], is_mask_from_pts=True
        )
        self.ring.write_prompt(frame_index, memory.flatten(2).transpose(1, 2), out["obj_ptr"])
        self.index = frame_index + 1
        return self._result(frame_index, out["pred_masks"], out["object_score_logits"], (h, w))

    @torch.inference_mode()
    def step(self, frame: object, features: FrameFeatures | None = None) -> SourceResult:
        """Track into the next frame from the prompt frame's and the recent frames' memory in the ring."""
        if self.index is None:
            raise RuntimeError(
                "the source tracker has no prompt yet: call prompt() on the prompt frame first"
            )
        frame = check_frame(frame, "source frame")
        t = self.index
        if self.num_frames is not None and t >= self.num_frames:
            raise ValueError(f"the take was declared with {self.num_frames} frames; call reset() first")
        self._encode(frame, features)
        self.ring.prepare(t, min(self._length, self.model.max_obj_ptrs_in_encoder) - 1)
        for name in ("tracker_memory_attention", "tracker_decoder", "tracker_memory_encoder"):
            self._runners[name]()
        b = self.buffers
        self.ring.write(t, b["memory"], b["pointer"])
        self.index = t + 1
        return self._result(t, b["low_res_logits"], b["object_score"], frame.shape[:2])

    @property
    def _length(self) -> int:
        return self.num_frames if self.num_frames is not None else STREAM_LENGTH

    def _encode(self, frame: np.ndarray, features: FrameFeatures | None) -> None:
        """Fill the frame-feature buffers: run the image-encoder stage, or copy shared features in."""
        b = self.buffers
        if features is None:
            b["images"].copy_(frame_to_tensor(frame, self.model.image_size)[None])
            self._runners["tracker_image_encoder"]()
            return
        for name in ("feat_s0", "feat_s1", "feats"):
            b[name].copy_(getattr(features, name))

    def _result(self, t: int, low_res: Tensor, score: Tensor, hw: tuple[int, int]) -> SourceResult:
        low = low_res.float().clone()
        logits = F.interpolate(low, size=hw, mode="bilinear", align_corners=False)
        return SourceResult(t, (logits[0, 0] > 0).cpu().numpy(), logits, low, float(score))

    def memory_bytes(self) -> int:
        """Bytes held by the tracker's memory (the fixed ring), to show it stays flat."""
        return self.ring.nbytes()


def load_tracker_weights(model: SAM21, path: str | Path) -> Checkpoint:
    """Load a SAM 2.1 (or LM-EEC, whose MV-MoE is ignored) checkpoint, refusing any mismatch."""
    ckpt = read_checkpoint(path)
    state = {k: v for k, v in ckpt.state_dict.items() if not k.startswith(MOE_PREFIX)}
    report = check_fit(state, model.preset, allow_missing_moe=True)
    if not report.fits:
        raise ValueError(f"{ckpt.path} does not fit tracker {model.preset.name!r}: {report.describe()}")
    model.load_state_dict(state, strict=True)
    return ckpt
