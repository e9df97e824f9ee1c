"""The run folder of ``train`` (layout in :mod:`prfnet.training.run`): its names, whether a folder holds a run,
what each step does in it (skip, done, resume from its newest checkpoint, fresh), and what a resumed run takes from
the folder's ``config.yaml`` (the data root) and may not change against it (the keys its saved state depends on).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError
from .checkpoints import newest_checkpoint
from .config import ModelSettings, TrainConfig
from .lightning_module import STEPS

log = logging.getLogger("prfnet.training.run")  # train's warnings, under the name the CLI prints before them

STEP_DIRS = {"classification": "step1_classification", "regression": "step2_regression"}
FINAL_MODEL = "model.safetensors"  # in the run folder, written last
STEP_MODEL = "model.safetensors"  # in a step's folder, once the step is finished
#: model settings that only choose the initial weights: a resumed run may change them
INITIAL_WEIGHTS = ("pretrained_backbone", "backbone_weights")


@dataclass
class StepPlan:
    """What to do for one step: ``skip`` (0 epochs), ``done`` (its model file exists), ``resume`` (from
    ``checkpoint``) or ``fresh``."""

    name: str
    directory: Path
    action: str
    checkpoint: Path | None = None


def plan_steps(config: TrainConfig, out_dir: Path, resume: bool) -> list[StepPlan]:
    """The plan of each step, in training order (``done`` and ``resume`` only when ``resume``)."""
    plans = []
    for name in STEPS:
        step_dir = out_dir / STEP_DIRS[name]
        if getattr(config.steps, name).epochs == 0:
            plans.append(StepPlan(name, step_dir, "skip"))
        elif resume and (step_dir / STEP_MODEL).is_file():
            plans.append(StepPlan(name, step_dir, "done"))
        elif resume and (ckpt := newest_checkpoint(step_dir)) is not None:
            plans.append(StepPlan(name, step_dir, "resume", ckpt))
        else:
            plans.append(StepPlan(name, step_dir, "fresh"))
    return plans


def holds_a_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a training run (finished or not): its config, its final model or a step folder."""
    names = ["config.yaml", FINAL_MODEL, *STEP_DIRS.values()]
    return any((out_dir / n).exists() for n in names)


def _saved_config(out_dir: Path) -> dict:
    """The run's ``config.yaml`` as a dict ({} when missing or unreadable)."""
    try:
        saved = yaml.safe_load((out_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return saved if isinstance(saved, dict) else {}


def set_data_root(config: TrainConfig, data_dir: Path | None, resumed_run: Path | None) -> None:
    """``config.data.root`` from ``--data``, else (when resuming) from the run's ``config.yaml``, else the config's;
    made absolute so that the saved config does not depend on the working directory."""
    saved = _saved_config(resumed_run).get("data") if resumed_run is not None else None
    saved_root = saved.get("root") if isinstance(saved, dict) else None
    if data_dir is not None:
        root = str(Path(data_dir).expanduser().absolute())
        if saved_root and Path(saved_root).expanduser().absolute() != Path(root):
            log.warning(
                "--data %s differs from the run's data.root %s (%s): using %s",
                data_dir,
                saved_root,
                resumed_run / "config.yaml",
                root,
            )
    elif saved_root:
        root = saved_root
        if config.data.root and Path(config.data.root).expanduser().absolute() != Path(saved_root):
            log.warning(
                "resuming with the run's data.root %s, not the config's %s (pass --data to choose)",
                saved_root,
                config.data.root,
            )
    else:
        root = config.data.root
    config.data.root = str(Path(root).expanduser().absolute()) if root else None


def _changed_keys(before: dict, now: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two config dicts (``steps.classification.lr``)."""
    changed = []
    for key, value in now.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            changed += _changed_keys(old, value, f"{prefix}{key}.")
        elif old != value:
            changed.append(f"{prefix}{key}")
    return changed


def check_config_change(out_dir: Path, config: TrainConfig, plans: list[StepPlan], warn: bool) -> None:
    """On ``--resume``: the keys in which ``config`` differs from the run's ``config.yaml`` are logged, and the new
    values apply; :class:`ConfigError` for those the saved state cannot follow: the architecture once a step has
    weights, the optimizer and ``freeze_backbone`` of a step continued from its checkpoint."""
    before = _saved_config(out_dir)
    changed = _changed_keys(before, config.to_dict()) if before else []
    fixed = set()
    if any(p.action in ("done", "resume") for p in plans):
        fixed |= {f"model.{f.name}" for f in dataclasses.fields(ModelSettings) if f.name not in INITIAL_WEIGHTS}
    fixed |= {f"steps.{p.name}.{k}" for p in plans if p.action == "resume" for k in ("optimizer", "freeze_backbone")}
    saved = out_dir / "config.yaml"
    refused = [key for key in changed if key in fixed]
    if refused:
        raise ConfigError(
            f"cannot resume with {', '.join(refused)} changed (see {saved}): the run's saved weights or optimizer "
            "state cannot continue with another value; resume with the run's values, or train again with another --out"
        )
    if changed and warn:
        log.warning(
            "resuming with a config that differs from %s in: %s (the new values apply)", saved, ", ".join(changed)
        )
