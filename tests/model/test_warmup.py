"""The warm-up rule of the reference memory (model spec, "Memory"), checked slot by slot on synthetic memories.

Warm-up lasts while fewer than 7 frames have been processed (skipped frames do not count); its banks are
the stored frames t-6 … t-1 by index. Every frame gets its own random memories, so a slot's contents name
the frame (per token, once compression has mixed frames).
"""

from __future__ import annotations

import torch

from lmeec.model.config import MemoryConfig
from lmeec.model.memory import TakeMemory, compress

TOKENS, CHANNELS = 16, 4


def memories(n: int, seed: int = 0) -> dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Distinct synthetic (source, target, pointer) memories for frames 0 … n-1."""
    g = torch.Generator().manual_seed(seed)
    return {
        t: (
            torch.randn(TOKENS, CHANNELS, generator=g),
            torch.randn(TOKENS, CHANNELS, generator=g),
            torch.randn(8, generator=g),
        )
        for t in range(n)
    }


def run(skipped: set[int], n: int, mems: dict, config: MemoryConfig | None = None) -> dict:
    """Views of every processed frame of an n-frame take with the given frames skipped."""
    mem, views = TakeMemory(config or MemoryConfig(), n), {}
    for t in range(n):
        if t in skipped:
            continue
        views[t] = mem.view(t)
        mem.store(t, *mems[t])
    return views


def slot_frames(slot: torch.Tensor, view: int, mems: dict) -> list[int]:
    """Per token, the frame whose stored memory (view 0 source, 1 target) the slot holds there."""
    out = []
    for n in range(slot.shape[0]):
        hits = [t for t, m in mems.items() if torch.equal(slot[n], m[view][n])]
        assert len(hits) == 1, f"token {n} matches frames {hits}"
        out.append(hits[0])
    return out


def bank_frames(bank: list[torch.Tensor], view: int, mems: dict) -> list[int]:
    """Frames of a bank whose slots each hold one whole frame (warm-up), oldest first."""
    frames = []
    for slot in bank:
        per_token = set(slot_frames(slot, view, mems))
        assert len(per_token) == 1, f"a warm-up slot mixes frames {per_token}"
        frames.append(per_token.pop())
    return frames


def check_warmup(views: dict, expected: dict[int, list[int]], mems: dict) -> None:
    for t, frames in expected.items():
        v = views[t]
        assert bank_frames(v.source, 0, mems) == frames, t
        assert bank_frames(v.target, 1, mems) == frames, t
        for bank, which in ((v.source, 0), (v.target, 1)):
            assert all(torch.equal(s, mems[f][which]) for s, f in zip(bank, frames))


def check_steady(views: dict, t: int, carried: tuple[list, list], new: int, mems: dict) -> None:
    """Frame t's banks: the carried banks plus frame `new`, compressed (drop) by one slot."""
    v = views[t]
    for bank, old, which in ((v.source, carried[0], 0), (v.target, carried[1], 1)):
        want = compress(torch.stack([*old, mems[new][which]]), "drop")
        assert len(bank) == len(old) and torch.equal(torch.stack(bank), want), t


# The spec's worked example: frame 3 skipped. t = 7 is still warm-up (6 frames processed) and frame 0 has
# left the window; t = 8 is the first steady-state frame and the banks keep 5 slots from then on.
SKIP_3 = {0: [], 1: [0], 2: [0, 1], 4: [0, 1, 2], 5: [0, 1, 2, 4], 6: [0, 1, 2, 4, 5], 7: [1, 2, 4, 5, 6]}


def test_worked_example_gap_at_3():
    mems = memories(14)
    views = run({3}, 14, mems)
    check_warmup(views, SKIP_3, mems)
    for t in range(8, 14):
        check_steady(views, t, (views[t - 1].source, views[t - 1].target), t - 1, mems)
        for bank, which in ((views[t].source, 0), (views[t].target, 1)):
            per_slot = [slot_frames(s, which, mems) for s in bank]
            for token in zip(*per_slot):  # oldest first, frame 0 gone, one of 1 … t-1 dropped per token
                assert list(token) == sorted(token) and 0 not in token and 3 not in token
    assert [len(views[t].source) for t in range(8, 14)] == [5] * 6
    # frame 8 of the worked example, by hand: frames 1, 2, 4, 5, 6, 7 less one per token
    for token in zip(*[slot_frames(s, 0, mems) for s in views[8].source]):
        assert len(set([1, 2, 4, 5, 6, 7]) - set(token)) == 1


# Frames 1, 2 and 3 skipped: 7 frames are processed only at t = 10, so warm-up runs to index 9 and evicts
# frame 0 on the way (t = 7); the banks end warm-up with 5 slots and keep them.
SKIP_123 = {0: [], 4: [0], 5: [0, 4], 6: [0, 4, 5], 7: [4, 5, 6], 8: [4, 5, 6, 7], 9: [4, 5, 6, 7, 8]}


def test_skips_at_1_2_3_warm_up_to_index_9():
    mems = memories(16)
    views = run({1, 2, 3}, 16, mems)
    check_warmup(views, SKIP_123, mems)
    for t in range(10, 16):
        check_steady(views, t, (views[t - 1].source, views[t - 1].target), t - 1, mems)
    assert [len(views[t].target) for t in range(10, 16)] == [5] * 6


def test_no_gap_warm_up_ends_at_6_then_six_slots():
    mems = memories(10)
    views = run(set(), 10, mems)
    check_warmup(views, {t: list(range(max(0, t - 6), t)) for t in range(7)}, mems)
    check_steady(views, 7, (views[6].source, views[6].target), 6, mems)
    assert len(views[7].source) == 6


def test_long_warm_up_evicts_frames_leaving_the_window():
    """Processed 0, 1, then a gap of 8: at t = 10 frames 0 and 1 are out of reach, the banks are empty."""
    mems = memories(14)
    views = run(set(range(2, 10)), 14, mems)
    check_warmup(views, {0: [], 1: [0], 10: [], 11: [10], 12: [10, 11], 13: [10, 11, 12]}, mems)
    assert views[10].empty


def test_steady_state_gap_keeps_the_carried_bank():
    """Frame 9 skipped after warm-up: t = 10 uses frame 8's bank as is, t = 11 appends 10 (9 is gone)."""
    mems = memories(13)
    views = run({9}, 13, mems)
    assert all(torch.equal(a, b) for a, b in zip(views[10].source, views[8].source))
    check_steady(views, 11, (views[10].source, views[10].target), 10, mems)


def test_first_steady_state_frame_after_a_skip_keeps_the_last_warm_up_bank():
    """Frames 2, 8, 9 skipped: frame 7 is the 7th processed; t = 10 (t-1 skipped) attends frame 7's banks
    unchanged, so frame 7's memory never enters; t = 11 appends frame 10 and compresses."""
    mems = memories(13)
    views = run({2, 8, 9}, 13, mems)
    check_warmup(views, {6: [0, 1, 3, 4, 5], 7: [1, 3, 4, 5, 6], 10: [1, 3, 4, 5, 6]}, mems)
    check_steady(views, 11, (views[10].source, views[10].target), 10, mems)
