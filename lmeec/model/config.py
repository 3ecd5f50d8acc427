"""Model presets: the paper's Hiera-B+ at 480 and smaller trunks that keep every LM-EEC addition."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Compression = Literal["drop", "mean"]
# How the given source mask enters the memory encoder: "research" passes the 0/1 mask through the logit path
# (sigmoid·20−10, so 0 / 4.62, the released quirk); "sam2" feeds ±10 logits as SAM 2 does for given masks.
SourceMask = Literal["research", "sam2"]


@dataclass(frozen=True)
class TrunkConfig:
    """Hiera trunk and FPN neck hyper-parameters (as in sam2's SAM 2.1 configs)."""

    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_att_blocks: tuple[int, ...]
    window_pos_embed_bkg_spatial_size: tuple[int, int]
    backbone_channel_list: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)


@dataclass(frozen=True)
class MemoryConfig:
    """Sizes of the two memory banks and the pointer ring (fixed by SAM 2.1's num_maskmem = 7)."""

    num_maskmem: int = 7  # 6 kept slots + the incoming frame
    max_obj_ptrs: int = 16  # pointers of t-1 … t-15
    compression: Compression = "drop"  # "drop" = released behaviour, "mean" = intended one

    @property
    def bank_slots(self) -> int:
        return self.num_maskmem - 1

    @property
    def pointer_slots(self) -> int:
        return self.max_obj_ptrs - 1


@dataclass(frozen=True)
class Preset:
    """A complete model configuration; `image_size` sets the token grid (image_size / 16 per side)."""

    name: str
    trunk: TrunkConfig
    image_size: int = 480
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    d_model: int = 256
    mem_dim: int = 64
    stride: int = 16
    source_mask: SourceMask = "research"

    @property
    def grid(self) -> int:
        """Tokens per side of the stride-16 feature map (30 at 480)."""
        return self.image_size // self.stride

    @property
    def tokens(self) -> int:
        return self.grid * self.grid

    @property
    def low_res(self) -> int:
        """Side of the decoder's low-resolution logits (120 at 480)."""
        return self.grid * 4

    def with_compression(self, compression: Compression) -> Preset:
        return replace(self, memory=replace(self.memory, compression=compression))

    def with_source_mask(self, source_mask: SourceMask) -> Preset:
        if source_mask not in ("research", "sam2"):
            raise ValueError(f"unknown source-mask encoding {source_mask!r}; choose 'research' or 'sam2'")
        return replace(self, source_mask=source_mask)


HIERA_B_PLUS = TrunkConfig(
    embed_dim=112,
    num_heads=2,
    stages=(2, 3, 16, 3),
    global_att_blocks=(12, 16, 20),
    window_pos_embed_bkg_spatial_size=(14, 14),
    backbone_channel_list=(896, 448, 224, 112),
)
HIERA_L = TrunkConfig(  # SAM 2.1 Hiera-L: the source tracker only (no LM-EEC preset)
    embed_dim=144,
    num_heads=2,
    stages=(2, 6, 36, 4),
    global_att_blocks=(23, 33, 43),
    window_pos_embed_bkg_spatial_size=(7, 7),
    backbone_channel_list=(1152, 576, 288, 144),
    window_spec=(8, 4, 16, 8),
)
HIERA_S = TrunkConfig(
    embed_dim=96,
    num_heads=1,
    stages=(1, 2, 11, 2),
    global_att_blocks=(7, 10, 13),
    window_pos_embed_bkg_spatial_size=(7, 7),
    backbone_channel_list=(768, 384, 192, 96),
)
HIERA_T = TrunkConfig(
    embed_dim=96,
    num_heads=1,
    stages=(1, 2, 7, 2),
    global_att_blocks=(5, 7, 9),
    window_pos_embed_bkg_spatial_size=(7, 7),
    backbone_channel_list=(768, 384, 192, 96),
)

PRESETS: dict[str, Preset] = {
    "b+": Preset("b+", HIERA_B_PLUS),
    "s": Preset("s", HIERA_S),
    "t": Preset("t", HIERA_T),
    # Small enough that a 10-frame take runs in seconds on a 2-core CPU; used by tests and demos.
    "test": Preset("test", HIERA_T, image_size=128),
}


def get_preset(name: str | Preset) -> Preset:
    """Look a preset up by name (a Preset passes through)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
