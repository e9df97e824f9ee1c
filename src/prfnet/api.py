"""File-level API used by the command line and by scripts: load a model, compare/score/rank files.

Every function runs under ``torch.inference_mode`` and raises :class:`~prfnet.errors.PRFNetError`
subclasses for user errors (missing files, size mismatch, bad checkpoint).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CheckpointError, InputError
from .images import load_image
from .model import PRFNet

log = logging.getLogger(__name__)

CHECKPOINT_ENV = "PRFNET_CHECKPOINT"
NO_CHECKPOINT_HELP = (
    "no checkpoint given: pass --checkpoint PATH or set $PRFNET_CHECKPOINT to a prfnet .safetensors file "
    "(train one with `prfnet train` or `prfnet demo`); --random-init runs an untrained model for smoke tests"
)


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU. An unavailable CUDA request is an :class:`InputError`."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"bad device {device!r}: {exc}") from None


def load_model(
    checkpoint: str | Path | None = None,
    device: str | None = "cpu",
    random_init: bool = False,
    backbone: str = "seres2net50",
    tile_size: int | None = None,
    tile_stride: int | None = None,
    warn: bool = True,
) -> PRFNet:
    """A model in eval mode from ``checkpoint`` (or ``$PRFNET_CHECKPOINT``).

    With ``random_init=True`` and no checkpoint, an untrained ``backbone`` model (answers are
    meaningless; for smoke tests and timing only), with a logged warning unless ``warn=False``.
    """
    checkpoint = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
    dev = resolve_device(device)
    if checkpoint is not None:
        return PRFNet.from_pretrained(checkpoint, map_location=dev, tile_size=tile_size, tile_stride=tile_stride)
    if not random_init:
        raise CheckpointError(NO_CHECKPOINT_HELP)
    if warn:
        log.warning("RANDOM-INIT model: untrained weights, its answers mean NOTHING (smoke tests/timing only)")
    return PRFNet(backbone, tile_size=tile_size, tile_stride=tile_stride).to(dev).eval()


@dataclass
class Comparison:
    """Outcome of one 2AFC comparison. ``prob_a``: P(A closer to the reference) in (0, 1);
    ``score_a``/``score_b``: distances to the reference (>= 0, lower = closer)."""

    closer: str
    prob_a: float
    score_a: float
    score_b: float

    def as_dict(self) -> dict:
        return {"closer": self.closer, "prob_a": self.prob_a, "score_a": self.score_a, "score_b": self.score_b}


def _same_size(ref: torch.Tensor, path: Path, img: torch.Tensor, ref_path: Path) -> None:
    if img.shape[-2:] != ref.shape[-2:]:
        raise InputError(
            f"{path}: size {img.shape[-1]}x{img.shape[-2]} differs from the reference {ref_path} "
            f"({ref.shape[-1]}x{ref.shape[-2]}); images must have the same size"
        )


@torch.inference_mode()
def compare_files(model: PRFNet, ref: str | Path, a: str | Path, b: str | Path) -> Comparison:
    """Which of the files ``a`` and ``b`` is closer to ``ref``."""
    r, x, y = (load_image(p) for p in (ref, a, b))
    for p, img in ((a, x), (b, y)):
        _same_size(r, Path(p), img, Path(ref))
    ranking = model.rank(r, [x, y], batch_size=2)
    score_a, score_b = ranking.scores.tolist()
    prob_a = float(torch.sigmoid(torch.tensor(score_b - score_a)))
    return Comparison("A" if prob_a >= 0.5 else "B", prob_a, score_a, score_b)


@torch.inference_mode()
def score_files(
    model: PRFNet,
    ref: str | Path,
    dists: Sequence[str | Path],
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Distance of each file in ``dists`` to ``ref`` (>= 0, lower = closer), in input order.
    Files are decoded ``batch_size`` at a time. Reference features are computed once, except with
    tiling, where the reference's tiles are re-encoded per batch so that only one batch of full-size
    images is ever in memory."""
    r = load_image(ref)
    windows_on = model.config.tile_size is not None
    feats = None if windows_on else model.encode(r)
    scores: list[float] = []
    for start in range(0, len(dists), batch_size):
        paths = dists[start : start + batch_size]
        imgs = [load_image(p) for p in paths]
        for p, img in zip(paths, imgs, strict=True):
            _same_size(r, Path(p), img, Path(ref))
        batch = torch.cat(imgs)
        s = model.score(r if windows_on else feats, batch)
        scores.extend(s.tolist())
        if progress:
            progress(len(paths))
    return scores


def rank_files(
    model: PRFNet,
    ref: str | Path,
    candidates: Sequence[str | Path],
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, float]]:
    """(path, distance) of each candidate, best (closest) first; ties keep the input order."""
    scores = score_files(model, ref, candidates, batch_size, progress)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    return [(str(candidates[i]), scores[i]) for i in order]
