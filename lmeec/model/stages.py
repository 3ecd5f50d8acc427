"""The step split into static-shape stages over the reference weights: one implementation for the
`torch` backend, the ONNX export and (through ONNX) TensorRT.

Shapes (S = image size, g = S/16, T = g², C = 256, M = 64): every input and output has a fixed shape, and
content-independent tensors (sine position encodings, RoPE tables, prompt tokens) are constants inside
the graphs. Empty bank slots and pointers are masked by additive key biases, so a warm-up frame with k
valid slots gives the same result as the reference's shorter sequence.

Several objects: every stage after the image encoder also exists for a batch of K objects (graph name
`<stage>_k<K>`, K from `object_profiles`); the target view's features enter once and are expanded over K
inside the graph. K = 1 keeps the plain names and shapes.
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


def object_profiles(max_objects: int) -> tuple[int, ...]:
    """Object batch sizes exported for a maximum K: powers of two below it, and K itself (8 -> 1, 2, 4, 8)."""
    if max_objects < 1:
        raise ValueError(f"max_objects must be at least 1, got {max_objects}")
    return tuple(
        sorted({2**i for i in range(max_objects.bit_length()) if 2**i < max_objects} | {max_objects})
    )


def graph_name(stage: str, objects: int = 1) -> str:
    """Graph name of a stage at object batch K: the stage's name at K = 1, `<stage>_k<K>` above."""
    return stage if objects == 1 else f"{stage}_k{objects}"


def _per_object(objects: int, *shape: int) -> tuple[int, ...]:
    """A per-object input's shape: unchanged at K = 1 (the single-object graphs), a leading K above."""
    return shape if objects == 1 else (objects, *shape)


class Stage(nn.Module):
    """A stage over the shared LMEEC weights with declared static inputs and outputs, for K objects."""

    name: str
    batched: bool = True  # runs once per object (False: once per frame pair, whatever K)

    def __init__(self, model: LMEEC, objects: int = 1) -> None:
        super().__init__()
        self.model = model
        self.preset = model.preset
        self.objects = objects
        self.graph = graph_name(self.name, objects)

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        raise NotImplementedError

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        raise NotImplementedError

    def inputs(self) -> list[TensorSpec]:
        return self.input_specs(self.preset, self.objects)

    def outputs(self) -> list[TensorSpec]:
        return self.output_specs(self.preset, self.objects)

    def _expand(self, x: Tensor) -> Tensor:
        """The target view's [1, …] tensor repeated for the K objects."""
        return x.expand(self.objects, *x.shape[1:])

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
    batched = False
    frames = 2  # frames encoded per call: the source and target views

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        s = p.image_size
        return [TensorSpec("images", (cls.frames, 3, s, s))]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        g, n = p.grid, cls.frames
        return [
            TensorSpec("feat_s0", (n, 32, 4 * g, 4 * g)),
            TensorSpec("feat_s1", (n, 64, 2 * g, 2 * g)),
            TensorSpec("feats", (n, p.d_model, g, g)),
        ]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.model.encode_frames(images)
        return f.feat_s0, f.feat_s1, f.feats


class MemoryEncoderStage(Stage):
    """Batch 2K (K source memories from their 0/1 masks, then K target memories from predicted logits)
    -> tokens [2K,T,64]."""

    name = "memory_encoder"

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        b = 2 * objects
        return [
            TensorSpec("feats", (b, p.d_model, p.grid, p.grid)),
            TensorSpec("mask_logits", (b, 1, p.image_size, p.image_size)),
            TensorSpec("object_score", (b, 1)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("memory", (2 * objects, p.tokens, p.mem_dim))]

    def forward(self, feats: Tensor, mask_logits: Tensor, object_score: Tensor) -> Tensor:
        memory, _ = self.model.encode_memory(feats, mask_logits, object_score)
        return memory.flatten(2).transpose(1, 2)


class _AttentionStage(Stage):
    def __init__(self, model: LMEEC, objects: int = 1) -> None:
        super().__init__(model, objects)
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
                self._expand(feats),
                self._expand(self.get_buffer("target_pos")),
                memory.transpose(0, 1),
                memory_pos.transpose(0, 1),
                n_ptr,
            )


class ViewAttentionStage(_AttentionStage):
    """View expert: target tokens attend to this frame's source memory (T memory tokens)."""

    name = "memory_attention_view"

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("memory", (objects, p.tokens, p.mem_dim)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("f_view", (objects, p.d_model, p.grid, p.grid))]

    def forward(self, feats: Tensor, memory: Tensor) -> Tensor:
        return self._attend(feats, memory, self._expand(self.get_buffer("memory_pos")[None]), 0, None)


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
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [
            TensorSpec("feats", (1, p.d_model, p.grid, p.grid)),
            TensorSpec("bank", (objects, cls.keys(p), p.mem_dim)),
            TensorSpec("slot_tpos", (cls.slots(p),), "int64"),
            TensorSpec("slot_valid", _per_object(objects, cls.slots(p))),
            TensorSpec("pointer_dist", _per_object(objects, cls.pointers(p))),
            TensorSpec("pointer_valid", _per_object(objects, cls.pointers(p))),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("f_mem", (objects, p.d_model, p.grid, p.grid))]

    def forward(
        self,
        feats: Tensor,
        bank: Tensor,
        slot_tpos: Tensor,
        slot_valid: Tensor,
        pointer_dist: Tensor,
        pointer_valid: Tensor,
    ) -> Tensor:
        model, tokens, k = self.model, self.preset.tokens, self.objects
        slot_valid, pointer_dist, pointer_valid = (
            x.reshape(k, -1) for x in (slot_valid, pointer_dist, pointer_valid)
        )
        tpos = model.maskmem_tpos_enc.flatten(1)[slot_tpos]  # [slots, 64]
        slot_pos = (self.get_buffer("memory_pos")[None] + tpos[:, None]).flatten(0, 1)  # [slots*T, 64]
        ptr_pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(pointer_dist, dim=model.hidden_dim))
        ptr_pos = ptr_pos.repeat_interleave(POINTER_SPLIT, dim=1)  # [K, pointers*4, 64]
        memory_pos = torch.cat((self._expand(slot_pos[None]), ptr_pos), dim=1)
        valid = torch.cat(
            (
                slot_valid.repeat_interleave(tokens, dim=1),
                pointer_valid.repeat_interleave(POINTER_SPLIT, dim=1),
            ),
            dim=1,
        )
        bias = (1.0 - valid) * MASKED  # [K, keys]
        return self._attend(feats, bank, memory_pos, self.pointers(self.preset) * POINTER_SPLIT, bias)


class MoEFusionStage(Stage):
    """MV-MoE: memory expert + view expert -> fused target features."""

    name = "moe_fusion"

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        shape = (objects, p.d_model, p.grid, p.grid)
        return [TensorSpec("f_mem", shape), TensorSpec("f_view", shape)]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        return [TensorSpec("fused", (objects, p.d_model, p.grid, p.grid))]

    def forward(self, f_mem: Tensor, f_view: Tensor) -> Tensor:
        return self.model.fuse(f_mem, f_view)


class MaskDecoderStage(Stage):
    """Mask decoder with the object-pointer head and the no-object rule; also the S×S logits."""

    name = "mask_decoder"

    @classmethod
    def input_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        g = p.grid
        return [
            TensorSpec("fused", (objects, p.d_model, g, g)),
            TensorSpec("feat_s0", (1, 32, 4 * g, 4 * g)),
            TensorSpec("feat_s1", (1, 64, 2 * g, 2 * g)),
        ]

    @classmethod
    def output_specs(cls, p: Preset, objects: int = 1) -> list[TensorSpec]:
        k = objects
        return [
            TensorSpec("low_res_logits", (k, 1, p.low_res, p.low_res)),
            TensorSpec("logits", (k, 1, p.image_size, p.image_size)),
            TensorSpec("iou", (k, 1)),
            TensorSpec("object_score", (k, 1)),
            TensorSpec("pointer", (k, p.d_model)),
        ]

    def forward(self, fused: Tensor, feat_s0: Tensor, feat_s1: Tensor) -> tuple[Tensor, ...]:
        d = self.model.decode(fused, self._expand(feat_s0), self._expand(feat_s1))
        return d.low_res_logits, self.model.upsample(d.low_res_logits), d.iou, d.object_score, d.pointer


STAGES: tuple[type[Stage], ...] = (
    ImageEncoderStage,
    MemoryEncoderStage,
    ViewAttentionStage,
    BankAttentionStage,
    MoEFusionStage,
    MaskDecoderStage,
)


def build_stages(model: LMEEC, max_objects: int = 1) -> dict[str, Stage]:
    """All stages over one model's weights, by graph name, for every object profile up to max_objects."""
    stages = {cls.name: cls(model).eval() for cls in STAGES}
    for k in object_profiles(max_objects)[1:]:
        stages |= {graph_name(cls.name, k): cls(model, k).eval() for cls in STAGES if cls.batched}
    return stages
