"""PRFNet: backbone, blocks, the model, its checkpoints, and the one loader (:func:`.loading.load_model`)."""

from .backbone import SE_RES2NET50, build_backbone
from .blocks import ConcatPair, CrossSubtract, ProgressiveFusion, SingleScaleFusion
from .config import PRFNetConfig
from .prfnet import PRFNet, Ranking, ReferenceFeatures, check_images

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
