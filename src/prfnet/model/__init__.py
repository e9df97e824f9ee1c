"""PRFNet architecture: backbone, blocks, the model and its checkpoints."""

from .backbone import SE_RES2NET50, build_backbone
from .blocks import ConcatPair, CrossSubtract, ProgressiveFusion, SingleScaleFusion
from .prfnet import PRFNet, PRFNetConfig, Ranking, ReferenceFeatures, check_images

__all__ = [
    "SE_RES2NET50",
    "ConcatPair",
    "CrossSubtract",
    "PRFNet",
    "PRFNetConfig",
    "ProgressiveFusion",
    "Ranking",
    "ReferenceFeatures",
    "SingleScaleFusion",
    "build_backbone",
    "check_images",
]
