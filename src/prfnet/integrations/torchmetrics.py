"""PRFNet as a torchmetrics ``Metric``: ``PRFNetDistance``, the mean (or sum, or per-image) distance.

Like torchmetrics' LPIPS it is called with ``(preds, target)``: ``preds`` = the distorted images, ``target`` = the
references; say ``update(dist=..., ref=...)`` to leave no doubt. The distance is :meth:`PRFNet.score`: >= 0,
lower = closer (``higher_is_better = False``). States are added with ``add_state(..., dist_reduce_fx=...)``, so
``compute()`` synchronises them across processes (DDP) like every torchmetrics metric.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from ..errors import InputError
from ..model import PRFNet
from ._common import frozen_model

REDUCTIONS = ("mean", "sum", "none")


class PRFNetDistance(Metric):
    """Accumulated PRFNet distance of distorted images to their references.

    Args:
        model: a :class:`PRFNet` (frozen in place: ``requires_grad_(False)``, eval mode) or a ``.safetensors``
            checkpoint path.
        reduction: ``"mean"`` (default) or ``"sum"`` of the distances of every image seen, or ``"none"``: all
            per-image distances (N_total,) in the order seen (per process, concatenated across processes).
        kwargs: torchmetrics' ``Metric`` options (``sync_on_compute``, ``dist_sync_on_step``, ...).

    ``update(preds, target)`` or ``update(dist=..., ref=...)``: distorted (N, 3, H, W) and references (N or 1,
    3, H, W), float in [0, 1] (or uint8 0..255). ``compute()``: a float64 scalar (mean/sum; NaN for a mean of
    no images) or a float32 (N_total,) tensor (none). Not differentiable (the update runs without a graph): use
    :class:`prfnet.PRFNetLoss` for gradients. Images are scored one ``update`` batch at a time, so results do
    not depend on how the images are split into batches beyond float32 rounding (below 1e-6 of a distance).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    def __init__(self, model: PRFNet | str | Path, reduction: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.model = frozen_model(model)
        self.reduction = reduction
        if reduction == "none":
            self.add_state("scores", default=[], dist_reduce_fx="cat")
        else:
            self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def train(self, mode: bool = True) -> PRFNetDistance:
        super().train(mode)
        self.model.eval()
        return self

    def update(
        self,
        preds: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        *,
        dist: torch.Tensor | None = None,
        ref: torch.Tensor | None = None,
    ) -> None:
        """Score ``dist`` (alias ``preds``) against ``ref`` (alias ``target``) and accumulate."""
        if (preds is not None and dist is not None) or (target is not None and ref is not None):
            raise InputError("give the distorted images as preds or dist, and the references as target or ref, once")
        dist = dist if dist is not None else preds
        ref = ref if ref is not None else target
        if dist is None or ref is None:
            raise InputError("update needs the distorted images (preds/dist) and the references (target/ref)")
        with torch.no_grad():
            scores = self.model.score(ref=ref, dist=dist).detach()
        if self.reduction == "none":
            self.scores.append(scores)
        else:
            self.total += scores.to(self.total.device, torch.float64).sum()
            self.count += scores.numel()

    def compute(self) -> torch.Tensor:
        if self.reduction == "none":
            if isinstance(self.scores, list) and not self.scores:
                return torch.zeros(0)
            return dim_zero_cat(self.scores)
        if self.reduction == "sum":
            return self.total
        return self.total / self.count

    def plot(self, val=None, ax=None):
        """torchmetrics' plot of one value (or a sequence of values, e.g. one per epoch) of :meth:`compute`: a
        ``(figure, axes)`` pair from matplotlib; ``val=None`` plots the current value. Lower = closer, from 0."""
        return self._plot(val, ax)
