"""PRFNet as a differentiable loss: ``PRFNetLoss(model)(dist, ref)``.

The loss is the model's own distance (:meth:`PRFNet.score`: >= 0, lower = closer, 0 for an identical image),
averaged (``reduction="mean"``), summed or per image. Gradients flow to the distorted image only: the weights
are frozen (``requires_grad=False``, eval mode) and the reference's features are computed once, without a
graph, and cached until another reference (or an in-place change of the same tensor) comes.

Gradients are finite everywhere, the identical image included: the two places where the distance has a
kink or a root are safe in PyTorch as the model computes them, so the loss needs no change of the forward
values. ``unit_normalise`` divides by ``sqrt(|f|^2 + 1e-10)`` (eps inside the root: slope at most 1e5, never
inf), and the pair block's ``|F_R - F_X|`` has gradient 0 (not NaN) where the features agree, so at
``dist == ref`` the gradient is exactly zero (the minimum). ``tests/integrations/test_loss.py`` checks both, whole
and tiled.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..model import PRFNet, check_images
from ._common import frozen_model

REDUCTIONS = ("mean", "sum", "none")


def _version(x: torch.Tensor) -> int | None:
    try:
        return x._version
    except RuntimeError:  # an inference-mode tensor has no version counter (and cannot change outside it)
        return None


class PRFNetLoss(nn.Module):
    """Differentiable PRFNet distance of distorted images to a reference.

    Args:
        model: a :class:`PRFNet` (frozen in place: ``requires_grad_(False)`` and eval mode; pass a copy if
            you keep training it) or the path of a ``.safetensors`` checkpoint.
        reduction: ``"mean"`` (default: a scalar, the mean distance), ``"sum"`` (a scalar) or ``"none"`` ((N,)).

    ``forward(dist, ref=None)``: ``dist`` (N, 3, H, W) float, nominally in [0, 1] (values an optimiser steps
    slightly outside are not refused; clamp them if your images must stay in range); ``ref`` (1 or N, 3, H, W)
    in [0, 1], or ``None`` for the reference of :meth:`set_reference`. A NaN or infinite ``dist`` is an
    :class:`~prfnet.errors.InputError`, as at every other entry point. Returns the distance, lower = closer,
    with gradients with respect to ``dist`` only. Tiling (``model.set_tiling``) is honoured as in
    :meth:`PRFNet.score`: the distance is the mean over tiles.
    """

    def __init__(self, model: PRFNet | str | Path, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.model = frozen_model(model)
        self.reduction = reduction
        self._ref: torch.Tensor | None = None  # kept alive, so its memory (data_ptr) cannot be reused
        self._key: tuple | None = None
        self._tiles: list[tuple[tuple[slice, slice], list[torch.Tensor]]] = []

    def train(self, mode: bool = True) -> PRFNetLoss:
        """The loss module's flag follows ``mode``; the model always stays in eval mode (frozen statistics)."""
        super().train(mode)
        self.model.eval()
        return self

    def _cache_key(self, ref: torch.Tensor) -> tuple:
        c = self.model.config
        return (
            ref.data_ptr(),
            _version(ref),
            tuple(ref.shape),
            ref.stride(),
            ref.dtype,
            ref.device,
            c.tile_size,
            c.tile_stride,
        )

    @torch.no_grad()
    def set_reference(self, ref: torch.Tensor) -> PRFNetLoss:
        """Encode ``ref`` (N, 3, H, W) in [0, 1] (or uint8 0..255) once, per tile when the model tiles; later
        calls of ``forward(dist)`` (or ``forward(dist, ref)`` with this same, unchanged tensor) reuse the
        features. Returns self."""
        check_images(ref, names=("ref",))
        model = self.model
        prepared = model.prepare(ref)
        windows = model.windows(*ref.shape[-2:])
        with model.evaluating():
            self._tiles = [((rows, cols), model.features(prepared[..., rows, cols])) for rows, cols in windows]
        self._ref, self._key = ref, self._cache_key(ref)
        return self

    def forward(self, dist: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        if ref is not None and (self._ref is None or self._key != self._cache_key(ref)):
            self.set_reference(ref)
        if self._ref is None:
            raise InputError("PRFNetLoss: no reference: call loss(dist, ref) or loss.set_reference(ref) first")
        if not isinstance(dist, torch.Tensor) or dist.ndim != 4 or dist.shape[1] != 3 or not dist.is_floating_point():
            raise InputError(f"dist: expected a float tensor (N, 3, H, W), got {getattr(dist, 'shape', type(dist))}")
        if dist.numel() and not torch.isfinite(dist.detach()).all():
            raise InputError("dist: contains NaN or infinite values (a diverged optimisation step?)")
        if dist.shape[-2:] != self._ref.shape[-2:]:
            size, ref_size = tuple(dist.shape[-2:]), tuple(self._ref.shape[-2:])
            raise InputError(f"dist size {size} differs from the reference's {ref_size}")
        n_ref = self._ref.shape[0]
        if n_ref not in (1, dist.shape[0]):
            raise InputError(f"batch sizes differ: reference {n_ref}, dist {dist.shape[0]}")
        model = self.model
        x = dist.to(model.device, torch.float32)
        total = 0.0
        with model.evaluating():
            for (rows, cols), ref_feats in self._tiles:
                total = total + model.pair_vector(ref_feats, model.features(x[..., rows, cols]))
            d = model.distance(total / len(self._tiles))
        if self.reduction == "mean":
            return d.mean()
        if self.reduction == "sum":
            return d.sum()
        return d
