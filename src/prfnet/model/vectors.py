"""Pair vectors of image batches: the scoring internals behind :meth:`PRFNet.score`, :meth:`PRFNet.rank` and
``PRFNet.forward``. In eval mode distorted images go through the backbone a chunk at a time; in train mode (or with
``inference.joint_batch``) the reference and every distorted batch go through it in one call; with tiling, the
vectors of the tile windows are averaged. ``model`` is a :class:`~.prfnet.PRFNet`; these are the bodies of its
private methods ``_pair_vectors``, ``_joint_features`` and ``_vectors`` (:func:`window_vectors`).
"""

from __future__ import annotations

import torch

from .inputs import same_dtype


def pair_vectors(model, ref_feats: list[torch.Tensor], dist: torch.Tensor) -> torch.Tensor:
    """``model.pair_vector(ref_feats, model.features(dist))`` (N, F), eval mode, ``inference.backbone_batch`` images
    at a time on the torch path (all at once on a runtime); a reference batch of 1 is shared by all N images."""
    step = (model.inference.backbone_batch if model.runtime is None else None) or dist.shape[0]
    if ref_feats[0].shape[0] == 1:  # one reference for all
        return torch.cat([model.pair_vector(ref_feats, model.features(d)) for d in dist.split(step)])
    pairs = zip(zip(*(r.split(step) for r in ref_feats), strict=True), dist.split(step), strict=True)
    return torch.cat([model.pair_vector(list(r), model.features(d)) for r, d in pairs])  # a reference per image


def joint_features(model, images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Features of several batches from one backbone call, so batch statistics (train mode) are shared."""
    sizes = [x.shape[0] for x in images]
    images = same_dtype(images)
    return [list(parts) for parts in zip(*(f.split(sizes) for f in model.features(torch.cat(images))), strict=True)]


def window_vectors(model, ref: torch.Tensor, dists: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per distorted batch, the pair vector (N, F) against ``ref``; the mean over the tile windows when tiling."""
    windows = model.windows(*ref.shape[-2:])
    sums = [0.0] * len(dists)
    for rows, cols in windows:
        if model.training or model.inference.joint_batch:
            ref_feats, *dist_feats = joint_features(model, [x[..., rows, cols] for x in (ref, *dists)])
            found = [model.pair_vector(ref_feats, feats) for feats in dist_feats]
        else:
            ref_feats = model.features(ref[..., rows, cols])
            found = [pair_vectors(model, ref_feats, d[..., rows, cols]) for d in dists]
        sums = [s + v for s, v in zip(sums, found, strict=True)]
    return [s / len(windows) for s in sums]
