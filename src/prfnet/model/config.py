"""The architecture description of a PRFNet: what its constructor takes and every checkpoint stores."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .backbone import BACKBONE_NORMS, SE_GATES, SE_RES2NET50
from .blocks import FUSION_BLOCKS, PAIR_BLOCKS
from .inputs import MIN_SIDE


@dataclass(frozen=True)
class PRFNetConfig:
    """Everything needed to rebuild the architecture (stored in every checkpoint)."""

    backbone: str = SE_RES2NET50
    pair_block: str = "cross_subtract"  # or "concat" (ablation)
    fusion: str = "progressive"  # or "single_scale" (ablation)
    pair_channels: int = 64
    fusion_channels: int = 64
    attention: bool = True
    se_gate: str = "identity"  # or "sigmoid": timm's SE, gates near 0.5 at initialisation (format-1 models)
    backbone_norm: str = "frozen"  # or "batch": batch statistics in training, shared by R, A and B
    tile_size: int | None = None  # None: whole image; else square tiles of this side
    tile_stride: int | None = None  # None: equal to tile_size (no overlap)

    def __post_init__(self):
        if self.pair_block not in PAIR_BLOCKS:
            raise ConfigError(f"pair_block must be one of {sorted(PAIR_BLOCKS)}, got {self.pair_block!r}")
        if self.fusion not in FUSION_BLOCKS:
            raise ConfigError(f"fusion must be one of {sorted(FUSION_BLOCKS)}, got {self.fusion!r}")
        if self.tile_size is not None and self.tile_size < MIN_SIDE:
            raise ConfigError(f"tile_size must be >= {MIN_SIDE}, got {self.tile_size}")
        if self.se_gate not in SE_GATES:
            raise ConfigError(f"se_gate must be one of {SE_GATES}, got {self.se_gate!r}")
        if self.backbone_norm not in BACKBONE_NORMS:
            raise ConfigError(f"backbone_norm must be one of {BACKBONE_NORMS}, got {self.backbone_norm!r}")
        if self.tile_stride is not None and self.tile_stride <= 0:
            raise ConfigError(f"tile_stride must be positive, got {self.tile_stride}")
        if self.tile_stride is not None and self.tile_size is None:
            raise ConfigError("tile_stride needs tile_size")
        if self.tile_stride is not None and self.tile_stride > self.tile_size:
            raise ConfigError(
                f"tile_stride ({self.tile_stride}) must not exceed tile_size ({self.tile_size}): "
                "the pixels between tiles would never be compared"
            )
