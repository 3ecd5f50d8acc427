"""Bank compression, the temporal-index rule, pointer positions, MV-MoE: against hand-worked answers."""

from __future__ import annotations

import pytest
import torch

from lmeec.model.config import MemoryConfig
from lmeec.model.memory import TakeMemory, closest_pairs, compress, pointer_t_diff_max, temporal_indices
from lmeec.model.moe import MVMoE


def _bank(values: list[list[float]]) -> torch.Tensor:
    """7 slots × T tokens × 1 channel from per-slot scalar rows."""
    return torch.tensor(values, dtype=torch.float32)[:, :, None]


# token 0: slots 2,3 closest (|d| = 0.1)  token 1: all equal gaps -> tie -> first pair (k = 0)
# token 2: pairs (1,2) and (4,5) tie at 0.5 -> first (k = 1)
HAND_BANK = _bank(
    [
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
        [2.0, 2.0, 1.5],
        [2.1, 3.0, 3.0],
        [4.0, 4.0, 5.0],
        [6.0, 5.0, 5.5],
        [9.0, 6.0, 9.0],
    ]
)


def test_closest_pairs_first_minimum_on_ties():
    assert closest_pairs(HAND_BANK).tolist() == [2, 0, 1]


def test_drop_removes_the_newer_element_of_the_closest_pair():
    out = compress(HAND_BANK, "drop")[:, :, 0]
    assert out.shape == (6, 3)
    assert out[:, 0].tolist() == pytest.approx([0.0, 1.0, 2.0, 4.0, 6.0, 9.0])  # 2.1 (slot 3) removed
    assert out[:, 1].tolist() == pytest.approx([0.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # slot 1 removed
    assert out[:, 2].tolist() == pytest.approx([0.0, 1.0, 3.0, 5.0, 5.5, 9.0])  # slot 2 removed


def test_mean_merges_the_pair_into_the_older_slot():
    out = compress(HAND_BANK, "mean")[:, :, 0]
    assert out[:, 0].tolist() == pytest.approx([0.0, 1.0, 2.05, 4.0, 6.0, 9.0])
    assert out[:, 1].tolist() == pytest.approx([0.5, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert out[:, 2].tolist() == pytest.approx([0.0, 1.25, 3.0, 5.0, 5.5, 9.0])


def test_compression_uses_the_l2_norm_over_channels():
    bank = torch.zeros(3, 1, 2)
    bank[1, 0] = torch.tensor([3.0, 4.0])  # |d0| = 5
    bank[2, 0] = torch.tensor([3.0, 4.0 + 4.9])  # |d1| = 4.9 -> k = 1
    assert closest_pairs(bank).tolist() == [1]
    with pytest.raises(ValueError, match="unknown compression"):
        compress(bank, "median")


def _fill(mem: TakeMemory, processed: list[int], last: int) -> list:
    views = []
    for t in range(last + 1):
        if t in processed:
            views.append((t, mem.view(t)))
            mem.store(
                t, torch.full((4, 2), float(t)), torch.full((4, 2), float(-t)), torch.full((8,), float(t))
            )
    return views


@pytest.mark.parametrize(
    ("t", "expected"),
    [(1, [5]), (3, [5, 4, 3]), (6, [5, 4, 3, 2, 1, 0]), (7, [5, 4, 3, 2, 1, 0]), (20, [5, 4, 3, 2, 1, 0])],
)
def test_temporal_index_rule(t, expected):
    mem = TakeMemory(MemoryConfig())
    views = dict(_fill(mem, list(range(t + 1)), t))
    n = len(views[t].source)
    assert n == len(expected) == len(views[t].target)
    # the rule applies to each bank separately: the target bank restarts at [5], never reaches negatives
    assert temporal_indices(n) == expected


def test_warmup_banks_are_rebuilt_by_index_oldest_first():
    mem = TakeMemory(MemoryConfig())
    views = dict(_fill(mem, [0, 1, 2, 4, 5, 6], 6))
    assert [float(s[0, 0]) for s in views[6].source] == [0.0, 1.0, 2.0, 4.0, 5.0]
    assert [float(s[0, 0]) for s in views[6].target] == [0.0, -1.0, -2.0, -4.0, -5.0]


def test_pointer_positions_and_t_diff_max():
    assert pointer_t_diff_max(None) == 15
    assert pointer_t_diff_max(100) == 15
    assert pointer_t_diff_max(16) == 15
    assert pointer_t_diff_max(5) == 4
    with pytest.raises(ValueError):
        pointer_t_diff_max(0)
    mem = TakeMemory(MemoryConfig(), num_frames=5)
    views = dict(_fill(mem, [0, 1, 3, 4], 4))
    assert [d for d, _ in views[4].pointers] == [1, 3, 4]  # frame 2 skipped: t_diff 2 is absent
    assert [float(p[0]) for _, p in views[4].pointers] == [3.0, 1.0, 0.0]
    live = TakeMemory(MemoryConfig())
    views = dict(_fill(live, list(range(30)), 29))
    assert [d for d, _ in views[29].pointers] == list(range(1, 16))
    assert live.t_diff_max == 15


def test_pointer_encoding_is_the_projected_sine_of_the_normalised_distance(test_model):
    from sam2.modeling.sam2_utils import get_1d_sine_pe

    ptrs = torch.randn(3, 256)
    tokens, pos = test_model.pointer_tokens(ptrs, torch.tensor([1, 2, 5]), t_diff_max=15)
    assert tokens.shape == pos.shape == (12, 64)
    assert torch.equal(tokens[4:8].flatten(), ptrs[1])
    want = test_model.obj_ptr_tpos_proj(get_1d_sine_pe(torch.tensor([5.0]) / 15, dim=256))
    assert torch.allclose(pos[8], want[0]) and torch.equal(pos[8], pos[11])


def test_mv_moe_shapes_and_parameter_count():
    moe = MVMoE(256)
    assert sum(p.numel() for p in moe.parameters()) == 2_754_048
    names = {k.split(".")[0] for k in moe.state_dict()}
    assert names == {"mlp1", "mlp2", "conv1", "conv2"}
    f_mem, f_view = torch.randn(2, 256, 30, 30), torch.randn(2, 256, 30, 30)
    out = moe(f_mem, f_view)
    assert out.shape == (2, 256, 30, 30)
    # with all gates closed (zero last layers -> sigmoid 0.5) the result is a fixed re-weighted sum
    for gate in (moe.mlp1, moe.mlp2):
        torch.nn.init.zeros_(gate[2].weight)
        torch.nn.init.zeros_(gate[2].bias)
    for gate in (moe.conv1, moe.conv2):
        torch.nn.init.zeros_(gate[2].weight)
    assert torch.allclose(moe(f_mem, f_view), (f_mem + f_view) * 1.5 * 1.5, atol=1e-5)


def test_seeded_random_models_draw_every_cloned_layer_anew():
    from lmeec.model.network import build_model

    a, b = build_model("test", seed=0), build_model("test", seed=0)
    k = [layer.cross_attn_image.k_proj.weight for layer in a.memory_attention.layers]
    assert not any(torch.equal(k[0], k[i]) for i in (1, 2, 3))  # sam2's clones are re-drawn
    fuser = [blk.pwconv1.weight for blk in a.memory_encoder.fuser.layers]
    assert not torch.equal(fuser[0], fuser[1])
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
