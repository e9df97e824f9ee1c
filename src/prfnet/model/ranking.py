"""Ranking candidates against one reference: the :class:`Ranking` result and the body of :meth:`PRFNet.rank`
(``model`` is a :class:`~.prfnet.PRFNet`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from .inputs import check_images, same_dtype
from .vectors import pair_vectors, window_vectors


@dataclass
class Ranking:
    """Result of :meth:`PRFNet.rank`: ``order`` indexes the candidates best (closest) first;
    ``scores`` (N,) are the distances of the candidates in their input order (lower = closer)."""

    order: torch.Tensor
    scores: torch.Tensor


def rank(model, ref: torch.Tensor, candidates: torch.Tensor | list[torch.Tensor], batch_size: int = 8) -> Ranking:
    """:meth:`PRFNet.rank`: checks the reference (1, 3, H, W) and the candidates, encodes the reference once (per
    tile) and scores the candidates ``batch_size`` at a time (views of a stacked tensor, no copy), in eval mode."""
    stacked = candidates if isinstance(candidates, torch.Tensor) else None
    if stacked is not None:
        candidates = list(stacked.split(1))
    if not candidates:
        raise InputError("rank needs at least one candidate")
    if ref.ndim != 4 or ref.shape[0] != 1:
        raise InputError(f"rank takes one reference of shape (1, 3, H, W), got {tuple(ref.shape)}")
    check_images(ref, *candidates, names=("ref", *(f"candidate {i}" for i in range(len(candidates)))))
    ref = model.prepare(ref)
    if stacked is not None:  # views of the caller's tensor, no copy
        chunks = list(stacked.split(batch_size))
    else:
        chunks = [torch.cat(same_dtype(candidates[i : i + batch_size])) for i in range(0, len(candidates), batch_size)]
    with model.evaluating():
        if not model.will_tile(*ref.shape[-2:]):
            ref_feats = model.features(ref)
            found = [pair_vectors(model, ref_feats, model.prepare(c)) for c in chunks]
        else:
            found = window_vectors(model, ref, [model.prepare(c) for c in chunks])
        scores = model.distance(torch.cat(found))
    return Ranking(order=torch.argsort(scores, stable=True), scores=scores)
