"""PRFNet the pyiqa way: ``metric(dist, ref)``, DISTORTED FIRST, as every pyiqa metric.

:class:`PyIQAMetric` behaves like the object ``pyiqa.create_metric`` returns (``lower_better``, ``score_range``,
``metric_mode``, ``.to(device)``, tensors or file paths) without needing pyiqa. :func:`register_pyiqa` makes
``pyiqa.create_metric("prfnet", checkpoint=...)`` work when pyiqa is installed (``pip install prfnet[pyiqa]``; its
licence is PolyForm Noncommercial: prfnet copies nothing of it and never requires it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..model import PRFNet
from ._common import as_batch, frozen_model
from .loss import PRFNetLoss

NAME = "prfnet"
ARCH = "PRFNetArch"
#: pyiqa's format for a range: the distance is >= 0 and unbounded above (0 = identical)
SCORE_RANGE = "0, +inf"


class PyIQAMetric(nn.Module):
    """A pyiqa-compatible full-reference metric: ``metric(dist, ref)`` -> (N,) float32 distances >= 0, lower =
    closer to the reference (``lower_better = True``).

    Args:
        model: a :class:`PRFNet` (frozen in place) or a ``.safetensors`` checkpoint path (``None``:
            ``$PRFNET_CHECKPOINT``).
        as_loss: as in pyiqa: ``forward`` keeps the graph and returns the mean distance, a scalar, with
            gradients to ``dist`` only (:class:`~prfnet.integrations.loss.PRFNetLoss`).
        device: where the model runs (``None``: where it is).

    ``forward(dist, ref)`` (also ``dist=``, ``ref=`` by keyword): tensors (N, 3, H, W) in [0, 1] (``ref`` may
    be a batch of 1) or image file paths, read as (1, 3, H, W) in [0, 1].
    """

    lower_better = True
    metric_mode = "FR"
    score_range = SCORE_RANGE

    def __init__(self, model: PRFNet | str | Path | None = None, as_loss: bool = False, device=None):
        super().__init__()
        self.net = frozen_model(model)
        if device is not None:
            self.net.to(device)
        self.as_loss = as_loss
        self.metric_name = NAME
        self.loss = PRFNetLoss(self.net) if as_loss else None  # caches the reference's features

    @property
    def device(self) -> torch.device:
        return self.net.device

    def train(self, mode: bool = True) -> PyIQAMetric:
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, dist: torch.Tensor | str | Path, ref: torch.Tensor | str | Path | None = None) -> torch.Tensor:
        if ref is None:
            raise InputError("prfnet is a full-reference metric: call metric(dist, ref), the distorted image first")
        dist, ref = as_batch(dist), as_batch(ref)
        if self.loss is not None:
            return self.loss(dist, ref)
        with torch.no_grad():
            return self.net.score(ref=ref, dist=dist)


class PRFNetArch(nn.Module):
    """The network pyiqa's ``create_metric`` builds: ``forward(dist, ref)`` tensors (N, 3, H, W) in [0, 1] ->
    (N,) distances. ``checkpoint``: a ``.safetensors`` path (``None``: ``$PRFNET_CHECKPOINT``); ``tile_size``:
    score in tiles (see ``PRFNet.set_tiling``)."""

    def __init__(self, checkpoint: str | Path | None = None, tile_size: int | None = None):
        super().__init__()
        self.net = frozen_model(checkpoint)
        if tile_size is not None:
            self.net.set_tiling(tile_size)

    def train(self, mode: bool = True) -> PRFNetArch:
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        # pyiqa decides the grad mode (as_loss); the model's distance has finite gradients everywhere
        return self.net.score(ref=ref, dist=dist)


def register_pyiqa(name: str = NAME) -> bool:
    """Register PRFNet with pyiqa, so that ``pyiqa.create_metric(name, checkpoint=PATH)`` builds it (an FR metric,
    ``lower_better=True``, called ``metric(dist, ref)``). Returns False, changing nothing, when pyiqa is not
    installed; True once registered (calling it again is harmless)."""
    try:
        from pyiqa.default_model_configs import DEFAULT_CONFIGS
        from pyiqa.utils.registry import ARCH_REGISTRY
    except ImportError:
        return False
    if ARCH not in ARCH_REGISTRY:
        ARCH_REGISTRY.register(PRFNetArch)
    DEFAULT_CONFIGS[name] = {
        "metric_opts": {"type": ARCH},
        "metric_mode": "FR",
        "lower_better": True,
        "score_range": SCORE_RANGE,
    }
    return True
