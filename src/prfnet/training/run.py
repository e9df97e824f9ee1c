"""``train``: the two-step training run (classification, then regression) on Lightning, with resume.

Layout of a run folder ``out/`` (see ``docs/training.md``)::

    config.yaml                      the resolved config of the run
    val_triplets.csv                 the validation triplets (ref,a,b,p_a,votes,kind; absolute paths)
    step1_classification/            checkpoints/step=<global step>.ckpt (every epoch, and every
                                     trainer.checkpoint_every_n_steps; the two newest are kept), checkpoints/last.ckpt
                                     (link to the newest), checkpoints/interrupted.ckpt (on Ctrl-C/SIGTERM/error),
                                     logs/version_*/metrics.csv, tensorboard/, model.safetensors
    step2_regression/                the same for step 2
    metrics.csv                      per-epoch metrics of both steps (merged from the CSVLogger files)
    report.html                      training curves of both steps
    model.safetensors                the final model (written last: its presence means the run is finished)
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, OnExceptionCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ..errors import CheckpointError, ConfigError, Terminated
from ..ioutil import atomic_write
from ..model import PRFNet
from ..model.backbone import HubUnavailable
from ..outputs import check_output_dir
from .checkpoints import INTERRUPTED, RollingCheckpoint, drop_stale_checkpoints
from .config import TrainConfig, dump_config
from .curves import best_validation, merge_step_metrics, read_metrics_csv, write_metrics_csv, write_training_report
from .datamodule import TrainingData, TripletDataModule, load_training_data, write_triplets_csv
from .lightning_module import PRFNetModule
from .preflight import check_trainer_settings, clear_failed_start, hardware_arguments, holds_progress
from .run_folder import (
    FINAL_MODEL,
    STEP_DIRS,
    STEP_MODEL,
    StepPlan,
    check_config_change,
    holds_a_run,
    plan_steps,
    set_data_root,
)

log = logging.getLogger(__name__)

#: the end of the message of an interrupted ``prfnet train`` (see :func:`train`'s ``resume_hint``)
RESUME_HINT = "continue with --resume"
_QUIET = (
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*exists and is not empty.*",  # resumed runs log into their existing folders
    r".*sync_dist=True.*",
    r".*is ignored because `save_top_k` is 0.*",
    r".*was called without a model.*",  # fresh runs hold no checkpoint, so Lightning's implicit "last" is a no-op
    r".*there is no last checkpoint available.*",
    r".*treespec, LeafSpec.*",
    r".*your dataloader is not resumable.*",  # it is, through TripletDataModule's state (Lightning checks the loader)
)


@dataclass
class TrainResult:
    """Where a run's outputs are, and its best validation epoch.

    ``best_val``: the epoch with the highest ``val_acc`` over both steps, ``{"step", "epoch", "val_acc",
    "val_agreement", "val_loss", "val_bce", "val_mse"}`` (empty without a validation set).
    ``already_finished``: the run had finished before this call (``resume`` of a complete run).
    """

    model_path: Path
    metrics_csv: Path
    report_path: Path
    best_val: dict = field(default_factory=dict)
    already_finished: bool = False


def env_global_rank_is_zero() -> bool:
    """Whether this process is (or will become) global rank 0, from the launcher's environment variables
    (torchrun: RANK; SLURM: SLURM_PROCID; Lightning's own launcher: LOCAL_RANK and NODE_RANK)."""
    for var in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var]) == 0
    return int(os.environ.get("LOCAL_RANK", 0) or 0) == 0 and int(os.environ.get("NODE_RANK", 0) or 0) == 0


def build_model(config: TrainConfig, load_pretrained: bool = True) -> PRFNet:
    """A fresh PRFNet from ``config.model`` (backbone weights only when ``load_pretrained``)."""
    m = config.model
    try:
        return PRFNet(
            backbone=m.backbone,
            pretrained_backbone=m.pretrained_backbone and load_pretrained,
            backbone_weights=m.backbone_weights if load_pretrained else None,
            pair_block=m.pair_block,
            fusion=m.fusion,
            pair_channels=m.pair_channels,
            fusion_channels=m.fusion_channels,
            attention=m.attention,
            se_gate=m.se_gate,
            backbone_norm=m.backbone_norm,
        )
    except HubUnavailable as exc:  # one line in the config's and the command line's terms, not Python's
        raise CheckpointError(
            f"model.pretrained_backbone: cannot fetch the ImageNet weights of {exc.arch}: {exc.reason}; set "
            f"model.backbone_weights to a local .safetensors file of timm's {exc.arch} (--set "
            "model.backbone_weights=PATH), or train from scratch (--set model.pretrained_backbone=false)"
        ) from None


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def make_trainer(config: TrainConfig, plan: StepPlan, progress: bool, callbacks: list[Callback]) -> L.Trainer:
    """A Lightning trainer for one step: CSV (+ TensorBoard) logs, rolling checkpoints (every epoch and every
    ``trainer.checkpoint_every_n_steps``), a checkpoint on interruption, our own (distributed) samplers."""
    t = config.trainer
    # every logged row goes to disk at once (Lightning's default is every 100 steps): a killed run keeps the
    # metrics of the epochs its checkpoints hold, which the resumed run does not log again
    loggers = [CSVLogger(plan.directory, name="logs", flush_logs_every_n_steps=1)]
    if _tensorboard_available():
        loggers.append(TensorBoardLogger(plan.directory, name="tensorboard"))
    ckpt_dir = plan.directory / "checkpoints"
    return L.Trainer(
        **hardware_arguments(config),  # checked by check_trainer_settings before the run writes anything
        max_epochs=getattr(config.steps, plan.name).epochs,
        logger=loggers,
        callbacks=[
            RollingCheckpoint(ckpt_dir, every_n_steps=t.checkpoint_every_n_steps),
            OnExceptionCheckpoint(ckpt_dir, filename=INTERRUPTED),
            *callbacks,
        ],
        enable_progress_bar=progress,
        enable_model_summary=progress,
        gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=t.accumulate_grad_batches,
        log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        limit_train_batches=t.limit_train_batches,
        deterministic=t.deterministic,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        default_root_dir=plan.directory,
    )


def _fit(
    trainer: L.Trainer, module: PRFNetModule, data: TripletDataModule, plan: StepPlan, resume_hint: str | None
) -> None:
    """``trainer.fit``; an interruption becomes a KeyboardInterrupt (Ctrl-C) or :class:`Terminated` (SIGTERM)
    naming the checkpoint and ``resume_hint`` (``None``: the caller discards the run folder, so neither is named)."""
    try:
        # Lightning prints its progress bar and model summary on stdout: stderr keeps stdout for --json documents
        with contextlib.redirect_stdout(sys.stderr):
            trainer.fit(module, datamodule=data, ckpt_path=plan.checkpoint, weights_only=False)
    except (SystemExit, SIGTERMException) as exc:
        if not trainer.interrupted:
            raise
        if isinstance(exc, SystemExit):  # Lightning ignores SIGINT after a Ctrl-C; give it back to Python
            signal.signal(signal.SIGINT, signal.default_int_handler)
        # SIGTERM: Lightning's own handler (SIGTERMException), or a handler of the caller's raising Terminated in
        # the fit, which Lightning ends with SystemExit like a Ctrl-C
        terminated = isinstance(exc, SIGTERMException) or isinstance(exc.__context__, Terminated)
        ckpt = plan.directory / "checkpoints" / f"{INTERRUPTED}.ckpt"
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        where = f"; checkpoint {ckpt}; {resume_hint}" if resume_hint else ""
        interruption = Terminated if terminated else KeyboardInterrupt
        raise interruption(f"training {what} in step {plan.name}{where}") from exc  # the CLI's one line (143, 130)


def _finished_result(out_dir: Path) -> TrainResult:
    metrics = out_dir / "metrics.csv"
    rows = read_metrics_csv(metrics) if metrics.is_file() else []
    return TrainResult(out_dir / FINAL_MODEL, metrics, out_dir / "report.html", best_validation(rows), True)


def train(
    config: TrainConfig,
    data_dir: Path | None,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    callbacks: list[Callback] | None = None,
    *,
    resume_hint: str | None = RESUME_HINT,
) -> TrainResult:
    """Train PRFNet in two steps and write the run folder ``out_dir`` (layout in the module docstring).

    Step 1 (classification, BCE on the majority label) then step 2 (regression, MSE of sigmoid(logit) on
    the vote fraction p_a) from the step-1 weights; a step with 0 epochs is skipped. ``data_dir`` replaces
    ``config.data.root``. ``resume``: continue an interrupted run from its newest checkpoint (a finished
    run is returned as is, ``already_finished=True``); without it, ``out_dir`` must not hold a run.
    ``callbacks``: extra Lightning callbacks given to both steps' trainers. Runs on every DDP rank; only
    global rank 0 writes the shared outputs. Ctrl-C/SIGTERM save ``checkpoints/interrupted.ckpt`` and raise
    KeyboardInterrupt (:class:`~prfnet.errors.Terminated` for SIGTERM) whose message names that checkpoint and ends
    with ``resume_hint`` (how the caller's user continues); ``None`` where the caller discards ``out_dir`` on an
    interruption (the demo): the message then names neither.
    """
    out_dir = Path(out_dir)
    config = copy.deepcopy(config)  # the caller's config is left as it was
    if resume and not holds_a_run(out_dir):
        raise ConfigError(f"nothing to resume in {out_dir}: it holds no training run (start one without --resume)")
    set_data_root(config, data_dir, out_dir if resume else None)
    launcher_zero = env_global_rank_is_zero()
    if resume and (out_dir / FINAL_MODEL).is_file():
        log.warning("%s: this run has already finished (%s exists); nothing to do", out_dir, FINAL_MODEL)
        return _finished_result(out_dir)
    check_trainer_settings(config)  # accelerator, devices, strategy, precision: before anything is written
    restart = False
    if launcher_zero:
        check_output_dir(out_dir, "run folder")
        if not resume and holds_a_run(out_dir):
            if holds_progress(out_dir, STEP_DIRS.values(), FINAL_MODEL, STEP_MODEL):
                raise ConfigError(
                    f"{out_dir} already holds a training run: pass --resume to continue it, or choose another --out"
                )
            restart = True  # it stopped before its first checkpoint: cleared below, once this run can start

    plans = plan_steps(config, out_dir, resume)
    if resume:
        check_config_change(out_dir, config, plans, warn=launcher_zero)
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = load_training_data(config.data, seed=config.seed)
    log.info(data.description)
    # building the data modules checks every image file: bad data fails here, before anything is written
    datamodules = {p.name: _datamodule(config, data, p.name) for p in plans if p.action in ("fresh", "resume")}
    first = next(p for p in plans if p.action != "skip")
    # the initial model too (hub weights may be unreachable) before anything is written
    model = build_model(config, load_pretrained=first.action == "fresh") if first.action != "done" else None
    if launcher_zero:
        if restart:
            clear_failed_start(out_dir, STEP_DIRS.values())
        with atomic_write(out_dir / "config.yaml", encoding="utf-8") as f:
            f.write(dump_config(config))
        if data.val:
            write_triplets_csv(out_dir / "val_triplets.csv", data.val)
    trainer = None
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            if config.trainer.cpu_threads:
                torch.set_num_threads(config.trainer.cpu_threads)
            for plan in plans:
                if plan.action == "skip":
                    continue
                if plan.action == "done":
                    log.info("step %s: already finished, using %s", plan.name, plan.directory / STEP_MODEL)
                    model = PRFNet.from_pretrained(plan.directory / STEP_MODEL).train()
                    continue
                extra = list(callbacks or [])
                model, trainer = _run_step(config, datamodules[plan.name], plan, model, progress, extra, resume_hint)
        finally:
            torch.set_num_threads(threads)
    assert model is not None  # validate() refuses configs with no epochs at all
    return _finish(config, data, out_dir, model, trainer, launcher_zero)


def _datamodule(config: TrainConfig, data: TrainingData, step: str) -> TripletDataModule:
    """The batches of one step (step 1 drops tied triplets with ``ties: drop``)."""
    train_items = data.train
    if step == "classification" and config.steps.classification.ties == "drop":
        train_items = [t for t in train_items if t.p_a != 0.5]
        if not train_items:
            raise ConfigError("every training triplet is a tie (p_a = 0.5): set steps.classification.ties: soft")
    return TripletDataModule(train_items, data.val, config.data, config.seed)


def _run_step(
    config: TrainConfig, datamodule: TripletDataModule, plan: StepPlan, model, progress, callbacks, resume_hint
):
    """Fit one step of ``model`` (the initial one, or the previous step's); returns (trained model, trainer)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    settings = getattr(config.steps, plan.name)
    module = PRFNetModule(model, plan.name, settings)
    trainer = make_trainer(config, plan, progress, callbacks)
    if plan.action == "resume":
        log.info("step %s: resuming from %s", plan.name, plan.checkpoint)
    elif plan.action == "fresh" and (plan.directory / "checkpoints").is_dir():
        log.warning("step %s: no readable checkpoint in %s: the step starts again", plan.name, plan.directory)
    _fit(trainer, module, datamodule, plan, resume_hint)
    if trainer.is_global_zero:
        module.model.save_pretrained(plan.directory / STEP_MODEL, metadata={"step": plan.name})
        drop_stale_checkpoints(trainer)
    return module.model, trainer


def _finish(config, data, out_dir: Path, model: PRFNet, trainer, launcher_zero: bool) -> TrainResult:
    """Rank weights (optional), then on global rank 0: metrics.csv, report.html and the final model."""
    rank = trainer.global_rank if trainer is not None else 0
    is_zero = trainer.is_global_zero if trainer is not None else launcher_zero
    if config.trainer.save_rank_weights:
        model.save_pretrained(out_dir / f"rank{rank}.safetensors", metadata={"rank": str(rank)})
    metrics_csv, report = out_dir / "metrics.csv", out_dir / "report.html"
    final = out_dir / FINAL_MODEL
    if not is_zero:
        return TrainResult(final, metrics_csv, report)
    rows = merge_step_metrics({name: out_dir / d for name, d in STEP_DIRS.items()})
    write_metrics_csv(metrics_csv, rows)
    best = write_training_report(report, rows, config, data.description)
    model.to("cpu").eval().save_pretrained(
        final, metadata={"trained_with": "prfnet train", "best_val_acc": str(best.get("val_acc"))}
    )
    return TrainResult(final, metrics_csv, report, best)
