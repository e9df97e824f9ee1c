"""File-level API used by the command line and by scripts: load a model, compare/score/rank files, and the model
identity a score store keys scores on.

:func:`load_model` (the one loader, :mod:`prfnet.model.loading`) and the file functions raise
:class:`~prfnet.errors.PRFNetError` subclasses for user errors (missing files, size mismatch, bad checkpoint, an
unusable device, a model whose outputs are NaN); :func:`compare_files` and :func:`score_files` (so
:func:`rank_files`) run under ``torch.inference_mode``. Images are decoded with ``keep_8bit=True``: an 8-bit file
stays uint8 (1 byte per sample) for the whole image, and the model converts one tile (or one batch of candidates)
at a time to float32 in [0, 1], so a tiled model scores images far larger than float32 copies would fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InputError, ModelOutputError
from .images import DEFAULT_MAX_PIXELS, image_size, load_image, unit_float
from .model import PRFNet
from .model.digest import weights_digest, weights_sha256
from .model.loading import CHECKPOINT_ENV, NO_CHECKPOINT_HELP, load_model, model_name, resolve_device

__all__ = [
    "CHECKPOINT_ENV",
    "NO_CHECKPOINT_HELP",
    "Comparison",
    "check_scoring_memory",
    "compare_files",
    "finite_outputs",
    "load_model",
    "model_identity",
    "model_name",
    "rank_files",
    "resolve_device",
    "score_files",
    "weights_digest",
]


def finite_outputs(model, values: torch.Tensor, what: str) -> list[float]:
    """``values`` (model outputs) as Python floats; :class:`ModelOutputError` naming the model's checkpoint
    when any of them is NaN or infinite (diverged or corrupt weights), instead of a confident answer."""
    values = torch.as_tensor(values).detach().to("cpu", torch.float64).reshape(-1)
    bad = ~torch.isfinite(values)
    if bad.any():
        raise ModelOutputError(
            f"{model_name(model)}: the model's output is not finite (NaN or infinity) for {int(bad.sum())} of "
            f"{values.numel()} scores ({what}): its weights have diverged or are corrupt; use another checkpoint"
        )
    return values.tolist()


def model_identity(model: PRFNet) -> str:
    """What a score store keys this model's scores on, as the model is now:
    ``prfnet/<sha256[:16]>/<tiling>/<precision>``: the SHA-256 of the checkpoint file that holds the model's
    weights (``model.checkpoint_file``, set by :func:`load_model` / ``PRFNet.from_pretrained``, unchanged on disk
    since; the file is read once per load: :meth:`~prfnet.model.checkpoint.CheckpointFile.sha256`), else of the weights
    (:func:`weights_digest`, at each call, since in-memory weights may change); the tiling (``whole`` or
    ``tile-<size>x<stride>``) and the backbone precision (``fp32``, ``bf16``, ``fp16``), and ``/onnxruntime`` when
    the model scores in onnxruntime (its scores agree with PyTorch's to float rounding, not bit for bit)."""
    digest = weights_sha256(model)
    c = model.config
    tiling = "whole" if c.tile_size is None else f"tile-{c.tile_size}x{c.tile_stride or c.tile_size}"
    runtime = "" if getattr(model, "runtime", None) is None else f"/{model.runtime.name}"
    return f"prfnet/{digest[:16]}/{tiling}/{model.inference.precision}{runtime}"


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


#: bytes per pixel of a decoded 8-bit file (uint8 RGB), and of Pillow's RGB image while it is copied into the tensor
DECODED_BYTES_PER_PIXEL, DECODING_BYTES_PER_PIXEL = 3, 4


def check_scoring_memory(model: PRFNet, ref: str | Path, images: int, max_pixels: int | None) -> None:
    """:class:`~prfnet.memory.NotEnoughMemory` (one line suggesting ``--tile``) when scoring ``images`` files of the
    size of ``ref`` (read from its header, nothing decoded) at once needs more memory than is available on the
    model's device (:meth:`PRFNet.check_memory`, with the decoded reference and images held beside it). A file above
    ``max_pixels`` is left to :func:`load_image`, which names the pixel limit."""
    width, height = image_size(ref)
    check = getattr(model, "check_memory", None)
    if check is None or (max_pixels and width * height > max_pixels):
        return
    how = f"in {model.config.tile_size} px tiles" if model.will_tile(height, width) else "as whole images"
    decoded = width * height * (DECODED_BYTES_PER_PIXEL * (images + 1) + DECODING_BYTES_PER_PIXEL)
    check(height, width, images, f"scoring against {ref} ({width}x{height} px) {images} at a time {how}", decoded)


def _load_batch(paths: Sequence[str | Path], ref: torch.Tensor, ref_path: str | Path, max_pixels) -> torch.Tensor:
    """The files as one (N, 3, H, W) tensor, each decoded straight into it (no second copy of the batch):
    uint8 when every file is 8-bit, else float32 in [0, 1]. Sizes are checked against ``ref``."""
    batch = None
    for i, p in enumerate(paths):
        img = load_image(p, max_pixels=max_pixels, keep_8bit=True)
        _same_size(ref, Path(p), img, Path(ref_path))
        if len(paths) == 1:
            return img
        if batch is None:
            shape = (len(paths), *img.shape[1:])
            batch = torch.empty(shape, dtype=img.dtype, memory_format=torch.channels_last)
        if batch.dtype != img.dtype:  # a 16-bit file among 8-bit ones: the batch becomes float
            batch, img = unit_float(batch), unit_float(img)
        batch[i] = img[0]
        del img
    return batch


@torch.inference_mode()
def compare_files(
    model: PRFNet, ref: str | Path, a: str | Path, b: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Comparison:
    """Which of the files ``a`` and ``b`` is closer to ``ref``. ``max_pixels``: see :func:`prfnet.load_image`.
    :class:`ModelOutputError` if the model's scores are not finite; :class:`~prfnet.memory.NotEnoughMemory` before
    anything is decoded if the images need more memory than is available (:func:`check_scoring_memory`)."""
    check_scoring_memory(model, ref, 2, max_pixels)
    r = load_image(ref, max_pixels=max_pixels, keep_8bit=True)
    pair = _load_batch([a, b], r, ref, max_pixels)
    ranking = model.rank(r, pair, batch_size=2)
    score_a, score_b = finite_outputs(model, ranking.scores, f"{a} and {b} against {ref}")
    prob_a = float(torch.sigmoid(torch.tensor(score_b - score_a)))
    return Comparison("A" if prob_a >= 0.5 else "B", prob_a, score_a, score_b)


@torch.inference_mode()
def score_files(
    model: PRFNet,
    ref: str | Path,
    dists: Sequence[str | Path],
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[float]:
    """Distance of each file in ``dists`` to ``ref`` (>= 0, lower = closer), in input order.
    Files are decoded ``batch_size`` at a time, 8-bit files as uint8 (see the module doc). Reference features
    are computed once, except with tiling, where the reference's tiles are re-encoded per batch so that only
    one batch of full-size images is ever in memory. ``max_pixels``: see :func:`prfnet.load_image`.
    :class:`ModelOutputError` if the model's scores are not finite; :class:`~prfnet.memory.NotEnoughMemory` before
    anything is decoded if a batch needs more memory than is available (:func:`check_scoring_memory`)."""
    if dists:
        check_scoring_memory(model, ref, min(batch_size, len(dists)), max_pixels)
    r = load_image(ref, max_pixels=max_pixels, keep_8bit=True)
    windows_on = model.config.tile_size is not None
    feats = None if windows_on else model.encode(r)
    scores: list[float] = []
    for start in range(0, len(dists), batch_size):
        paths = dists[start : start + batch_size]
        batch = _load_batch(paths, r, ref, max_pixels)
        s = model.score(r if windows_on else feats, batch)
        del batch
        scores.extend(finite_outputs(model, s, f"{paths[0]}{' ...' if len(paths) > 1 else ''} against {ref}"))
        if progress:
            progress(len(paths))
    return scores


def rank_files(
    model: PRFNet,
    ref: str | Path,
    candidates: Sequence[str | Path],
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[tuple[str, float]]:
    """(path, distance) of each candidate, best (closest) first; ties keep the input order."""
    scores = score_files(model, ref, candidates, batch_size, progress, max_pixels)
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    return [(str(candidates[i]), scores[i]) for i in order]
