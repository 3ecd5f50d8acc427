"""Each exported graph against its PyTorch stage module, and the warm-up masking of bank attention."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lmeec.export.manifest import read_manifest
from lmeec.model.memory import temporal_indices
from lmeec.model.stages import MASKED, BankAttentionStage, build_stages

TOL = 1e-4


@pytest.fixture(scope="module")
def stages(test_model):
    return build_stages(test_model)


@pytest.mark.parametrize(
    "graph",
    [
        "image_encoder",
        "memory_encoder",
        "memory_attention_view",
        "memory_attention_bank",
        "moe_fusion",
        "mask_decoder",
    ],
)
def test_graph_matches_stage_module(test_engines, stages, graph):
    manifest = read_manifest(test_engines)
    stage = stages[graph]
    session = ort.InferenceSession(
        str(test_engines / manifest.graphs[graph].file), providers=["CPUExecutionProvider"]
    )
    inputs = stage.example_inputs(torch.Generator().manual_seed(42))
    if graph == "memory_attention_bank":  # a realistic mix: 3 valid slots per bank, 5 valid pointers
        inputs[3][:] = torch.tensor([1, 1, 1, 0, 0, 0] * 2, dtype=torch.float32)
        inputs[5][:] = (torch.arange(15) < 5).float()
    got = session.run(None, {s.name: x.numpy() for s, x in zip(stage.inputs(), inputs, strict=True)})
    with torch.no_grad():
        want = stage(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    diffs = [float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True)]
    print(f"{graph}: max |ORT - torch| per output {diffs}")
    assert max(diffs) <= TOL


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_bank_attention_with_k_valid_slots_equals_unpadded_reference(test_model, stages, k):
    """Padded, masked bank == the reference's shorter sequence (k slots per bank, 3 pointers)."""
    stage: BankAttentionStage = stages["memory_attention_bank"]
    p, model = test_model.preset, test_model
    g = torch.Generator().manual_seed(k)
    feats, bank, slot_tpos, slot_valid, ptr_dist, ptr_valid = stage.example_inputs(g)
    slot_tpos[:] = torch.tensor(temporal_indices(6) * 2)
    slot_valid[:] = torch.tensor(([1.0] * k + [0.0] * (6 - k)) * 2)
    ptr_valid[:] = 0
    ptr_valid[[0, 4, 9]] = 1
    ptr_dist[[0, 4, 9]] = torch.tensor([1.0, 2.0, 4.0]) / 15
    with torch.no_grad():
        padded = stage(feats, bank, slot_tpos, slot_valid, ptr_dist, ptr_valid)
        # the reference sequence: k source slots, k target slots, 3 pointers, nothing else
        t = p.tokens
        slots = bank[0, : 12 * t].view(2, 6, t, 64)[:, :k]
        pos = stage.get_buffer("memory_pos")
        memory = [slots[v, i] for v in range(2) for i in range(k)]
        memory_pos = [pos + model.maskmem_tpos_enc[5 - i, 0, 0] for v in range(2) for i in range(k)]
        pointers = bank[0, 12 * t :].view(15, 256)[[0, 4, 9]]
        tokens, ptr_pos = model.pointer_tokens(pointers, torch.tensor([1, 2, 4]), t_diff_max=15)
        mem = torch.cat([*memory, tokens])[:, None]
        mem_pos = torch.cat([*memory_pos, ptr_pos])[:, None]
        short = model.attend(feats, stage.get_buffer("target_pos"), mem, mem_pos, num_pointer_tokens=12)
    diff = (padded - short).abs().max().item()
    assert diff <= 1e-5, diff
    # masking is what makes them equal: unmasked padding changes the answer
    if k < 6:
        with torch.no_grad():
            unmasked = stage(feats, bank, slot_tpos, torch.ones_like(slot_valid), ptr_dist, ptr_valid)
        assert (unmasked - short).abs().max().item() > 1e-3


def test_masked_keys_get_exactly_zero_weight():
    scores = torch.tensor([3.0, -2.0, 50.0]) + torch.tensor([0.0, 0.0, MASKED])
    assert torch.softmax(scores, 0)[2].item() == 0.0
