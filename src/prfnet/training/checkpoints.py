"""Rolling Lightning checkpoints of a training step, and finding the newest readable one on resume."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"  # checkpoints/interrupted.ckpt
ROLLING = "step={step:09d}"  # checkpoints/step=000001234.ckpt: the global step (optimizer steps) at saving
KEEP_CHECKPOINTS = 2  # rolling checkpoints kept per step: the newest may be cut short by a kill while it is written


def checkpoint_progress(path: Path) -> tuple[int, int] | None:
    """``(global_step, epoch)`` recorded in a Lightning checkpoint, or None when the file cannot be read (e.g. cut
    short by a kill while it was written: a torch zip file ends with its directory, so any prefix fails here).

    Memory-mapped: the tensors are not read. The file is unpickled (``weights_only=False``, as ``trainer.fit``
    does): only use it on checkpoints this package wrote."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state["global_step"]), int(state["epoch"])
    except Exception:  # truncated, empty, not a checkpoint: all mean "not usable"
        return None


def newest_checkpoint(step_dir: Path) -> Path | None:
    """The checkpoint of ``step_dir/checkpoints`` that got furthest and can be read, if any.

    Candidates: every ``*.ckpt`` file (``step=N.ckpt``, ``interrupted.ckpt``, a ``last.ckpt`` file of older runs;
    the ``last.ckpt`` link is the same file as one of them). "Furthest" is the (global step, epoch) stored in the
    file, then its modification time. Unreadable files (a write cut short by a kill) are skipped with a warning,
    so the previous checkpoint is used.
    """
    folder = step_dir / "checkpoints"
    if not folder.is_dir():
        return None
    found = []
    for path in sorted(folder.glob("*.ckpt")):
        if path.is_symlink() or not path.is_file():
            continue
        progress = checkpoint_progress(path)
        if progress is None:
            log.warning("%s cannot be read (cut short when the run was killed?); using an earlier checkpoint", path)
            continue
        found.append((progress, path.stat().st_mtime_ns, path))
    return max(found)[2] if found else None


class RollingCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint writing ``step=<global step>.ckpt`` at the end of every training epoch (after
    validation) and, with ``every_n_steps``, every N optimizer steps inside an epoch too; the ``keep`` newest files
    are kept and ``last.ckpt`` links to the newest.

    Lightning writes the new file before it deletes the oldest one, so a kill while a checkpoint is written leaves
    the previous one whole (:func:`newest_checkpoint` skips the cut one).
    """

    def __init__(self, dirpath: Path, every_n_steps: int | None = None, keep: int = KEEP_CHECKPOINTS):
        super().__init__(
            dirpath=dirpath,
            filename=ROLLING,
            auto_insert_metric_name=False,
            monitor="step",  # "best" = highest global step: save_top_k keeps the newest
            mode="max",
            save_top_k=keep,
            save_last="link",
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,  # a file cut short by a kill is overwritten by the resumed run's
        )
        # ModelCheckpoint's constructor takes one trigger; this callback uses both (every epoch, every N steps)
        self._every_n_train_steps = every_n_steps or 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the end-of-epoch checkpoint follows, after validation
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def drop_stale_checkpoints(trainer: L.Trainer) -> None:
    """After a finished step: remove the rolling checkpoints Lightning no longer tracks (the one a resume started
    from, which it never deletes, and files cut short by a kill), keeping the newest ones and ``last.ckpt``."""
    rolling = next((c for c in trainer.callbacks if isinstance(c, RollingCheckpoint)), None)
    if rolling is None or rolling.dirpath is None:
        return
    kept = {Path(p).absolute() for p in rolling.best_k_models}
    for path in Path(rolling.dirpath).glob("step=*.ckpt"):
        if not path.is_symlink() and path.absolute() not in kept:
            path.unlink(missing_ok=True)
