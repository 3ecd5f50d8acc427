"""The source tracker's memory as fixed tensors written in place: what sam2's rules can ever read, no more.

Memory slots: slot 0 holds the prompt frame's memory (sam2's conditioning frame), slots 1–6 the 6 most recent
tracked frames' (frame f in slot 1 + f mod 6), stored in bfloat16 as sam2 stores them. Pointer slots: slot 0
the prompt frame's object pointer, slots 1–15 the 15 most recent frames' (frame f in slot 1 + f mod 15).
Before each step `prepare` rewrites the memory attention's feeds in place: slot memory in float32, each slot's
temporal-code index and validity, each pointer's normalised distance and validity. Nothing grows with the take.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lmeec.model.config import Preset
from lmeec.model.tracker_stages import COND_TPOS, MEMORY_SLOTS, POINTER_SLOTS

RECENT_MEMORY = MEMORY_SLOTS - 1
RECENT_POINTERS = POINTER_SLOTS - 1


class TrackerRing:
    """Prompt-frame + recent memory and pointers of one tracked object, preallocated on `device`."""

    def __init__(self, preset: Preset, device: torch.device) -> None:
        t, m, c = preset.tokens, preset.mem_dim, preset.d_model
        self.device = device
        self.memory = torch.zeros(MEMORY_SLOTS, t, m, dtype=torch.bfloat16, device=device)
        self.pointers = torch.zeros(POINTER_SLOTS, c, device=device)  # also the attention's feed
        self.slot_memory = torch.zeros(MEMORY_SLOTS, t, m, device=device)  # float32 copy fed to attention
        # frame index held by each slot (-1: empty); host-side bookkeeping of fixed size
        self.slot_frame = np.full(MEMORY_SLOTS, -1, np.int64)
        self.pointer_frame = np.full(POINTER_SLOTS, -1, np.int64)
        # the small per-step feeds: written on the host, copied to the device in place
        self._host = {
            "slot_tpos": torch.zeros(MEMORY_SLOTS, dtype=torch.int64),
            "slot_valid": torch.zeros(MEMORY_SLOTS),
            "pointer_dist": torch.zeros(POINTER_SLOTS),
            "pointer_valid": torch.zeros(POINTER_SLOTS),
        }
        self._np = {k: v.numpy() for k, v in self._host.items()}
        on_cpu = device.type == "cpu"
        self._device = self._host if on_cpu else {k: v.to(device) for k, v in self._host.items()}

    def clear(self) -> None:
        """Forget every slot (the tensors stay allocated)."""
        self.slot_frame[:] = -1
        self.pointer_frame[:] = -1

    def write_prompt(self, frame: int, memory: Tensor, pointer: Tensor) -> None:
        """The prompt frame's memory [.., T, 64] and pointer [.., 256]: the conditioning slots."""
        self._write(0, 0, frame, memory, pointer)

    def write(self, frame: int, memory: Tensor, pointer: Tensor) -> None:
        """A tracked frame's memory and pointer, over the oldest recent slot."""
        self._write(1 + frame % RECENT_MEMORY, 1 + frame % RECENT_POINTERS, frame, memory, pointer)

    def _write(self, slot: int, pointer_slot: int, frame: int, memory: Tensor, pointer: Tensor) -> None:
        self.memory[slot].copy_(memory.reshape(self.memory.shape[1:]))  # rounded to bfloat16 as sam2 stores
        self.pointers[pointer_slot].copy_(pointer.reshape(-1))
        self.slot_frame[slot] = frame
        self.pointer_frame[pointer_slot] = frame

    def prepare(self, t: int, t_diff_max: int) -> None:
        """Feeds for frame t: sam2 reads the prompt frame and frames t-1…t-6 (memory), t-1…t-t_diff_max
        (pointers); pointer distances are divided by t_diff_max = min(take length, 16) - 1."""
        if self.slot_frame[0] < 0:
            raise RuntimeError("the tracker ring has no prompt frame")
        tpos, slot_valid = self._np["slot_tpos"], self._np["slot_valid"]
        dist, pointer_valid = self._np["pointer_dist"], self._np["pointer_valid"]
        d = t - self.slot_frame
        recent = (self.slot_frame >= 0) & (d >= 1) & (d <= RECENT_MEMORY)
        recent[0] = False
        slot_valid[:] = recent
        slot_valid[0] = 1.0
        tpos[:] = np.where(recent, d - 1, 0)
        tpos[0] = COND_TPOS
        d = t - self.pointer_frame
        recent = (self.pointer_frame >= 0) & (d >= 1) & (d <= t_diff_max)
        recent[0] = True  # the prompt frame's pointer, at any distance (sam2 keeps every past cond frame's)
        pointer_valid[:] = recent
        dist[:] = np.where(recent, d, 0).astype(np.float32) / np.float32(t_diff_max)
        if self._device is not self._host:
            for name, host in self._host.items():
                self._device[name].copy_(host, non_blocking=False)
        self.slot_memory.copy_(self.memory)

    def feeds(self) -> dict[str, Tensor]:
        """The memory attention's ring inputs, by name (the same tensors for the whole take)."""
        return {"slot_memory": self.slot_memory, "pointers": self.pointers, **self._device}

    def nbytes(self) -> int:
        """Bytes of every tensor the ring holds (fixed at construction)."""
        tensors = [self.memory, self.pointers, self.slot_memory, *self._host.values()]
        if self._device is not self._host:
            tensors += list(self._device.values())
        return (
            sum(t.numel() * t.element_size() for t in tensors)
            + self.slot_frame.nbytes
            + self.pointer_frame.nbytes
        )
