"""Checks made before a training run writes anything: the trainer settings work on this machine, the run folder can
be written, and a folder left by a run that failed before its first checkpoint does not block the corrected rerun."""

from __future__ import annotations

import logging
import shutil
import typing
from pathlib import Path

from ..trainer_settings import check_trainer_arguments, devices_of, option
from .config import TrainConfig

log = logging.getLogger(__name__)


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
        "devices": devices_of(t.devices),
        "num_nodes": t.num_nodes,
        "strategy": strategy,
        "precision": t.precision,
    }


def check_trainer_settings(config: TrainConfig) -> None:
    """:class:`ConfigError` (one line, naming the key and its option) unless ``lightning.Trainer`` accepts the
    accelerator / devices / num_nodes / strategy / precision of ``config`` on this machine
    (:func:`prfnet.trainer_settings.check_trainer_arguments`, shared with ``prfnet rd``)."""
    check_trainer_arguments(hardware_arguments(config), lambda key: f"trainer.{key} ({option(key)})")


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
