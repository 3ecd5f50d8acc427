"""The source tracker's per-frame step as static-shape stages over a SAM 2.1 model (sam2's own modules).

One implementation for the eager tracker, the `torch` backend and the ONNX export (S = tracker image size,
g = S/16, T = g², C = 256, M = 64). The memory attention always sees the whole fixed ring: 7 memory slots (the
prompt frame's + 6 recent) and 16 object pointers (the prompt frame's + 15 recent), each with a validity flag;
empty ones are masked out of the keys, so a warm-up frame gives sam2's result over its shorter memory.
Content-independent tensors (sine position encodings, the no-prompt tokens) are constants in the graphs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import NO_OBJ_SCORE
from sam2.modeling.sam2_utils import get_1d_sine_pe
from torch import Tensor

from lmeec.model.config import Preset
from lmeec.model.network import POINTER_SPLIT, SAM21
from lmeec.model.stages import MASKED, ImageEncoderStage, Stage, TensorSpec, key_bias

MEMORY_SLOTS = 7  # sam2's num_maskmem: the prompt frame's memory + the 6 most recent frames'
POINTER_SLOTS = 16  # sam2's max_obj_ptrs_in_encoder: the prompt frame's pointer + 15 recent ones
COND_TPOS = MEMORY_SLOTS - 1  # temporal-code index sam2 gives the conditioning (prompt) frame's memory


def _flat(x: Tensor) -> Tensor:
    """[B, C, H, W] -> sam2's sequence-first [HW, B, C]."""
    return x.flatten(2).permute(2, 0, 1)


class TrackerImageEncoderStage(ImageEncoderStage):
    """One source frame [1,3,S,S] (normalised) -> high-res maps (after conv_s0/s1) and stride-16 features."""

    name = "tracker_image_encoder"
    frames = 1


class TrackerMemoryAttentionStage(Stage):
    """Frame features attend to the ring: 7 memory slots of T tokens and 16 pointers of 4 tokens.

    Per slot: its temporal-code index (sam2's maskmem_tpos_enc row) and validity; per pointer: its signed
    distance normalised by sam2's t_diff_max, and validity.
    """

    name = "tracker_memory_attention"

    def __init__(self, model: SAM21) -> None:
        super().__init__(model)
        g, s = self.preset.grid, self.preset.image_size
        device = next(model.parameters()).device
        with torch.no_grad():
            probe = torch.zeros(1, self.preset.d_model, g, g, device=device)
            feat_pos = model.image_encoder.neck.position_encoding(probe)
            _, memory_pos = model._encode_new_memory(
                [_flat(probe)],
                [(g, g)],
                torch.zeros(1, 1, s, s, device=device),
                torch.ones(1, 1, device=device),
                False,
            )
        self.register_buffer("feat_pos", _flat(feat_pos), persistent=False)  # [T,1,256]
        self.register_buffer("memory_pos", _flat(memory_pos[-1])[:, 0], persistent=False)  # [T,64]

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("slot_memory", (MEMORY_SLOTS, p.tokens, p.mem_dim)),
            TensorSpec("slot_tpos", (MEMORY_SLOTS,), "int64"),
            TensorSpec("slot_valid", (MEMORY_SLOTS,)),
            TensorSpec("pointers", (POINTER_SLOTS, p.d_model)),
            TensorSpec("pointer_dist", (POINTER_SLOTS,)),
            TensorSpec("pointer_valid", (POINTER_SLOTS,)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("pix_feat", (1, p.d_model, p.grid, p.grid))]

    def forward(
        self,
        feats: Tensor,
        slot_memory: Tensor,
        slot_tpos: Tensor,
        slot_valid: Tensor,
        pointers: Tensor,
        pointer_dist: Tensor,
        pointer_valid: Tensor,
    ) -> Tensor:
        model, tokens, mem_dim = self.model, self.preset.tokens, self.preset.mem_dim
        tpos = model.maskmem_tpos_enc.flatten(1)[slot_tpos]  # [7, 64]
        slot_pos = (self.get_buffer("memory_pos")[None] + tpos[:, None]).flatten(0, 1)  # [7T, 64]
        ptr_pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(pointer_dist, dim=model.hidden_dim))
        ptr_pos = ptr_pos.repeat_interleave(POINTER_SPLIT, dim=0)  # [64, 64]
        ptr_tokens = pointers.reshape(POINTER_SLOTS * POINTER_SPLIT, mem_dim)
        memory = torch.cat((slot_memory.flatten(0, 1), ptr_tokens))[:, None]  # [7T+64, 1, 64]
        memory_pos = torch.cat((slot_pos, ptr_pos))[:, None]
        valid = torch.cat(
            (slot_valid.repeat_interleave(tokens), pointer_valid.repeat_interleave(POINTER_SPLIT))
        )
        with key_bias(model, (1.0 - valid) * MASKED):
            out = model.memory_attention(
                curr=[_flat(feats)],
                curr_pos=[self.get_buffer("feat_pos")],
                memory=memory,
                memory_pos=memory_pos,
                num_obj_ptr_tokens=POINTER_SLOTS * POINTER_SPLIT,
            )
        g = self.preset.grid
        return out.permute(1, 2, 0).reshape(1, self.preset.d_model, g, g)


class TrackerDecoderStage(Stage):
    """sam2's tracking-frame heads: no prompt (one padding point), multi-mask output, the best by IoU, the
    no-object rule, and the object pointer of the chosen mask token."""

    name = "tracker_decoder"

    def __init__(self, model: SAM21) -> None:
        super().__init__(model)
        device = next(model.parameters()).device
        with torch.no_grad():
            sparse, dense = model.sam_prompt_encoder(
                points=(
                    torch.zeros(1, 1, 2, device=device),
                    -torch.ones(1, 1, dtype=torch.int32, device=device),
                ),
                boxes=None,
                masks=None,
            )
        image_pe = model.sam_prompt_encoder.get_dense_pe()
        for name, value in (("sparse", sparse), ("dense", dense), ("image_pe", image_pe)):
            self.register_buffer(name, value.detach().clone(), persistent=False)

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        g = p.grid
        return [
            TensorSpec("pix_feat", (1, p.d_model, g, g)),
            TensorSpec("feat_s0", (1, 32, 4 * g, 4 * g)),
            TensorSpec("feat_s1", (1, 64, 2 * g, 2 * g)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [
            TensorSpec("low_res_logits", (1, 1, p.low_res, p.low_res)),
            TensorSpec("object_score", (1, 1)),
            TensorSpec("pointer", (1, p.d_model)),
        ]

    def forward(self, pix_feat: Tensor, feat_s0: Tensor, feat_s1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        model = self.model
        masks, ious, tokens, score = model.sam_mask_decoder(
            image_embeddings=pix_feat,
            image_pe=self.get_buffer("image_pe"),
            sparse_prompt_embeddings=self.get_buffer("sparse"),
            dense_prompt_embeddings=self.get_buffer("dense"),
            multimask_output=True,
            repeat_image=False,
            high_res_features=[feat_s0, feat_s1],
        )
        present = score > 0
        masks = torch.where(present[:, :, None, None], masks, NO_OBJ_SCORE).float()
        best = torch.argmax(ious[0])
        low_res = masks[:, best][:, None]
        token = tokens[:, best]
        weight = present.float()
        pointer = weight * model.obj_ptr_proj(token) + (1 - weight) * model.no_obj_ptr
        return low_res, score, pointer


class TrackerMemoryEncoderStage(Stage):
    """A tracked frame's memory: features + its low-res logits (upsampled to S, sigmoid) -> tokens [1,T,64].

    Adds no_obj_embed_spatial where the object score <= 0 (sam2's own code path).
    """

    name = "tracker_memory_encoder"

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("low_res_logits", (1, 1, p.low_res, p.low_res)),
            TensorSpec("object_score", (1, 1)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("memory", (1, p.tokens, p.mem_dim))]

    def forward(self, feats: Tensor, low_res_logits: Tensor, object_score: Tensor) -> Tensor:
        s, g = self.preset.image_size, self.preset.grid
        high_res = F.interpolate(low_res_logits, size=(s, s), mode="bilinear", align_corners=False)
        memory, _ = self.model._encode_new_memory([_flat(feats)], [(g, g)], high_res, object_score, False)
        return memory.flatten(2).transpose(1, 2)


TRACKER_STAGES: tuple[type[Stage], ...] = (
    TrackerImageEncoderStage,
    TrackerMemoryAttentionStage,
    TrackerDecoderStage,
    TrackerMemoryEncoderStage,
)


def build_tracker_stages(model: SAM21) -> dict[str, Stage]:
    """All tracker stages over one SAM 2.1 model's weights, by graph name."""
    return {cls.name: cls(model).eval() for cls in TRACKER_STAGES}
