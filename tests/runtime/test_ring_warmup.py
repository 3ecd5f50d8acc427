"""The runtime's BankRing against the reference TakeMemory on every skip pattern of a 12-frame take (≤ 3 skips).

Both are fed identical synthetic memories (distinct per frame and view); at every processed frame the bank
attention input must hold the reference's slots bit for bit, with the same counts, temporal indices,
validity flags and pointers (contents and distances).
"""

from __future__ import annotations

from itertools import combinations

import pytest
import torch

from lmeec.model.config import get_preset
from lmeec.model.memory import TakeMemory, temporal_indices
from lmeec.runtime.alloc import AllocationCounter
from lmeec.runtime.ring import BankRing

FRAMES = 12
PATTERNS = [set(c) for k in range(4) for c in combinations(range(FRAMES), k)]


def test_pattern_count():
    assert len(PATTERNS) == 299


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread hand-offs that dominate on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _memories(preset, frames: int, seed: int) -> dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    shape = (preset.tokens, preset.mem_dim)
    return {
        t: (torch.randn(*shape, generator=g), torch.randn(*shape, generator=g), torch.randn(256, generator=g))
        for t in range(frames)
    }


def _check_frame(ring: BankRing, view, t: int, t_diffs: tuple[int, ...]) -> None:
    n = len(view.source)
    assert ring.count == n == len(view.target), t
    for v, bank in enumerate((view.source, view.target)):
        if n:
            assert torch.equal(ring.bank_slots[v, :n], torch.stack(bank)), (t, v)
    kept = ring.kept
    valid = ring.slot_valid.view(2, kept)
    assert valid[:, :n].eq(1).all() and valid[:, n:].eq(0).all(), t
    assert ring.slot_tpos.view(2, kept)[:, :n].tolist() == [temporal_indices(n)] * 2
    assert t_diffs == tuple(d for d, _ in view.pointers), t
    reached = set()
    for d, pointer in view.pointers:
        slot = (t - d) % ring.pointers.shape[0]
        reached.add(slot)
        assert torch.equal(ring.pointers[slot], pointer), (t, d)
        assert ring.pointer_valid[slot] == 1
        assert ring.pointer_dist[slot] == torch.tensor(d / ring.t_diff_max, dtype=torch.float32)
    others = [i for i in range(ring.pointers.shape[0]) if i not in reached]
    assert ring.pointer_valid[others].eq(0).all()


def _compare(ring: BankRing, preset, mems: dict, skipped: set[int], frames: int) -> list[int]:
    """Run one take through both; return the indices of processed frames that ended warm-up (the 7th)."""
    reference = TakeMemory(preset.memory, frames)
    ring.reset(frames)
    seventh = []
    for t in range(frames):
        if t in skipped:
            continue
        source, target, pointer = mems[t]
        warm = reference.warming_up
        assert ring.warming_up == warm
        view = reference.view(t)
        if ring.pending is not None:
            ring.incoming(1).copy_(mems[ring.pending][1])
        ring.update(t)
        ring.incoming(0).copy_(source)
        t_diffs = ring.stage(t)
        ring.upload()
        _check_frame(ring, view, t, t_diffs)
        ring.store_pointer(pointer)
        reference.store(t, source, target, pointer)
        if warm and not reference.warming_up:
            seventh.append(t)
    return seventh


@pytest.mark.parametrize("compression", ["drop", "mean"])
def test_every_skip_pattern_ring_equals_reference(compression, one_thread):
    preset = get_preset("test").with_compression(compression)
    ring = BankRing(preset, torch.device("cpu"))
    mems = _memories(preset, FRAMES, seed=1)
    seventh = set()  # index of the 7th processed frame, the last warm-up one
    for skipped in PATTERNS:
        seventh.update(_compare(ring, preset, mems, skipped, FRAMES))
    assert seventh == {6, 7, 8, 9}  # 0, 1, 2 or 3 skips before warm-up ended


LONG_GAPS = [
    set(range(2, 10)),  # warm-up evicts frames 0, 1 (empty banks at t = 10) and lasts to index 14
    set(range(6, 21)),  # t = 21: warm-up with empty banks; t = 22: steady state from empty banks
    {1, 3, 5, 7, 9, 11, 13},  # every other frame: warm-up to index 12, frames evicted as they age
    set(range(1, 7)) | {10, 11},  # warm-up evicts frame 0 at t = 7, a steady-state gap later
]


def test_long_gaps_ring_equals_reference(one_thread):
    preset = get_preset("test")
    ring = BankRing(preset, torch.device("cpu"))
    mems = _memories(preset, 30, seed=2)
    assert [_compare(ring, preset, mems, skipped, 30) for skipped in LONG_GAPS] == [[14], [21], [12], [14]]


def test_bank_updates_allocate_no_tensors_in_warm_up_evictions_and_steady_state(one_thread):
    """Eviction during a long warm-up, compression and gaps all work in the preallocated slots."""
    preset = get_preset("test")
    ring = BankRing(preset, torch.device("cpu"))
    mems = _memories(preset, 30, seed=3)
    ring.reset(30)
    counts = []
    counter = AllocationCounter()
    with counter:
        for t in sorted(set(range(30)) - (set(range(2, 10)) | {20, 21})):
            if ring.pending is not None:
                ring.incoming(1).copy_(mems[ring.pending][1])
            ring.update(t)
            ring.incoming(0).copy_(mems[t][0])
            ring.stage(t)
            ring.upload()
            ring.store_pointer(mems[t][2])
            counts.append(ring.count)
    assert counter.fresh == []
    assert counts[:4] == [0, 1, 0, 1]  # frames 0, 1, 10, 11: both early frames evicted at t = 10
