"""File-level API used by the command line and by scripts: load a model, compare/score/rank files.

Every function runs under ``torch.inference_mode`` and raises :class:`~prfnet.errors.PRFNetError`
subclasses for user errors (missing files, size mismatch, bad checkpoint, an unusable device, a model
whose outputs are NaN). Images are decoded with ``keep_8bit=True``: an 8-bit file stays uint8 (1 byte per
sample) for the whole image, and the model converts one tile (or one batch of candidates) at a time to
float32 in [0, 1], so a tiled model scores images far larger than float32 copies would fit in memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CheckpointError, InputError, ModelOutputError
from .images import DEFAULT_MAX_PIXELS, load_image
from .model import PRFNet

log = logging.getLogger(__name__)

CHECKPOINT_ENV = "PRFNET_CHECKPOINT"
NO_CHECKPOINT_HELP = (
    "no checkpoint given: pass --checkpoint PATH or set $PRFNET_CHECKPOINT to a prfnet .safetensors file "
    "(train one with `prfnet train` or `prfnet demo`); --random-init runs an untrained model for smoke tests"
)
_DEVICE_ERRORS = (RuntimeError, AssertionError, AttributeError, ValueError, TypeError, NotImplementedError)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU. Any other device is tried with a one-element tensor: one
    torch cannot use here (no CUDA, no MPS, no XPU, a GPU index that does not exist, ``meta``, a typo) is an
    :class:`InputError` with one line."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except _DEVICE_ERRORS as exc:
        raise InputError(f"bad device {str(device)!r}: {_one_line(exc)} (cpu, cuda, cuda:N, mps, xpu, ...)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "meta":
        raise InputError(f"device {str(device)!r} holds no data (shapes only): use cpu or an accelerator")
    try:
        torch.empty(1, device=dev)
    except _DEVICE_ERRORS as exc:
        raise InputError(f"device {str(device)!r} cannot be used here: {_one_line(exc)}") from None
    return dev


def model_name(model) -> str:
    """What error messages call ``model``: its checkpoint file, or a description."""
    return getattr(model, "source", None) or "the model (not loaded from a checkpoint)"


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


def load_model(
    checkpoint: str | Path | None = None,
    device: str | None = "cpu",
    random_init: bool = False,
    backbone: str = "seres2net50",
    tile_size: int | None = None,
    tile_stride: int | None = None,
    warn: bool = True,
    precision: str = "fp32",
    compile: bool = False,
) -> PRFNet:
    """A model in eval mode from ``checkpoint`` (or ``$PRFNET_CHECKPOINT``), set up for inference on ``device``
    (:meth:`PRFNet.optimize_for_inference`: the device's batching policy and memory format, the backbone's
    autocast ``precision``, and with ``compile`` a compiled backbone with frozen weights).

    With ``random_init=True`` and no checkpoint, an untrained ``backbone`` model (answers are
    meaningless; for smoke tests and timing only), with a logged warning unless ``warn=False``.
    """
    checkpoint = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
    dev = resolve_device(device)
    if checkpoint is not None:
        model = PRFNet.from_pretrained(checkpoint, map_location=dev, tile_size=tile_size, tile_stride=tile_stride)
    elif not random_init:
        raise CheckpointError(NO_CHECKPOINT_HELP)
    else:
        if warn:
            log.warning("RANDOM-INIT model: untrained weights, its answers mean NOTHING (smoke tests/timing only)")
        model = PRFNet(backbone, tile_size=tile_size, tile_stride=tile_stride)
        model.source = f"the --random-init {backbone} model"
        model = model.to(dev).eval()
    if checkpoint is not None:
        from .store import file_digest

        model.checkpoint_digest = file_digest(checkpoint)  # the score store's key (model_identity)
    return model.optimize_for_inference(precision, compile=compile)


def model_identity(model: PRFNet) -> str:
    """What a score store keys this model's scores on, as the model is now:
    ``prfnet/<sha256[:16]>/<tiling>/<precision>``, the SHA-256 of the checkpoint file :func:`load_model` read
    (else of the weights, hashed at each call, since in-memory weights may change), the tiling (``whole`` or
    ``tile-<size>x<stride>``) and the backbone precision (``fp32``, ``bf16``, ``fp16``)."""
    import hashlib

    digest = getattr(model, "checkpoint_digest", None)
    if digest is None:
        h = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        digest = h.hexdigest()
    c = model.config
    tiling = "whole" if c.tile_size is None else f"tile-{c.tile_size}x{c.tile_stride or c.tile_size}"
    return f"prfnet/{digest[:16]}/{tiling}/{model.inference.precision}"


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
            batch = batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch
            img = img.float().div_(255.0) if img.dtype == torch.uint8 else img
        batch[i] = img[0]
        del img
    return batch


@torch.inference_mode()
def compare_files(
    model: PRFNet, ref: str | Path, a: str | Path, b: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Comparison:
    """Which of the files ``a`` and ``b`` is closer to ``ref``. ``max_pixels``: see :func:`prfnet.load_image`.
    :class:`ModelOutputError` if the model's scores are not finite."""
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
    :class:`ModelOutputError` if the model's scores are not finite."""
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
