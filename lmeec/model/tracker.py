"""`Correspondence`: the reference tracker, one synchronised frame pair at a time."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmeec.model.checkpoint import is_random, load_into, random_weights_warning, weights_provenance
from lmeec.model.config import Compression, Preset, SourceMask, get_preset
from lmeec.model.memory import TakeMemory, temporal_indices
from lmeec.model.network import LMEEC, FrameFeatures, build_model
from lmeec.model.preprocess import (
    FrameClock,
    check_step_objects,
    encode_source_mask,
    frame_to_tensor,
    mask_to_input,
)

VISIBLE_AREA = 0.001  # research rule: visible if the mask covers more than 0.1 % of the frame


@dataclass
class StepResult:
    """Output of one step. Mask fields are None when the frame was skipped (empty or missing source mask)."""

    frame_index: int
    skipped: bool
    mask: np.ndarray | None = None  # bool [H, W] at the target's native size
    mask_model: np.ndarray | None = None  # bool [S, S] at the model's input size (480 for the paper)
    logits: np.ndarray | None = None  # float32 [S, S]
    low_res_logits: np.ndarray | None = None  # float32 [S/4, S/4]
    object_score: float | None = None  # decoder's object-score logit
    confidence: float | None = None  # sigmoid(object_score)
    visible: bool | None = None  # research rule: mask area > 0.1 %
    iou: float | None = None  # decoder's predicted IoU
    bank_sizes: tuple[int, int] = (0, 0)  # (source, target) slots attended this frame
    pointer_t_diffs: tuple[int, ...] = ()  # distances of the pointers attended, nearest first


class Correspondence:
    """Segment, in the target view, the object whose mask is given in the source view, frame by frame.

    >>> tracker = Correspondence("b+", "lmeec.pt", device="cuda")
    >>> tracker.reset(num_frames=len(frames))          # omit num_frames for a live stream
    >>> result = tracker.step(ego_rgb, ego_mask, exo_rgb)

    Several objects share each frame pair's image encoding; each keeps its own banks and pointers:
    >>> tracker.reset(num_frames=len(frames), num_objects=3)
    >>> results = tracker.step(ego_rgb, ego_masks, exo_rgb)   # masks [3, H, W] -> list of 3 StepResult
    """

    def __init__(
        self,
        preset: str | Preset = "b+",
        checkpoint: str | Path | None = None,
        device: str | torch.device = "cpu",
        compression: Compression | None = None,
        source_mask: SourceMask | None = None,
        seed: int = 0,
    ) -> None:
        """checkpoint=None gives seeded random weights (for tests and demos only).

        compression / source_mask override the research behaviours ("drop", "research") with their fixes.
        """
        preset = get_preset(preset)
        if compression is not None:
            preset = preset.with_compression(compression)
        if source_mask is not None:
            preset = preset.with_source_mask(source_mask)
        self.preset = preset
        self.device = torch.device(device)
        self.model: LMEEC = build_model(preset, seed=seed, device=self.device)
        ckpt = load_into(self.model, checkpoint) if checkpoint is not None else None
        self.weights = weights_provenance(ckpt, seed)  # random + seed, or file + sha256
        if is_random(self.weights):
            warnings.warn(random_weights_warning(self.weights), stacklevel=2)
        self.reset()

    def reset(self, num_frames: int | None = None, num_objects: int = 1) -> None:
        """Start a new take; pass its length when known (it sets the pointers' t_diff_max) and how many
        objects each step carries masks for (each gets its own memory)."""
        if num_objects < 1:
            raise ValueError(f"num_objects must be at least 1, got {num_objects}")
        self.clock = FrameClock(num_frames)
        self.memories = [TakeMemory(self.preset.memory, num_frames) for _ in range(num_objects)]

    @property
    def num_objects(self) -> int:
        return len(self.memories)

    @property
    def memory(self) -> TakeMemory:
        """The first object's memory (the only one in a single-object take)."""
        return self.memories[0]

    @property
    def frame_index(self) -> int:
        """Index of the next frame."""
        return self.clock.index

    @torch.inference_mode()
    def encode(self, source_frame: np.ndarray, target_frame: np.ndarray) -> FrameFeatures:
        """Image-encoder features of a checked [source, target] pair (shareable with the source tracker)."""
        size = self.preset.image_size
        images = torch.stack([frame_to_tensor(source_frame, size), frame_to_tensor(target_frame, size)])
        return self.model.encode_frames(images.to(self.device))

    @torch.inference_mode()
    def step(
        self,
        source_frame: object,
        source_masks: object,
        target_frame: object,
        features: FrameFeatures | None = None,
    ) -> StepResult | list[StepResult]:
        """Process the next synchronised pair.

        source_masks: one bool H×W mask (K = 1; returns one StepResult), or K masks as [K, H, W] or a
        sequence (returns a list of K StepResult, in object order). An object whose mask is empty or None
        is skipped at this frame, for that object only; both frames are encoded once for all objects.
        `features`: this pair's `encode` output when already computed (prompted mode with a shared encoder).
        """
        source, masks, target, single = check_step_objects(
            source_frame, source_masks, target_frame, self.num_objects
        )
        t = self.clock.advance()
        results = [StepResult(frame_index=t, skipped=True) for _ in masks]
        active = [k for k, m in enumerate(masks) if m is not None and m.any()]
        if active:
            frames = features if features is not None else self.encode(source, target)
            for k in active:
                results[k] = self._step_object(t, self.memories[k], frames, masks[k], target.shape[:2])
        return results[0] if single else results

    def _step_object(
        self, t: int, memory: TakeMemory, frames: FrameFeatures, mask: np.ndarray, target_hw: tuple[int, int]
    ) -> StepResult:
        """One object's step at frame t over the shared image encoding (its own banks and pointers)."""
        model, size = self.model, self.preset.image_size
        src, tgt = frames.select(0), frames.select(1)

        positive = torch.ones(1, 1, device=self.device)  # the source mask is taken as present
        mask_in = encode_source_mask(mask_to_input(mask, size, t).to(self.device), self.preset.source_mask)
        src_mem, mem_pos = model.encode_memory(src.feats, mask_in, positive)
        f_view = model.attend(tgt.feats, tgt.pos, _tokens(src_mem), _tokens(mem_pos))

        view = memory.view(t)
        if view.empty:
            fused = f_view  # frame 0 (or no stored memory yet): the view expert alone
        else:
            keys, keys_pos, n_ptr = self._bank_sequence(view, _tokens(mem_pos), memory.t_diff_max)
            f_mem = model.attend(tgt.feats, tgt.pos, keys, keys_pos, num_pointer_tokens=n_ptr)
            fused = model.fuse(f_mem, f_view)

        decoded = model.decode(fused, tgt.feat_s0, tgt.feat_s1)
        logits = model.upsample(decoded.low_res_logits)
        native = model.upsample(decoded.low_res_logits, size=target_hw)
        tgt_mem, _ = model.encode_memory(tgt.feats, logits, decoded.object_score)
        memory.store(t, _tokens(src_mem)[:, 0], _tokens(tgt_mem)[:, 0], decoded.pointer[0])

        mask_model = (logits[0, 0] > 0).cpu().numpy()
        score = float(decoded.object_score)
        return StepResult(
            frame_index=t,
            skipped=False,
            mask=(native[0, 0] > 0).cpu().numpy(),
            mask_model=mask_model,
            logits=logits[0, 0].float().cpu().numpy(),
            low_res_logits=decoded.low_res_logits[0, 0].float().cpu().numpy(),
            object_score=score,
            confidence=float(torch.sigmoid(decoded.object_score)),
            visible=bool(mask_model.mean() > VISIBLE_AREA),
            iou=float(decoded.iou),
            bank_sizes=(len(view.source), len(view.target)),
            pointer_t_diffs=tuple(d for d, _ in view.pointers),
        )

    def _bank_sequence(self, view, slot_pos: Tensor, t_diff_max: int) -> tuple[Tensor, Tensor, int]:
        """Memory-expert keys: source slots, target slots, pointer tokens, with their encodings [M, 1, 64]."""
        tpos = self.model.maskmem_tpos_enc  # [num_maskmem, 1, 1, 64]
        memory, memory_pos = [], []
        for bank in (view.source, view.target):  # the temporal index restarts for each bank
            for slot, index in zip(bank, temporal_indices(len(bank), self.preset.memory.num_maskmem)):
                memory.append(slot[:, None])
                memory_pos.append(slot_pos + tpos[index])
        n_ptr = 0
        if view.pointers:
            t_diffs = torch.tensor([d for d, _ in view.pointers], device=self.device)
            pointers = torch.stack([p for _, p in view.pointers])
            tokens, pos = self.model.pointer_tokens(pointers, t_diffs, t_diff_max)
            memory.append(tokens[:, None])
            memory_pos.append(pos[:, None])
            n_ptr = tokens.shape[0]
        return torch.cat(memory), torch.cat(memory_pos), n_ptr


def _tokens(x: Tensor) -> Tensor:
    """[B, C, H, W] -> [HW, B, C] token sequence."""
    return x.flatten(2).permute(2, 0, 1)
