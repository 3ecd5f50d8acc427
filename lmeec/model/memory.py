"""Reference memory of one take: per-view banks with compression, the temporal-index rule, the pointer ring.

Written for clarity (Python lists of per-frame tensors); the runtime's fixed-size ring buffers are
checked against it. Rules (model spec, "Memory"):
- warm-up (fewer than num_maskmem = 7 frames processed before t; skipped frames do not count): each bank
  is rebuilt from the stored memories of frames t-6 … t-1, by index (skipped frames leave holes);
- steady state: if frame t-1 was processed its memory is appended to the carried bank and the bank is
  compressed (one slot fewer), otherwise the carried bank is used unchanged. The update happens when frame
  t is processed, so a skipped frame t also drops m(t-1) from the steady-state bank, as the research code does.
  The carried bank at the first steady-state frame is the last warm-up bank, so the bank keeps the size
  warm-up ended with (6, or fewer after holes);
- pointers: target pointers of t-1 … t-(min(N,16)-1) that were processed, nearest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lmeec.model.config import Compression, MemoryConfig


def closest_pairs(bank: Tensor) -> Tensor:
    """Per token, index k of the closest consecutive slot pair (first minimum): bank [n, T, C] -> [T]."""
    distances = torch.linalg.vector_norm(bank[:-1] - bank[1:], dim=-1)  # [n-1, T]
    return torch.argmin(distances, dim=0)


def compress(bank: Tensor, mode: Compression = "drop") -> Tensor:
    """Remove one slot per token position: [n, T, C] -> [n-1, T, C].

    drop (released behaviour): the newer element m[k+1] of the closest pair is removed.
    mean (intended behaviour): m[k] becomes the pair's mean, then m[k+1] is removed.
    """
    n, tokens, _ = bank.shape
    k = closest_pairs(bank)
    positions = torch.arange(tokens, device=bank.device)
    if mode == "mean":
        bank = bank.clone()
        bank[k, positions] = (bank[k, positions] + bank[k + 1, positions]) / 2
    elif mode != "drop":
        raise ValueError(f"unknown compression {mode!r}; choose 'drop' or 'mean'")
    keep = torch.arange(n, device=bank.device)[:, None] != (k + 1)[None, :]  # [n, T]
    return bank.transpose(0, 1)[keep.T].reshape(tokens, n - 1, -1).transpose(0, 1)


def temporal_indices(num_slots: int, num_maskmem: int = 7) -> list[int]:
    """maskmem_tpos_enc index of each slot of one bank, oldest first: [num_maskmem-2-i] (5, 4, … at 7)."""
    return [num_maskmem - 2 - i for i in range(num_slots)]


def pointer_t_diff_max(num_frames: int | None, max_obj_ptrs: int = 16) -> int:
    """Normaliser of the pointer distances: min(N, 16) - 1; a live stream (N unknown) counts as N >= 16."""
    if num_frames is None:
        return max_obj_ptrs - 1
    if num_frames < 1:
        raise ValueError(f"a take needs at least one frame, got num_frames={num_frames}")
    return min(num_frames, max_obj_ptrs) - 1


@dataclass
class StoredFrame:
    """What a processed frame leaves behind: both views' memories [T, C] and the target pointer [256]."""

    source: Tensor
    target: Tensor
    pointer: Tensor


@dataclass
class MemoryView:
    """What memory attention sees at one frame."""

    source: list[Tensor]  # source bank slots, oldest first, each [T, C]
    target: list[Tensor]  # target bank slots
    pointers: list[tuple[int, Tensor]]  # (t_diff, pointer [256]), nearest first

    @property
    def empty(self) -> bool:
        return not self.source and not self.target


@dataclass
class TakeMemory:
    """Memory state of one take, advanced frame by frame through `view(t)` and `store(t, …)`."""

    config: MemoryConfig
    num_frames: int | None = None
    stored: dict[int, StoredFrame] = field(default_factory=dict)
    carried: tuple[list[Tensor], list[Tensor]] = field(default_factory=lambda: ([], []))
    processed: int = 0  # frames stored so far; skipped frames do not count

    def __post_init__(self) -> None:
        self.t_diff_max = pointer_t_diff_max(
            self.num_frames, self.config.max_obj_ptrs
        )  # validates num_frames

    @property
    def warming_up(self) -> bool:
        """Whether the next processed frame is a warm-up frame: fewer than num_maskmem frames processed."""
        return self.processed < self.config.num_maskmem

    def view(self, t: int) -> MemoryView:
        """Banks and pointers for processing frame t (updates the carried banks)."""
        if self.warming_up:
            frames = [self.stored[j] for j in range(t - self.config.bank_slots, t) if j in self.stored]
            self.carried = ([f.source for f in frames], [f.target for f in frames])
        elif t - 1 in self.stored:
            last = self.stored[t - 1]
            self.carried = tuple(
                self._append_and_compress(bank, new)
                for bank, new in zip(self.carried, (last.source, last.target))
            )
        return MemoryView(list(self.carried[0]), list(self.carried[1]), self._pointers(t))

    def store(self, t: int, source: Tensor, target: Tensor, pointer: Tensor) -> None:
        """Keep frame t's memories and pointer; forget what no later frame can reach."""
        self.stored[t] = StoredFrame(source, target, pointer)
        self.processed += 1
        horizon = max(self.config.pointer_slots, self.config.bank_slots)
        for old in [j for j in self.stored if j <= t - horizon]:
            del self.stored[old]

    def _append_and_compress(self, bank: list[Tensor], new: Tensor) -> list[Tensor]:
        stacked = torch.stack([*bank, new])
        if stacked.shape[0] < 2:  # only after a warm-up with every frame skipped: nothing to merge yet
            return [new]
        return list(compress(stacked, self.config.compression).unbind(0))

    def _pointers(self, t: int) -> list[tuple[int, Tensor]]:
        out = []
        for t_diff in range(1, self.t_diff_max + 1):
            if t - t_diff < 0:
                break
            if t - t_diff in self.stored:
                out.append((t_diff, self.stored[t - t_diff].pointer))
        return out
