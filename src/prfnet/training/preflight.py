"""Checks made before a training run writes anything: the trainer settings work on this machine, the run folder can
be written, and a folder left by a run that failed before its first checkpoint does not block the corrected rerun."""

from __future__ import annotations

import logging
import shutil
import typing
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError
from .config import TrainConfig

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")
_MAX_REASON = 240


def _devices(value: int | str):
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def hardware_arguments(config: TrainConfig) -> dict:
    """``accelerator``, ``devices``, ``num_nodes``, ``strategy`` and ``precision`` for ``lightning.Trainer``."""
    t = config.trainer
    strategy = t.strategy
    if t.process_group_backend and strategy.startswith("ddp"):
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(
            process_group_backend=t.process_group_backend,
            find_unused_parameters=strategy == "ddp_find_unused_parameters_true",
        )
    return {
        "accelerator": t.accelerator,
        "devices": _devices(t.devices),
        "num_nodes": t.num_nodes,
        "strategy": strategy,
        "precision": t.precision,
    }


def _known_precisions() -> tuple[str, ...] | None:
    try:  # Lightning's own list (a private name: when it moves, the trainer probe below still catches a bad value)
        from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    except ImportError:
        return None
    return (*typing.get_args(_PRECISION_INPUT_STR), *typing.get_args(_PRECISION_INPUT_STR_ALIAS))


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."


def check_trainer_settings(config: TrainConfig) -> None:
    """:class:`ConfigError` (one line, naming the key and its option) unless ``lightning.Trainer`` accepts the
    accelerator / devices / num_nodes / strategy / precision of ``config`` on this machine.

    Common mistakes get their own message (a GPU asked for where torch sees none, more GPUs than there are, an
    unknown precision); anything else Lightning refuses is caught by building a throw-away trainer with the same
    arguments, which writes nothing (no logger, no checkpointing)."""
    t = config.trainer
    accelerator = str(t.accelerator).lower()
    devices = _devices(t.devices)
    if accelerator in GPU_ACCELERATORS:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise ConfigError(
                f"trainer.accelerator (--accelerator) is {t.accelerator!r}, but torch sees no CUDA GPU on this "
                "machine: use --accelerator cpu (or auto)"
            )
        if isinstance(devices, int) and devices > available:
            raise ConfigError(
                f"trainer.devices (--devices) is {devices}, but this machine has {available} CUDA GPU"
                f"{'s' if available != 1 else ''}: use --devices {available} or fewer"
            )
    if accelerator == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("trainer.accelerator (--accelerator) is 'mps', but torch cannot use MPS on this machine")
    known = _known_precisions()
    if known is not None and str(t.precision) not in known:
        main = ", ".join(p for p in known if not p.startswith("transformer") and "-" in p)
        raise ConfigError(f"trainer.precision (--precision) {t.precision!r} is not a Lightning precision: use {main}")
    import lightning as L

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            L.Trainer(
                **hardware_arguments(config),
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
    except Exception as exc:  # MisconfigurationException, ValueError, a missing optional package, ...
        shown = {k: v for k, v in hardware_arguments(config).items() if not hasattr(v, "setup_environment")}
        settings = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        raise ConfigError(f"trainer settings ({settings}) cannot be used on this machine: {_one_line(exc)}") from None


def holds_progress(out_dir: Path, step_dirs: typing.Iterable[str], final_model: str, step_model: str) -> bool:
    """Whether a run folder holds anything worth keeping: the final model, a step's model or a checkpoint."""
    if (out_dir / final_model).exists():
        return True
    for name in step_dirs:
        step = out_dir / name
        if (step / step_model).exists() or any((step / "checkpoints").glob("*.ckpt")):
            return True
    return False


def clear_failed_start(out_dir: Path, step_dirs: typing.Iterable[str]) -> None:
    """A folder whose run stopped before its first checkpoint (``config.yaml``, ``val_triplets.csv`` and logs, no
    checkpoint, no model) is started again: its leftovers are removed, with a warning."""
    leftovers = [p for p in (out_dir / "config.yaml", out_dir / "val_triplets.csv") if p.exists()]
    leftovers += [out_dir / name for name in step_dirs if (out_dir / name).exists()]
    if not leftovers:
        return
    log.warning(
        "%s holds a run that stopped before its first checkpoint (no checkpoint, no model): starting it again",
        out_dir,
    )
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
