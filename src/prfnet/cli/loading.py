"""The one PRFNet loader of the command line: the options checked now, the model loaded when it is needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .app import warn_random_init
from .options import check_precision, check_runtime_options, check_tiling, checkpoint_value


def model_loader(
    checkpoint: str | Path | None,
    device: str,
    random_init: bool,
    backbone: str,
    tile: int | None = None,
    tile_stride: int | None = None,
    precision: str = "fp32",
    compile: bool = False,
    runtime: str = "torch",
    threads: int | None = None,
    required: bool = False,
) -> Callable[[], object]:
    """A function of no argument returning the PRFNet of these options (:func:`prfnet.api.load_model`: the same
    checkpoint rules, messages and ``--random-init`` seed for every command). ``--checkpoint`` (a file, a URL or a
    published name: its syntax, nothing downloaded), ``--tile``, ``--tile-stride``, ``--precision`` and ``--runtime``
    are checked now, so a command fails on them before it reads or writes anything;
    the model is loaded only when the returned function is called (a library function given it loads the model after
    its own input and output checks, and only if a metric needs it). An untrained model prints the loud warning then.
    ``required``: the command will run the model, so no checkpoint and no ``--random-init`` is the
    :class:`~prfnet.errors.CheckpointError` of :func:`prfnet.api.load_model` now, before anything is read or written."""
    checkpoint = checkpoint_value(checkpoint)
    if required and checkpoint is None and not random_init:
        from ..api import NO_CHECKPOINT_HELP
        from ..errors import CheckpointError

        raise CheckpointError(NO_CHECKPOINT_HELP)
    check_tiling(tile, tile_stride)
    check_precision(precision, device)
    check_runtime_options(runtime, device, precision, compile)

    def load():
        from ..api import load_model

        if random_init and checkpoint is None:
            warn_random_init()
        if threads is not None:  # the process's torch threads too: with onnxruntime, torch still converts and sums
            import torch

            torch.set_num_threads(threads)
        return load_model(
            checkpoint, device, random_init, backbone, tile, tile_stride, warn=False, precision=precision,
            compile=compile, runtime=runtime, threads=threads,
        )  # fmt: skip

    return load
