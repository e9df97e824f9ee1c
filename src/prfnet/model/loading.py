"""The one PRFNet loader: a checkpoint (a file, an http(s) URL or a published name; or ``$PRFNET_CHECKPOINT``; or a
seeded untrained model) on a device, set up for inference. :func:`load_model` is re-exported by :mod:`prfnet.api`;
the command line, the integrations (``frozen_model``) and metric selection (``select_metrics``) load through it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import CheckpointError, InputError
from .prfnet import PRFNet
from .runtime import check_runtime, check_threads

log = logging.getLogger(__name__)

#: the environment variable naming the default checkpoint (a file, an http(s) URL or a published name)
CHECKPOINT_ENV = "PRFNET_CHECKPOINT"
NO_CHECKPOINT_HELP = (
    "no checkpoint given: pass --checkpoint PATH|URL|NAME (in Python: a checkpoint path, URL or name) or set "
    "$PRFNET_CHECKPOINT to a prfnet .safetensors file (train one with `prfnet train` or `prfnet demo`; "
    "docs/checkpoints.md); --random-init runs an untrained model for smoke tests"
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


def load_model(
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = "cpu",
    random_init: bool = False,
    backbone: str = "seres2net50",
    tile_size: int | None = None,
    tile_stride: int | None = None,
    warn: bool = True,
    precision: str = "fp32",
    compile: bool = False,
    seed: int = 0,
    runtime: str = "torch",
    threads: int | None = None,
    sha256: str | None = None,
) -> PRFNet:
    """A model in eval mode from ``checkpoint`` (or ``$PRFNET_CHECKPOINT``): a ``.safetensors`` file, an http(s) URL
    (downloaded once into prfnet's cache; ``sha256`` or ``URL#sha256=HEX`` pins it) or a published name
    (docs/checkpoints.md; :meth:`PRFNet.from_pretrained`), set up for inference on ``device``
    (:meth:`PRFNet.optimize_for_inference`: the device's batching policy and memory format, the backbone's
    autocast ``precision``, and with ``compile`` a compiled backbone with frozen weights).

    With ``random_init=True`` and no checkpoint, an untrained ``backbone`` model whose weights depend on ``seed``
    only (built under ``torch.random.fork_rng`` with ``torch.manual_seed(seed)``: the same weights for every caller,
    the caller's random state untouched); its answers are meaningless (smoke tests and timing only); a logged
    warning unless ``warn=False``. Without either, a :class:`CheckpointError`.

    ``runtime``: ``"torch"`` or ``"onnxruntime"`` (CPU, fp32; :meth:`PRFNet.use_runtime`, ``threads`` its
    intra-op threads); checked before the checkpoint is read.

    The checkpoint file is read once, here; its SHA-256 (what a score store keys scores on) is computed only
    when a store asks for it (:func:`prfnet.api.model_identity`, from ``model.checkpoint_file``).
    """
    checkpoint = checkpoint or os.environ.get(CHECKPOINT_ENV) or None
    dev = resolve_device(device)
    check_runtime(runtime, dev, precision, compile)
    check_threads(threads)
    if checkpoint is not None:
        model = PRFNet.from_pretrained(
            checkpoint, map_location=dev, sha256=sha256, tile_size=tile_size, tile_stride=tile_stride
        )
    elif not random_init:
        raise CheckpointError(NO_CHECKPOINT_HELP)
    else:
        if warn:
            log.warning("RANDOM-INIT model: untrained weights, its answers mean NOTHING (smoke tests/timing only)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PRFNet(backbone, tile_size=tile_size, tile_stride=tile_stride)
        model.source = f"the --random-init {backbone} model"
        model = model.to(dev).eval()
    return model.optimize_for_inference(precision, compile=compile).use_runtime(runtime, threads)
