"""Fixed-size memory on the device: both views' bank slots, their in-place compression, the pointer ring.

Nothing here grows with the take: slots are [2 views, 7, T, 64] (6 kept + 1 incoming, oldest first), the
pointer ring is 15 × 256 inside the bank-attention input, and compression works through preallocated
scratch tensors with out= operations. Several objects: `ObjectRings` holds [K, 2, 7, T, 64] slots, one
`BankRing` per object over its rows. The rules are the reference's (lmeec.model.memory), checked by tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lmeec.model.config import Compression, Preset
from lmeec.model.memory import pointer_t_diff_max, temporal_indices
from lmeec.model.network import POINTER_SPLIT

VIEWS = 2  # 0 = source bank, 1 = target bank


@dataclass
class CompressScratch:
    """Preallocated work tensors for `compress_` on [V, K+1, T, C] slots."""

    diff: Tensor  # [V, K, T, C]
    dist: Tensor  # [V, K, T]
    closest: Tensor  # [V, T] int64
    ages: Tensor  # [1, K, 1] int64: 0 … K-1
    shift: Tensor  # [V, K, T] bool
    index: Tensor  # [V, K, T] int64
    gathered: Tensor  # [V, K, T, C]
    pair: Tensor  # [V, 1, T, C]
    pair_next: Tensor  # [V, 1, T, C]
    closest_next: Tensor  # [V, T] int64

    @classmethod
    def allocate(
        cls, views: int, kept: int, tokens: int, channels: int, device: torch.device
    ) -> CompressScratch:
        f = dict(device=device, dtype=torch.float32)
        i = dict(device=device, dtype=torch.int64)
        return cls(
            diff=torch.empty(views, kept, tokens, channels, **f),
            dist=torch.empty(views, kept, tokens, **f),
            closest=torch.empty(views, tokens, **i),
            ages=torch.arange(kept, **i).view(1, kept, 1),
            shift=torch.empty(views, kept, tokens, device=device, dtype=torch.bool),
            index=torch.empty(views, kept, tokens, **i),
            gathered=torch.empty(views, kept, tokens, channels, **f),
            pair=torch.empty(views, 1, tokens, channels, **f),
            pair_next=torch.empty(views, 1, tokens, channels, **f),
            closest_next=torch.empty(views, tokens, **i),
        )


def compress_(slots: Tensor, n: int, mode: Compression, scratch: CompressScratch) -> None:
    """In place: the n+1 oldest-first slots [V, :n+1, T, C] become n, per token (see model.memory.compress)."""
    v, _, t, c = slots.shape
    dist = scratch.dist[:, :n]
    torch.sub(slots[:, :n], slots[:, 1 : n + 1], out=scratch.diff[:, :n])
    torch.linalg.vector_norm(scratch.diff[:, :n], dim=-1, out=dist)
    torch.argmin(dist, dim=1, out=scratch.closest)  # first minimum on ties, as the reference
    if mode == "mean":
        at_k = scratch.closest[:, None, :, None].expand(v, 1, t, c)
        torch.add(scratch.closest, 1, out=scratch.closest_next)
        torch.gather(slots, 1, at_k, out=scratch.pair)
        torch.gather(
            slots, 1, scratch.closest_next[:, None, :, None].expand(v, 1, t, c), out=scratch.pair_next
        )
        scratch.pair.add_(scratch.pair_next).mul_(0.5)
        slots.scatter_(1, at_k, scratch.pair)
    elif mode != "drop":
        raise ValueError(f"unknown compression {mode!r}")
    # slot j keeps element j below the removed one (k+1) and takes element j+1 from there on
    torch.gt(scratch.ages[:, :n], scratch.closest[:, None, :], out=scratch.shift[:, :n])
    torch.add(scratch.ages[:, :n], scratch.shift[:, :n], out=scratch.index[:, :n])
    index = scratch.index[:, :n, :, None].expand(v, n, t, c)
    torch.gather(slots, 1, index, out=scratch.gathered[:, :n])
    slots[:, :n].copy_(scratch.gathered[:, :n])


@dataclass
class RingStorage:
    """Where one object's ring lives: its slots and its rows of the bank-attention inputs (views of the
    [K, …] tensors of `ObjectRings`, or tensors of its own)."""

    slots: Tensor  # [2, 7, T, C]
    bank: Tensor  # [1, keys, C]
    slot_valid: Tensor  # [12]
    pointer_dist: Tensor  # [15]
    pointer_valid: Tensor  # [15]
    scratch: CompressScratch


class BankRing:
    """The take's memory: slots, counts and the bank-attention inputs, all preallocated on the device."""

    def __init__(self, preset: Preset, device: torch.device, storage: RingStorage | None = None) -> None:
        mem = preset.memory
        self.preset, self.device = preset, device
        self.kept, self.tokens, self.channels = mem.bank_slots, preset.tokens, preset.mem_dim
        self.warmup = mem.num_maskmem
        self.compression: Compression = mem.compression
        if storage is None:  # a ring of its own
            storage = ObjectRings(preset, device, 1).rings[0].storage
        self.storage = storage
        self.slots, self.scratch, self.bank = storage.slots, storage.scratch, storage.bank
        n_ptr = mem.pointer_slots
        self.bank_slots = self.bank[0, : VIEWS * self.kept * self.tokens].view(
            VIEWS, self.kept, self.tokens, -1
        )
        self.pointers = self.bank[0, VIEWS * self.kept * self.tokens :].view(
            n_ptr, POINTER_SPLIT * self.channels
        )
        tpos = temporal_indices(self.kept, mem.num_maskmem) * VIEWS  # oldest-first slots: constant per slot
        self.slot_tpos = torch.tensor(tpos, device=device, dtype=torch.int64)
        self.slot_valid = storage.slot_valid
        self.pointer_dist = storage.pointer_dist
        self.pointer_valid = storage.pointer_valid
        pin = device.type == "cuda"
        self._host = torch.zeros(
            VIEWS * self.kept + 2 * n_ptr, pin_memory=pin
        )  # staging for the small inputs
        self._host_np = self._host.numpy()
        self.reset()

    def reset(self, num_frames: int | None = None) -> None:
        self.count = 0  # kept slots per view (the views always hold the same number)
        self.processed = 0  # frames taken through `update` so far; skipped frames do not count
        self.pending: int | None = None  # frame whose memories sit in the incoming slot
        self.slot_frames = np.zeros(self.kept + 1, dtype=np.int64)  # frame of each slot during warm-up
        self.pointer_frames = np.full(self.pointers.shape[0], -(10**9), dtype=np.int64)
        self.t_diff_max = pointer_t_diff_max(num_frames, self.preset.memory.max_obj_ptrs)

    @property
    def warming_up(self) -> bool:
        """Whether the next processed frame is a warm-up frame: fewer than num_maskmem frames processed."""
        return self.processed < self.warmup

    def incoming(self, view: int) -> Tensor:
        """Where the pending frame's memory of a view is written before `update` takes it in: slot `count`."""
        return self.slots[view, self.count]

    def update(self, t: int) -> None:
        """Bring the banks to processed frame t's, then make t the pending frame (model spec, "Memory").

        The incoming slot must hold the pending frame p's memories (both views). Warm-up: p is appended and
        the slots of frames before t-6 are evicted, so the banks are the stored frames t-6 … t-1. Steady
        state: if p = t-1 it is appended and compression removes one slot, otherwise nothing changes.
        """
        p, changed = self.pending, False
        if p is not None and self.warming_up:
            self.slot_frames[self.count] = p
            self.count += 1
            self._evict_before(t - self.kept)
            changed = True
        elif p is not None and p == t - 1:
            if self.count:
                compress_(self.slots, self.count, self.compression, self.scratch)
            else:  # warm-up ended with empty banks: nothing to merge with yet, as the reference
                self.count = 1
            changed = True
        if changed:
            self.bank_slots.copy_(self.slots[:, : self.kept])
        self.pending = t
        self.processed += 1

    def _evict_before(self, first: int) -> None:
        """Drop the oldest slots whose frames precede `first` (warm-up only), moving the rest down in place."""
        drop = int(np.count_nonzero(self.slot_frames[: self.count] < first))  # oldest first: a prefix
        if not drop:
            return
        for i in range(self.count - drop):
            self.slots[:, i].copy_(self.slots[:, i + drop])
        self.slot_frames[: self.count - drop] = self.slot_frames[drop : self.count]
        self.count -= drop

    def pointer_slot(self, t: int) -> Tensor:
        """Ring slot receiving frame t's pointer (it held t-15's, which frame t+1 no longer reaches)."""
        self.pointer_frames[t % len(self.pointer_frames)] = t
        return self.pointers[t % len(self.pointer_frames)]

    def prepare(self, t: int) -> tuple[int, ...]:
        """Write slot validity and pointer distances for frame t; return the attended t_diffs, nearest first."""
        n_slots = VIEWS * self.kept
        host = self._host_np
        valid = host[:n_slots].reshape(VIEWS, self.kept)
        valid[:] = 0.0
        valid[:, : self.count] = 1.0
        t_diff = t - self.pointer_frames
        reach = (t_diff >= 1) & (t_diff <= self.t_diff_max)
        host[n_slots : n_slots + len(t_diff)] = np.where(
            reach,
            t_diff.astype(np.float32) / np.float32(max(self.t_diff_max, 1)),
            0.0,  # 0 on a 1-frame take
        )
        host[n_slots + len(t_diff) :] = reach
        self.slot_valid.copy_(self._host[:n_slots], non_blocking=True)
        self.pointer_dist.copy_(self._host[n_slots : n_slots + len(t_diff)], non_blocking=True)
        self.pointer_valid.copy_(self._host[n_slots + len(t_diff) :], non_blocking=True)
        return tuple(sorted(int(d) for d in t_diff[reach]))


class ObjectRings:
    """K objects' rings over shared tensors: slots [K, 2, 7, T, C] with per-object counts, and the batched
    bank-attention inputs bank [K, keys, C], slot_valid [K, 12], pointer_dist / pointer_valid [K, 15].

    Each object's `BankRing` works on its own rows (own counts, compression per object and view), so an
    object's memory evolves exactly as in a pass of its own."""

    def __init__(self, preset: Preset, device: torch.device, objects: int) -> None:
        mem = preset.memory
        kept, tokens, channels, n_ptr = mem.bank_slots, preset.tokens, preset.mem_dim, mem.pointer_slots
        f = dict(device=device, dtype=torch.float32)
        self.slots = torch.zeros(objects, VIEWS, kept + 1, tokens, channels, **f)
        self.bank = torch.zeros(objects, VIEWS * kept * tokens + n_ptr * POINTER_SPLIT, channels, **f)
        self.slot_valid = torch.zeros(objects, VIEWS * kept, **f)
        self.pointer_dist = torch.zeros(objects, n_ptr, **f)
        self.pointer_valid = torch.zeros(objects, n_ptr, **f)
        scratch = CompressScratch.allocate(
            VIEWS, kept, tokens, channels, device
        )  # used by one ring at a time
        self.rings = [
            BankRing(
                preset,
                device,
                RingStorage(
                    self.slots[k],
                    self.bank[k : k + 1],
                    self.slot_valid[k],
                    self.pointer_dist[k],
                    self.pointer_valid[k],
                    scratch,
                ),
            )
            for k in range(objects)
        ]
        self.slot_tpos = self.rings[0].slot_tpos

    def __getitem__(self, k: int) -> BankRing:
        return self.rings[k]

    def __len__(self) -> int:
        return len(self.rings)

    def reset(self, num_frames: int | None = None) -> None:
        for ring in self.rings:
            ring.reset(num_frames)
