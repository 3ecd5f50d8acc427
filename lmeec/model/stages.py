"""The step split into static-shape stages over the reference weights: one implementation for the
`torch` backend, the ONNX export and (through ONNX) TensorRT.

Shapes (S = image size, g = S/16, T = g², C = 256, M = 64): every input and output has a fixed shape, and
content-independent tensors (sine position encodings, RoPE tables, prompt tokens) are constants inside
the graphs. Empty bank slots and pointers are masked by additive key biases, so a warm-up frame with k
valid slots gives the same result as the reference's shorter sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from sam2.modeling.sam2_utils import get_1d_sine_pe
from torch import Tensor, nn

from lmeec.model.config import Preset
from lmeec.model.network import LMEEC, POINTER_SPLIT

MASKED = -30000.0  # additive key bias: exp underflows to exactly 0 in fp32, still finite in fp16


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one stage input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@contextmanager
def key_bias(model: LMEEC, bias: Tensor | None) -> Iterator[None]:
    """Give every cross-attention of the memory attention an additive key bias for one call.

    Lets sam2's own MemoryAttention.forward run unchanged while empty slots are masked.
    """
    layers = [layer.cross_attn_image for layer in model.memory_attention.layers]
    for attn in layers:
        attn.key_bias = bias
    try:
        yield
    finally:
        for attn in layers:
            attn.key_bias = None


class Stage(nn.Module):
    """A stage over the shared LMEEC weights with declared static inputs and outputs."""

    name: str

    def __init__(self, model: LMEEC) -> None:
        super().__init__()
        self.model = model
        self.preset = model.preset

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        raise NotImplementedError

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        raise NotImplementedError

    def inputs(self) -> list[TensorSpec]:
        return self.input_specs(self.preset)

    def outputs(self) -> list[TensorSpec]:
        return self.output_specs(self.preset)

    def example_inputs(self, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random inputs of the declared shapes (valid flags set to 1, indices in range)."""
        out = []
        for spec in self.inputs():
            if spec.dtype == "int64":
                out.append(
                    torch.randint(0, self.preset.memory.num_maskmem - 1, spec.shape, generator=generator)
                )
            elif spec.name.endswith("_valid"):
                out.append(torch.ones(spec.shape))
            elif spec.name == "pointer_dist":
                out.append(torch.rand(spec.shape, generator=generator))
            else:
                out.append(torch.randn(spec.shape, generator=generator))
        return tuple(out)


class ImageEncoderStage(Stage):
    """Both views at once: normalised frames [2,3,S,S] -> high-res maps and stride-16 features."""

    name = "image_encoder"

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        s = p.image_size
        return [TensorSpec("images", (2, 3, s, s))]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        g = p.grid
        return [
            TensorSpec("feat_s0", (2, 32, 4 * g, 4 * g)),
            TensorSpec("feat_s1", (2, 64, 2 * g, 2 * g)),
            TensorSpec("feats", (2, p.d_model, g, g)),
        ]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.model.encode_frames(images)
        return f.feat_s0, f.feat_s1, f.feats


class MemoryEncoderStage(Stage):
    """Batch 2 (source memory from its 0/1 mask, target memory from predicted logits) -> tokens [2,T,64]."""

    name = "memory_encoder"

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (2, p.d_model, p.grid, p.grid)),
            TensorSpec("mask_logits", (2, 1, p.image_size, p.image_size)),
            TensorSpec("object_score", (2, 1)),
        ]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        return [TensorSpec("memory", (2, p.tokens, p.mem_dim))]

    def forward(self, feats: Tensor, mask_logits: Tensor, object_score: Tensor) -> Tensor:
        memory, _ = self.model.encode_memory(feats, mask_logits, object_score)
        return memory.flatten(2).transpose(1, 2)


class _AttentionStage(Stage):
    def __init__(self, model: LMEEC) -> None:
        super().__init__(model)
        g, s = self.preset.grid, self.preset.image_size
        device = next(model.parameters()).device
        with torch.no_grad():
            probe = torch.zeros(1, self.preset.d_model, g, g, device=device)
            target_pos = model.image_encoder.neck.position_encoding(probe)
            _, memory_pos = model.encode_memory(
                probe, torch.zeros(1, 1, s, s, device=device), torch.ones(1, 1, device=device)
            )
        self.register_buffer("target_pos", target_pos, persistent=False)  # [1,256,g,g]
        self.register_buffer(
            "memory_pos", memory_pos.flatten(2).transpose(1, 2)[0], persistent=False
        )  # [T,64]

    def _attend(
        self, feats: Tensor, memory: Tensor, memory_pos: Tensor, n_ptr: int, bias: Tensor | None
    ) -> Tensor:
        with key_bias(self.model, bias):
            return self.model.attend(
                feats,
                self.get_buffer("target_pos"),
                memory.transpose(0, 1),
                memory_pos.transpose(0, 1),
                n_ptr,
            )


class ViewAttentionStage(_AttentionStage):
    """View expert: target tokens attend to this frame's source memory (T memory tokens)."""

    name = "memory_attention_view"

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("memory", (1, p.tokens, p.mem_dim)),
        ]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        return [TensorSpec("f_view", (1, p.d_model, p.grid, p.grid))]

    def forward(self, feats: Tensor, memory: Tensor) -> Tensor:
        return self._attend(feats, memory, self.get_buffer("memory_pos")[None], 0, None)


class BankAttentionStage(_AttentionStage):
    """Memory expert over a fixed-size bank: 6 source + 6 target slots of T tokens and 15×4 pointer tokens.

    Inputs beside the bank: each slot's temporal-code index and validity, each pointer's normalised
    distance t_diff / t_diff_max and validity. Invalid slots and pointers are masked out of the keys.
    """

    name = "memory_attention_bank"

    @staticmethod
    def slots(p: Preset) -> int:
        return 2 * p.memory.bank_slots

    @staticmethod
    def pointers(p: Preset) -> int:
        return p.memory.pointer_slots

    @classmethod
    def keys(cls, p: Preset) -> int:
        return cls.slots(p) * p.tokens + cls.pointers(p) * POINTER_SPLIT

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("bank", (1, cls.keys(p), p.mem_dim)),
            TensorSpec("slot_tpos", (cls.slots(p),), "int64"),
            TensorSpec("slot_valid", (cls.slots(p),)),
            TensorSpec("pointer_dist", (cls.pointers(p),)),
            TensorSpec("pointer_valid", (cls.pointers(p),)),
        ]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        return [TensorSpec("f_mem", (1, p.d_model, p.grid, p.grid))]

    def forward(
        self,
        feats: Tensor,
        bank: Tensor,
        slot_tpos: Tensor,
        slot_valid: Tensor,
        pointer_dist: Tensor,
        pointer_valid: Tensor,
    ) -> Tensor:
        model, tokens = self.model, self.preset.tokens
        tpos = model.maskmem_tpos_enc.flatten(1)[slot_tpos]  # [slots, 64]
        slot_pos = (self.get_buffer("memory_pos")[None] + tpos[:, None]).flatten(0, 1)  # [slots*T, 64]
        ptr_pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(pointer_dist, dim=model.hidden_dim))
        ptr_pos = ptr_pos.repeat_interleave(POINTER_SPLIT, dim=0)  # [pointers*4, 64]
        memory_pos = torch.cat((slot_pos, ptr_pos))[None]
        valid = torch.cat(
            (slot_valid.repeat_interleave(tokens), pointer_valid.repeat_interleave(POINTER_SPLIT))
        )
        bias = (1.0 - valid) * MASKED
        return self._attend(feats, bank, memory_pos, self.pointers(self.preset) * POINTER_SPLIT, bias)


class MoEFusionStage(Stage):
    """MV-MoE: memory expert + view expert -> fused target features."""

    name = "moe_fusion"

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        shape = (1, p.d_model, p.grid, p.grid)
        return [TensorSpec("f_mem", shape), TensorSpec("f_view", shape)]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        return [TensorSpec("fused", (1, p.d_model, p.grid, p.grid))]

    def forward(self, f_mem: Tensor, f_view: Tensor) -> Tensor:
        return self.model.fuse(f_mem, f_view)


class MaskDecoderStage(Stage):
    """Mask decoder with the object-pointer head and the no-object rule; also the S×S logits."""

    name = "mask_decoder"

    @classmethod
    def input_specs(cls, p: Preset) -> list[TensorSpec]:
        g = p.grid
        return [
            TensorSpec("fused", (1, p.d_model, g, g)),
            TensorSpec("feat_s0", (1, 32, 4 * g, 4 * g)),
            TensorSpec("feat_s1", (1, 64, 2 * g, 2 * g)),
        ]

    @classmethod
    def output_specs(cls, p: Preset) -> list[TensorSpec]:
        return [
            TensorSpec("low_res_logits", (1, 1, p.low_res, p.low_res)),
            TensorSpec("logits", (1, 1, p.image_size, p.image_size)),
            TensorSpec("iou", (1, 1)),
            TensorSpec("object_score", (1, 1)),
            TensorSpec("pointer", (1, p.d_model)),
        ]

    def forward(self, fused: Tensor, feat_s0: Tensor, feat_s1: Tensor) -> tuple[Tensor, ...]:
        d = self.model.decode(fused, feat_s0, feat_s1)
        return d.low_res_logits, self.model.upsample(d.low_res_logits), d.iou, d.object_score, d.pointer


STAGES: tuple[type[Stage], ...] = (
    ImageEncoderStage,
    MemoryEncoderStage,
    ViewAttentionStage,
    BankAttentionStage,
    MoEFusionStage,
    MaskDecoderStage,
)


def build_stages(model: LMEEC) -> dict[str, Stage]:
    """All stages over one model's weights, by graph name."""
    return {cls.name: cls(model).eval() for cls in STAGES}
