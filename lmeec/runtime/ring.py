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

from lmeec.kernels.compress import compress
from lmeec.kernels.triton_support import Impl, choose
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


@dataclass(frozen=True)
class RingPlan:
    """The device work of one update, decided on the host: slot indices and counts only (hashable, so a
    captured step can be keyed by it)."""

    incoming: int  # slot holding the pending frame's memories before the update (count before)
    count: int  # kept slots after the update (frame t's own source memory lands in slot `count`)
    drop: int = 0  # warm-up: oldest slots evicted, the `count` others moved down
    compress: int = 0  # steady state: n slots + the incoming one compressed into n
    mirror: bool = False  # the bank-attention input refreshed from the slots


class BankRing:
    """The take's memory: slots, counts and the bank-attention inputs, all preallocated on the device."""

    def __init__(
        self,
        preset: Preset,
        device: torch.device,
        storage: RingStorage | None = None,
        kernels: Impl = "torch",
    ) -> None:
        """kernels: "torch" compresses with `compress_` (the default path), "auto"/"triton" with the one-launch
        `lmeec.kernels.compress` where Triton runs (it also refreshes the bank mirror)."""
        mem = preset.memory
        self.preset, self.device = preset, device
        self.kept, self.tokens, self.channels = mem.bank_slots, preset.tokens, preset.mem_dim
        self.warmup = mem.num_maskmem
        self.compression: Compression = mem.compression
        if storage is None:  # a ring of its own
            storage = ObjectRings(preset, device, 1).rings[0].storage
        self.fused = choose(kernels, device) == "triton"
        # kept-slot counts as device ints: the compression kernel reads n from one of them
        self._counts = torch.arange(self.kept + 1, dtype=torch.int32, device=device) if self.fused else None
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
        self._pointer_slot_host = torch.zeros(1, dtype=torch.int64, pin_memory=pin)
        self._pointer_slot_np = self._pointer_slot_host.numpy()
        self.pointer_slot = torch.zeros(1, dtype=torch.int64, device=device)  # frame t's slot in the ring
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
        """Bring the banks to processed frame t's (`plan` on the host, then `apply` on the device)."""
        self.apply(self.plan(t))

    def plan(self, t: int) -> RingPlan:
        """Host bookkeeping of the update to frame t (model spec, "Memory"); returns the device work.

        The incoming slot must hold the pending frame p's memories (both views). Warm-up: p is appended and
        the slots of frames before t-6 are evicted, so the banks are the stored frames t-6 … t-1. Steady
        state: if p = t-1 it is appended and compression removes one slot, otherwise nothing changes.
        Every decision reads host ints driven by the frame clock, never a device value.
        """
        p, incoming = self.pending, self.count
        drop = compress = 0
        changed = False
        if p is not None and self.warming_up:
            self.slot_frames[self.count] = p
            self.count += 1
            first = t - self.kept
            drop = int(np.count_nonzero(self.slot_frames[: self.count] < first))  # oldest first: a prefix
            self.slot_frames[: self.count - drop] = self.slot_frames[drop : self.count]
            self.count -= drop
            changed = True
        elif p is not None and p == t - 1:
            if self.count:
                compress = self.count
            else:  # warm-up ended with empty banks: nothing to merge with yet, as the reference
                self.count = 1
            changed = True
        self.pending = t
        self.processed += 1
        return RingPlan(incoming=incoming, count=self.count, drop=drop, compress=compress, mirror=changed)

    def apply(self, plan: RingPlan) -> None:
        """The device side of an update: warm-up eviction (slots moved down), compression, the bank mirror."""
        if plan.drop:
            for i in range(plan.count):
                self.slots[:, i].copy_(self.slots[:, i + plan.drop])
        if plan.compress and self.fused:  # compression and the bank mirror in one launch
            n = plan.compress
            compress(self.slots, self._counts[n : n + 1], self.compression, self.bank_slots, impl="triton")
            return
        if plan.compress:
            compress_(self.slots, plan.compress, self.compression, self.scratch)
        if plan.mirror:
            self.bank_slots.copy_(self.slots[:, : self.kept])

    def stage(self, t: int) -> tuple[int, ...]:
        """Host: slot validity, pointer distances and frame t's pointer slot into the pinned staging buffers
        (`upload` moves them); returns the attended t_diffs, nearest first."""
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
        # frame t's pointer replaces t-15's, which frame t+1 no longer reaches
        slot = t % len(self.pointer_frames)
        self.pointer_frames[slot] = t
        self._pointer_slot_np[0] = slot
        return tuple(sorted(int(d) for d in t_diff[reach]))

    def upload(self) -> None:
        """The staged small inputs to the bank-attention inputs on the device (asynchronous copies)."""
        n_slots, n_ptr = VIEWS * self.kept, len(self.pointer_frames)
        self.slot_valid.copy_(self._host[:n_slots], non_blocking=True)
        self.pointer_dist.copy_(self._host[n_slots : n_slots + n_ptr], non_blocking=True)
        self.pointer_valid.copy_(self._host[n_slots + n_ptr :], non_blocking=True)
        self.pointer_slot.copy_(self._pointer_slot_host, non_blocking=True)

    def store_pointer(self, pointer: Tensor) -> None:
        """Device: write frame t's pointer [C] into its ring slot (the slot index is a device tensor, so the
        same launch serves every frame)."""
        self.pointers.index_copy_(0, self.pointer_slot, pointer[None])


class ObjectRings:
    """K objects' rings over shared tensors: slots [K, 2, 7, T, C] with per-object counts, and the batched
    bank-attention inputs bank [K, keys, C], slot_valid [K, 12], pointer_dist / pointer_valid [K, 15].

    Each object's `BankRing` works on its own rows (own counts, compression per object and view), so an
    object's memory evolves exactly as in a pass of its own."""

    def __init__(self, preset: Preset, device: torch.device, objects: int, kernels: Impl = "torch") -> None:
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
                kernels,
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
