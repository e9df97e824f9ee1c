"""Lightning ``Trainer`` hardware settings (accelerator, devices, num_nodes, strategy, precision) checked before any
work, one way for ``prfnet train``, ``ablate``, the demo and ``rd``'s multi-process scoring: a mistake is one line
naming the option, never a Lightning traceback or a run that waits forever for nodes that will not come."""

from __future__ import annotations

import os
import typing
import warnings
from collections.abc import Callable

import torch

from .errors import ConfigError

GPU_ACCELERATORS = ("gpu", "cuda")
#: what a multi-node launcher sets (Lightning's own MASTER_ADDR/NODE_RANK, torchrun, SLURM, LSF, MPI, Kubeflow)
LAUNCHER_VARIABLES = (
    "MASTER_ADDR",
    "NODE_RANK",
    "TORCHELASTIC_RUN_ID",
    "SLURM_JOB_ID",
    "LSB_JOBID",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "KUBERNETES_SERVICE_HOST",
)
_MAX_REASON = 240


def devices_of(value: int | str | None):
    """``"2"`` -> 2; ``"auto"``, ``"0,1"``, ``[0, 1]`` and ints as they are."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def _known_precisions() -> tuple[str, ...] | None:
    try:  # Lightning's own list (a private name: when it moves, the trainer probe below still catches a bad value)
        from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    except ImportError:
        return None
    return (*typing.get_args(_PRECISION_INPUT_STR), *typing.get_args(_PRECISION_INPUT_STR_ALIAS))


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def option(key: str) -> str:
    """How the CLI spells a Trainer argument: ``num_nodes`` -> ``--num-nodes``."""
    return "--" + key.replace("_", "-")


def check_trainer_arguments(arguments: dict, name: Callable[[str], str] = option) -> None:
    """:class:`ConfigError` (one line naming the setting, ``name(key)``) unless ``lightning.Trainer(**arguments)``
    can run here. ``arguments``: any of ``accelerator``, ``devices``, ``num_nodes``, ``strategy``, ``precision``
    (``None`` values are left to Lightning's defaults).

    Common mistakes get their own message (a GPU where torch sees none, more GPUs than there are, ``devices`` 0,
    several nodes without a launcher, an unknown precision); anything else Lightning refuses is caught by building a
    throw-away trainer with the same arguments, which writes nothing (no logger, no checkpointing)."""
    arguments = {k: v for k, v in arguments.items() if v is not None}
    accelerator = str(arguments.get("accelerator", "auto")).lower()
    devices = devices_of(arguments.get("devices"))
    if isinstance(devices, int) and devices == 0 or devices in ("0", [], ""):
        raise ConfigError(f"{name('devices')} is 0: give a number of devices >= 1, 'auto' or a list such as 0,1")
    if accelerator in GPU_ACCELERATORS:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                f"{name('accelerator')} is {arguments['accelerator']!r}, but torch sees no CUDA GPU on this machine: "
                f"use {option('accelerator')} cpu (or auto)"
            )
        if isinstance(devices, int) and devices > available:
            raise ConfigError(
                f"{name('devices')} is {devices}, but this machine has {available} CUDA GPU"
                f"{'s' if available != 1 else ''}: use {option('devices')} {available} or fewer"
            )
    if accelerator == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"{name('accelerator')} is 'mps', but torch cannot use MPS on this machine")
    nodes = arguments.get("num_nodes", 1)
    if isinstance(nodes, int) and nodes > 1 and not any(os.environ.get(v) for v in LAUNCHER_VARIABLES):
        raise ConfigError(
            f"{name('num_nodes')} is {nodes}, but no multi-node launcher set this process up (none of "
            f"{', '.join(LAUNCHER_VARIABLES[:4])}, ... is set), so it would wait forever for the other nodes: start "
            "one process per node with torchrun or SLURM (docs/training.md), or leave --num-nodes out"
        )
    known = _known_precisions()
    if "precision" in arguments and known is not None and str(arguments["precision"]) not in known:
        main = ", ".join(p for p in known if not p.startswith("transformer") and "-" in p)
        raise ConfigError(f"{name('precision')} {arguments['precision']!r} is not a Lightning precision: use {main}")
    import lightning as L

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(
                **arguments, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False,
            )  # fmt: skip
    except Exception as exc:  # MisconfigurationException, ValueError, a missing optional package, ...
        shown = {k: v for k, v in arguments.items() if not hasattr(v, "setup_environment")}
        settings = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        raise ConfigError(f"trainer settings ({settings}) cannot be used on this machine: {_one_line(exc)}") from None
