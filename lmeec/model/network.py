"""The LM-EEC network: SAM 2.1 (built from sam2's own modules) plus MV-MoE, exposed as the stages of one step.

`LMEEC` subclasses sam2's `SAM2Base` so that parameter names match SAM 2.1 / LM-EEC checkpoints exactly and
the stock pieces (image encoder, memory encoder, mask decoder) are sam2's code, not copies. Each method below
is one stage of the step described in the model spec; the tracker and the export graphs call them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam2_base import NO_OBJ_SCORE, SAM2Base
from sam2.modeling.sam2_utils import get_1d_sine_pe
from torch import Tensor

from lmeec.model.config import Preset, get_preset
from lmeec.model.moe import MVMoE
from lmeec.model.rope import RealRoPEAttention

POINTER_SPLIT = 4  # a 256-d pointer becomes 4 memory tokens of 64


@dataclass
class FrameFeatures:
    """Image-encoder output for a batch of frames (batch 2 = source, target)."""

    feat_s0: Tensor  # [B, 32, 4g, 4g] after the decoder's conv_s0
    feat_s1: Tensor  # [B, 64, 2g, 2g] after conv_s1
    feats: Tensor  # [B, 256, g, g] stride-16 features
    pos: Tensor  # [B, 256, g, g] their sine position encoding

    def select(self, index: int) -> FrameFeatures:
        return FrameFeatures(
            *(x[index : index + 1] for x in (self.feat_s0, self.feat_s1, self.feats, self.pos))
        )


@dataclass
class Decoded:
    """Mask-decoder output for the target view, after SAM 2.1's no-object rule."""

    low_res_logits: Tensor  # [B, 1, 4g, 4g]; NO_OBJ_SCORE (-1024) where the object score <= 0
    iou: Tensor  # [B, 1]
    object_score: Tensor  # [B, 1] logit
    pointer: Tensor  # [B, 256]; no_obj_ptr where the object score <= 0


def _rope_attention(preset: Preset, kv_in_dim: int | None = None) -> RealRoPEAttention:
    extra = {"kv_in_dim": kv_in_dim, "rope_k_repeat": True} if kv_in_dim else {}
    return RealRoPEAttention(
        embedding_dim=preset.d_model,
        num_heads=1,
        downsample_rate=1,
        dropout=0.1,
        rope_theta=10000.0,
        feat_sizes=(preset.grid, preset.grid),
        **extra,
    )


class SAM21(SAM2Base):
    """SAM 2.1 built from sam2's modules with SAM 2.1's stock flags and a real-valued RoPE memory attention.

    `overrides` reach SAM2Base unchanged (the source tracker passes the video predictor's post-processing flags).
    """

    def __init__(self, preset: Preset, **overrides: object) -> None:
        trunk = preset.trunk
        image_encoder = ImageEncoder(
            trunk=Hiera(
                embed_dim=trunk.embed_dim,
                num_heads=trunk.num_heads,
                stages=trunk.stages,
                global_att_blocks=trunk.global_att_blocks,
                window_pos_embed_bkg_spatial_size=trunk.window_pos_embed_bkg_spatial_size,
                window_spec=trunk.window_spec,
            ),
            neck=FpnNeck(
                position_encoding=PositionEmbeddingSine(
                    num_pos_feats=preset.d_model, normalize=True, temperature=10000
                ),
                d_model=preset.d_model,
                backbone_channel_list=list(trunk.backbone_channel_list),
                fpn_top_down_levels=[2, 3],
                fpn_interp_model="nearest",
            ),
            scalp=1,
        )
        memory_attention = MemoryAttention(
            d_model=preset.d_model,
            pos_enc_at_input=True,
            layer=MemoryAttentionLayer(
                activation="relu",
                cross_attention=_rope_attention(preset, kv_in_dim=preset.mem_dim),
                d_model=preset.d_model,
                dim_feedforward=2048,
                dropout=0.1,
                pos_enc_at_attn=False,
                pos_enc_at_cross_attn_keys=True,
                pos_enc_at_cross_attn_queries=False,
                self_attention=_rope_attention(preset),
            ),
            num_layers=4,
        )
        memory_encoder = MemoryEncoder(
            out_dim=preset.mem_dim,
            position_encoding=PositionEmbeddingSine(
                num_pos_feats=preset.mem_dim, normalize=True, temperature=10000
            ),
            mask_downsampler=MaskDownSampler(kernel_size=3, stride=2, padding=1),
            fuser=Fuser(
                CXBlock(dim=preset.d_model, kernel_size=7, padding=3, layer_scale_init_value=1e-6),
                num_layers=2,
            ),
        )
        super().__init__(
            image_encoder,
            memory_attention,
            memory_encoder,
            num_maskmem=preset.memory.num_maskmem,
            image_size=preset.image_size,
            sigmoid_scale_for_mem_enc=20.0,
            sigmoid_bias_for_mem_enc=-10.0,
            use_mask_input_as_output_without_sam=True,
            directly_add_no_mem_embed=True,
            no_obj_embed_spatial=True,
            use_high_res_features_in_sam=True,
            multimask_output_in_sam=True,
            iou_prediction_use_sigmoid=True,
            use_obj_ptrs_in_encoder=True,
            max_obj_ptrs_in_encoder=preset.memory.max_obj_ptrs,
            add_tpos_enc_to_obj_ptrs=True,
            proj_tpos_enc_in_obj_ptrs=True,
            use_signed_tpos_enc_to_obj_ptrs=True,
            only_obj_ptrs_in_the_past_for_eval=True,
            pred_obj_scores=True,
            pred_obj_scores_mlp=True,
            fixed_no_obj_ptr=True,
            multimask_output_for_tracking=True,
            use_multimask_token_for_obj_ptr=True,
            multimask_min_pt_num=0,
            multimask_max_pt_num=1,
            use_mlp_for_obj_ptr_proj=True,
            **overrides,
        )
        self.preset = preset

    def encode_frames(self, images: Tensor) -> FrameFeatures:
        """Shared image encoder on normalised frames [B, 3, S, S] (sam2's forward_image)."""
        out = self.forward_image(images)
        s0, s1, feats = out["backbone_fpn"]
        return FrameFeatures(s0, s1, feats, out["vision_pos_enc"][-1])


class LMEEC(SAM21):
    """SAM 2.1 plus MV-MoE, exposed as the stages of one LM-EEC step."""

    def __init__(self, preset: Preset) -> None:
        super().__init__(preset)
        self.MV_MoE = MVMoE(preset.d_model)

    # --- stages -------------------------------------------------------------------------------------------

    def encode_memory(
        self, feats: Tensor, mask_logits: Tensor, object_score: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Memory encoder: stride-16 features [B,256,g,g] + logits [B,1,S,S] -> memory, pos [B,64,g,g].

        Applies sigmoid·20−10 and adds no_obj_embed_spatial where object_score <= 0 (sam2's own code path).
        """
        g = feats.shape[-1]
        mem, pos = self._encode_new_memory(
            current_vision_feats=[feats.flatten(2).permute(2, 0, 1)],
            feat_sizes=[(g, g)],
            pred_masks_high_res=mask_logits,
            object_score_logits=object_score,
            is_mask_from_pts=False,
        )
        return mem, pos[-1]

    def attend(
        self, feats: Tensor, pos: Tensor, memory: Tensor, memory_pos: Tensor, num_pointer_tokens: int = 0
    ) -> Tensor:
        """Memory attention of target features [B,256,g,g] (sine pos alike) over memory [M, B, 64]."""
        b, c, g, _ = feats.shape
        out = self.memory_attention(
            curr=[feats.flatten(2).permute(2, 0, 1)],
            curr_pos=[pos.flatten(2).permute(2, 0, 1)],
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=num_pointer_tokens,
        )
        return out.permute(1, 2, 0).reshape(b, c, g, g)

    def fuse(self, f_mem: Tensor, f_view: Tensor) -> Tensor:
        """MV-MoE fusion of the memory expert and the view expert."""
        return self.MV_MoE(f_mem, f_view)

    def decode(self, fused: Tensor, feat_s0: Tensor, feat_s1: Tensor) -> Decoded:
        """SAM mask decoder with two padding prompt tokens and no dense prompt embedding (single mask)."""
        b = fused.shape[0]
        coords = fused.new_zeros(b, 1, 2)
        labels = -torch.ones(b, 1, dtype=torch.int32, device=fused.device)
        sparse, _ = self.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        # The research decoder deletes `src = src + dense_prompt_embeddings`; adding exact zeros is the same.
        low_res, iou, tokens, object_score = self.sam_mask_decoder(
            image_embeddings=fused,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=torch.zeros_like(fused),
            multimask_output=False,
            repeat_image=False,
            high_res_features=[feat_s0, feat_s1],
        )
        present = object_score > 0
        low_res = torch.where(present[:, :, None, None], low_res, NO_OBJ_SCORE).float()
        weight = present.to(fused.dtype)
        pointer = weight * self.obj_ptr_proj(tokens[:, 0]) + (1 - weight) * self.no_obj_ptr
        return Decoded(low_res, iou, object_score, pointer)

    def upsample(self, low_res_logits: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Bilinear (align_corners=False) resize of low-res logits to (H, W), default the model's input size."""
        size = size or (self.image_size, self.image_size)
        return F.interpolate(low_res_logits, size=size, mode="bilinear", align_corners=False)

    def pointer_tokens(self, pointers: Tensor, t_diffs: Tensor, t_diff_max: int) -> tuple[Tensor, Tensor]:
        """Pointers [P, 256] at distances t_diffs [P] -> tokens and pos [4P, 64] (sam2's split and tpos)."""
        p = pointers.shape[0]
        tokens = pointers.reshape(p, POINTER_SPLIT, self.mem_dim).flatten(0, 1)
        pos = get_1d_sine_pe(t_diffs.to(pointers.dtype) / t_diff_max, dim=self.hidden_dim)
        pos = self.obj_ptr_tpos_proj(pos).repeat_interleave(POINTER_SPLIT, dim=0)
        return tokens, pos


def build_model(preset: str | Preset, seed: int | None = 0, device: str | torch.device = "cpu") -> LMEEC:
    """Build an LM-EEC network for a preset, in eval mode; `seed` makes the random init reproducible.

    sam2 builds repeated layers (memory-attention layers, memory-encoder fuser blocks) as deep copies of
    one, so a plain random init repeats their weights; with a seed each copy is drawn anew, so that random
    models exercise every layer separately and exported graphs cannot merge them (trained ones never could).
    """
    return seeded(LMEEC, get_preset(preset), seed, device)


def seeded(cls: type[SAM21], preset: Preset, seed: int | None, device: str | torch.device, **kw) -> SAM21:
    """Build `cls(preset, **kw)` in eval mode; with a seed, every cloned layer is drawn anew (see build_model)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = cls(preset, **kw)
    if seed is not None:
        for clones in (model.memory_attention.layers, model.memory_encoder.fuser.layers):
            for layer in list(clones)[1:]:
                for module in layer.modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
    return model.to(device).eval()
