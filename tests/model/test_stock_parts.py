"""The sam2 parts inside LMEEC give the same tensors as sam2's own model built from its config."""

from __future__ import annotations

import pytest
import torch
from sam2.modeling.sam2_base import SAM2Base

TOL = 1e-5


@pytest.fixture(scope="module")
def pair(test_model, stock_sam2_test):
    state = {k: v for k, v in test_model.state_dict().items() if not k.startswith("MV_MoE.")}
    stock_sam2_test.load_state_dict(state, strict=True)
    assert type(stock_sam2_test) is SAM2Base
    return test_model, stock_sam2_test


def _max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@torch.no_grad()
def test_image_encoder(pair):
    ours, stock = pair
    x = torch.randn(2, 3, 128, 128)
    want = stock.forward_image(x)
    got = ours.encode_frames(x)
    for a, b in zip((got.feat_s0, got.feat_s1, got.feats), want["backbone_fpn"]):
        assert a.shape == b.shape and _max_diff(a, b) <= TOL
    assert _max_diff(got.pos, want["vision_pos_enc"][-1]) <= TOL


@torch.no_grad()
def test_memory_encoder_with_no_object_rule(pair):
    ours, stock = pair
    feats = torch.randn(2, 256, 8, 8)
    logits = torch.randn(2, 1, 128, 128) * 5
    score = torch.tensor([[1.5], [-0.5]])  # second is "no object": gets no_obj_embed_spatial
    got, got_pos = ours.encode_memory(feats, logits, score)
    want, want_pos = stock._encode_new_memory(
        [feats.flatten(2).permute(2, 0, 1)], [(8, 8)], logits, score, False
    )
    assert _max_diff(got, want) <= TOL and _max_diff(got_pos, want_pos[-1]) <= TOL
    # the no-object embedding is really added to the second one
    plain, _ = ours.encode_memory(feats, logits, torch.tensor([[1.5], [1.5]]))
    assert torch.allclose(
        got[1] - plain[1], ours.no_obj_embed_spatial[0][:, None, None].expand(64, 8, 8), atol=1e-6
    )


@torch.no_grad()
def test_mask_decoder_and_pointer_match_sam_heads(pair):
    ours, stock = pair
    fused = torch.randn(2, 256, 8, 8)
    s0, s1 = torch.randn(2, 32, 32, 32), torch.randn(2, 64, 16, 16)
    got = ours.decode(fused, s0, s1)
    # sam2's _forward_sam_heads adds the no-mask dense embedding; zero it to mirror the research decoder
    saved = stock.sam_prompt_encoder.no_mask_embed.weight.clone()
    stock.sam_prompt_encoder.no_mask_embed.weight.zero_()
    try:
        _, _, iou, low, _, ptr, score = stock._forward_sam_heads(
            fused, high_res_features=[s0, s1], multimask_output=False
        )
    finally:
        stock.sam_prompt_encoder.no_mask_embed.weight.copy_(saved)
    assert _max_diff(got.low_res_logits, low) <= TOL
    assert _max_diff(got.iou, iou) <= TOL
    assert _max_diff(got.object_score, score) <= TOL
    assert _max_diff(got.pointer, ptr) <= TOL
    # and the dense embedding really is left out: with it, the stock decoder answers differently
    _, _, _, low_dense, _, _, _ = stock._forward_sam_heads(
        fused, high_res_features=[s0, s1], multimask_output=False
    )
    assert _max_diff(low_dense, got.low_res_logits) > 1e-3


@torch.no_grad()
def test_memory_attention_matches_stock_complex_rope(pair):
    """Whole memory attention, view pass (900-token analogue) and bank pass with pointers excluded."""
    ours, stock = pair
    frame = ours.encode_frames(torch.randn(1, 3, 128, 128))
    curr, curr_pos = frame.feats.flatten(2).permute(2, 0, 1), frame.pos.flatten(2).permute(2, 0, 1)
    for n_slots, n_ptr in ((1, 0), (12, 60)):
        memory = torch.randn(n_slots * 64 + n_ptr, 1, 64)
        memory_pos = torch.randn_like(memory)
        want = stock.memory_attention(
            curr=[curr],
            curr_pos=[curr_pos],
            memory=memory.clone(),
            memory_pos=memory_pos,
            num_obj_ptr_tokens=n_ptr,
        )
        got = ours.attend(frame.feats, frame.pos, memory, memory_pos, num_pointer_tokens=n_ptr)
        assert _max_diff(got, want.permute(1, 2, 0).reshape(1, 256, 8, 8)) <= TOL
