"""What the adapters share: a frozen model from a :class:`PRFNet` or a checkpoint path, and image inputs."""

from __future__ import annotations

from pathlib import Path

import torch

from ..images import load_image
from ..model import PRFNet
from ..model.loading import load_model


def frozen_model(model: PRFNet | str | Path | None, map_location: str | torch.device = "cpu") -> PRFNet:
    """``model`` itself (a :class:`PRFNet`, frozen IN PLACE: ``requires_grad_(False)``, eval mode) or the model
    of the checkpoint file ``model`` (``None``: ``$PRFNET_CHECKPOINT``), loaded on ``map_location`` by
    :func:`prfnet.api.load_model`; :class:`CheckpointError` if neither."""
    if not isinstance(model, PRFNet):
        model = load_model(model, map_location)
    return model.requires_grad_(False).eval()


def as_batch(image: torch.Tensor | str | Path) -> torch.Tensor:
    """A tensor unchanged (the model checks it: (N, 3, H, W) float in [0, 1] or uint8), or the image file at
    ``image`` as (1, 3, H, W) float32 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        return image
    return load_image(image)
