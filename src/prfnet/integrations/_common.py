"""What the adapters share: a frozen model from a :class:`PRFNet` or a checkpoint path, and image inputs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..images import load_image
from ..model import PRFNet

CHECKPOINT_ENV = "PRFNET_CHECKPOINT"


def frozen_model(model: PRFNet | str | Path | None, map_location: str | torch.device = "cpu") -> PRFNet:
    """``model`` itself (a :class:`PRFNet`, frozen IN PLACE: ``requires_grad_(False)``, eval mode) or the model
    of the checkpoint file ``model`` (``None``: ``$PRFNET_CHECKPOINT``); :class:`CheckpointError` if neither."""
    if model is None:
        model = os.environ.get(CHECKPOINT_ENV) or None
        if model is None:
            raise CheckpointError(
                f"no checkpoint given: pass a PRFNet or a .safetensors path, or set ${CHECKPOINT_ENV}"
            )
    if not isinstance(model, PRFNet):
        model = PRFNet.from_pretrained(model, map_location=map_location)
    return model.requires_grad_(False).eval()


def as_batch(image: torch.Tensor | str | Path) -> torch.Tensor:
    """A tensor unchanged (the model checks it: (N, 3, H, W) float in [0, 1] or uint8), or the image file at
    ``image`` as (1, 3, H, W) float32 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        return image
    return load_image(image)
