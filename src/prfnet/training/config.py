"""Training configuration: YAML -> validated dataclasses (every key is documented in ``docs/training.md``).

A config is read with :func:`load_train_config` from a YAML file, a shipped config name (``demo``,
``clic2022``) or a dict; ``overrides`` (``{"data.crop": 64}``, from ``--set data.crop=64``) are applied
before validation. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming
the key and the source.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..model.backbone import BACKBONE_NORMS, SE_GATES

FORMATS = ("clic", "bapps", "pieapp", "mos")
MOS_KINDS = ("kadid", "pipal", "tid2013", "csv")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "constant")
TIE_POLICIES = ("drop", "soft")
#: the training file/folder read when ``data.train`` is null, relative to ``data.root``
DEFAULT_TRAIN_PATH = {"clic": "oracle.csv", "bapps": "2afc/train", "pieapp": "labels/train", "mos": "."}


@dataclass
class ModelSettings:
    """Architecture of the PRFNet to train (see :class:`prfnet.model.PRFNet`)."""

    backbone: str = "seres2net50"
    pretrained_backbone: bool = False
    backbone_weights: str | None = None  # local .safetensors backbone weights (offline); overrides the hub
    pair_block: str = "cross_subtract"
    fusion: str = "progressive"
    pair_channels: int = 64
    fusion_channels: int = 64
    attention: bool = True
    se_gate: str = "identity"  # identity: SE gates start at exactly 1 (pretrained features kept); sigmoid: timm's
    backbone_norm: str = "frozen"  # frozen: BatchNorm running statistics fixed; batch: shared by R, A, B per batch


@dataclass
class ValSettings:
    """Validation set: a separate file/folder (``path``) or ``holdout_fraction`` of the training references."""

    path: str | list[str] | None = None
    holdout_fraction: float = 0.1
    images: str | None = None  # clic: the images folder of ``path`` (relative to data.root); null = data.images
    crop: int | None = 256  # deterministic centre crop; null = whole images
    batch_size: int | None = None  # null = data.batch_size


@dataclass
class DataSettings:
    """Where the labelled triplets come from and how they are batched."""

    format: str = "clic"
    root: str | None = None  # data set folder; `--data DIR` sets it; relative paths below resolve against it
    train: str | list[str] | None = None  # null = DEFAULT_TRAIN_PATH[format]
    images: str = "images"  # clic only: folder the O/A/B names resolve against
    mos_kind: str = "csv"  # mos only: kadid | pipal | tid2013 | csv (ref,dist,score)
    mos_higher_better: bool = True  # mos csv only: direction of its score column
    mos_min_gap: float = 0.0  # mos only: drop pairs whose scores differ by less
    mos_max_pairs_per_ref: int | None = None
    val: ValSettings = field(default_factory=ValSettings)
    crop: int | None = 256  # random training crop (same for R, A, B); null = whole images
    batch_size: int = 8
    num_workers: int = 2


@dataclass
class StepSettings:
    """One training step: its length, optimizer and learning rates. ``epochs: 0`` disables it."""

    epochs: int = 0
    lr: float = 1e-4
    backbone_lr_mult: float = 0.1  # backbone LR = lr * backbone_lr_mult
    freeze_backbone: bool = False  # no backbone gradients, BatchNorm statistics kept (eval mode)
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam/adamw
    momentum: float = 0.9  # sgd
    scheduler: str = "cosine"  # per-step cosine decay to min_lr_ratio * lr, or constant
    warmup_steps: int = 0  # linear warm-up: step i < W uses lr * (i + 1) / W
    min_lr_ratio: float = 0.0


@dataclass
class ClassificationSettings(StepSettings):
    """Step 1: BCE-with-logits against the majority label. ``ties``: what to do with p_a == 0.5 triplets."""

    epochs: int = 10
    ties: str = "drop"  # drop: not used in step 1 (no class to learn); soft: BCE target 0.5


@dataclass
class RegressionSettings(StepSettings):
    """Step 2: MSE between sigmoid(logit) and the vote fraction p_a, starting from the step-1 weights."""

    epochs: int = 5
    lr: float = 1e-5


@dataclass
class StepsSettings:
    classification: ClassificationSettings = field(default_factory=ClassificationSettings)
    regression: RegressionSettings = field(default_factory=RegressionSettings)


@dataclass
class TrainerSettings:
    """Passed to ``lightning.Trainer`` (one trainer per step)."""

    accelerator: str = "auto"  # cpu | gpu | auto | ...
    devices: int | str = 1  # number of devices, "auto", or a list string such as "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_find_unused_parameters_true | fsdp | ...
    precision: str = "32-true"  # 32-true | 16-mixed | bf16-mixed
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    limit_train_batches: int | float = 1.0  # fraction (float) or number (int) of batches per epoch
    deterministic: bool = False  # torch deterministic algorithms (slower on GPU)
    process_group_backend: str | None = None  # ddp only: null = nccl on GPU, gloo on CPU
    cpu_threads: int | None = None  # torch intra-op threads during training (null = torch's default)
    save_rank_weights: bool = False  # each rank writes rank<k>.safetensors at the end (to check DDP sync)
    checkpoint_every_n_steps: int | None = None  # also checkpoint every N optimizer steps; null = per epoch only


@dataclass
class TrainConfig:
    """The whole training run: ``seed``, ``model``, ``data``, ``steps`` (classification, regression), ``trainer``."""

    seed: int = 0
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    steps: StepsSettings = field(default_factory=StepsSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: the largest seed numpy and Lightning accept (2**32 - 1)
MAX_SEED = 2**32 - 1


# -- reading -------------------------------------------------------------------------------------
def shipped_configs() -> list[str]:
    """Names of the configs shipped in ``prfnet/configs`` (``demo``, ``clic2022``, ...)."""
    folder = resources.files("prfnet") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML file path, or the shipped config of that name; :class:`ConfigError` if neither exists."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = resources.files("prfnet") / "configs" / f"{name_or_path}.yaml"
    if path.suffix == "" and shipped.is_file():
        return Path(str(shipped))
    raise ConfigError(f"config {str(name_or_path)!r} not found: not a file, nor a shipped config {shipped_configs()}")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    if data is None:  # taking it as "all defaults" would start the full paper configuration
        raise ConfigError(
            f"{path}: the config file is empty (or only comments); start from a shipped config "
            f"({', '.join(shipped_configs())}) and change what differs"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a training config must be a YAML mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"key.sub=value"`` -> (``"key.sub"``, YAML-parsed value), e.g. ``"data.crop=64"`` -> ("data.crop", 64)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key.sub=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def _apply_overrides(data: dict, overrides: dict, source: str) -> dict:
    data = _deepcopy(data)
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: cannot set {dotted!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _deepcopy(data):
    if isinstance(data, dict):
        return {k: _deepcopy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deepcopy(v) for v in data]
    return data


def load_train_config(source: str | Path | dict, overrides: dict | None = None) -> TrainConfig:
    """Read and validate a training config.

    Args:
        source: a YAML path, a shipped config name (``"demo"``, ``"clic2022"``) or a dict of the same shape.
        overrides: dotted keys -> values applied on top, e.g. ``{"steps.regression.epochs": 0}``.

    Missing keys take the defaults of :class:`TrainConfig`. Raises :class:`ConfigError` on unknown keys,
    wrong types or invalid values, naming the key and the source.
    """
    if isinstance(source, dict):
        data, name = source, "config"
    else:
        path = resolve_config_path(source)
        data, name = _read_yaml(path), str(path)
    data = _apply_overrides(data, overrides or {}, name)
    config = _build(TrainConfig, data, "", name)
    validate(config, name)
    return config


# -- validation ----------------------------------------------------------------------------------
def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value, hint, key: str, source: str):
    """``value`` checked against the annotation ``hint`` (int -> float and "1e-4" -> float are accepted)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, key, source)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{source}: {key} must be {_type_name(hint)}, got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        return [_coerce(v, inner, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, dict):
            return _build(hint, value, key + ".", source)
        raise ConfigError(f"{source}: {key} must be a mapping of settings, got {value!r}")
    raise ConfigError(f"{source}: {key} must be {_type_name(hint)}, got {value!r}")


def _build(cls, data: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known: {', '.join(names)})"
        raise ConfigError(f"{source}: unknown key {prefix}{key}{hint}")
    values = {k: _coerce(v, hints[k], prefix + k, source) for k, v in data.items()}
    return cls(**values)


def _need(ok: bool, source: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{source}: {message}")


def _validate_step(step: StepSettings, key: str, source: str) -> None:
    _need(step.epochs >= 0, source, f"{key}.epochs must be >= 0, got {step.epochs}")
    _need(step.lr >= 0, source, f"{key}.lr must be >= 0, got {step.lr}")
    _need(step.backbone_lr_mult >= 0, source, f"{key}.backbone_lr_mult must be >= 0, got {step.backbone_lr_mult}")
    _need(step.optimizer in OPTIMIZERS, source, f"{key}.optimizer must be one of {OPTIMIZERS}, got {step.optimizer!r}")
    _need(step.scheduler in SCHEDULERS, source, f"{key}.scheduler must be one of {SCHEDULERS}, got {step.scheduler!r}")
    _need(step.weight_decay >= 0, source, f"{key}.weight_decay must be >= 0")
    _need(len(step.betas) == 2 and all(0 <= b < 1 for b in step.betas), source, f"{key}.betas must be two in [0, 1)")
    _need(step.warmup_steps >= 0, source, f"{key}.warmup_steps must be >= 0")
    _need(0 <= step.min_lr_ratio <= 1, source, f"{key}.min_lr_ratio must be in [0, 1]")


def validate(config: TrainConfig, source: str = "config") -> None:
    """Range and choice checks beyond the types; :class:`ConfigError` naming the key."""
    d, m, t = config.data, config.model, config.trainer
    _need(
        0 <= config.seed <= MAX_SEED,
        source,
        f"seed must be in [0, {MAX_SEED}] (numpy's and Lightning's range), got {config.seed}",
    )
    _need(d.format in FORMATS, source, f"data.format must be one of {FORMATS}, got {d.format!r}")
    _need(d.mos_kind in MOS_KINDS, source, f"data.mos_kind must be one of {MOS_KINDS}, got {d.mos_kind!r}")
    _need(d.crop is None or d.crop >= 32, source, f"data.crop must be >= 32 pixels or null, got {d.crop}")
    _need(d.val.crop is None or d.val.crop >= 32, source, f"data.val.crop must be >= 32 or null, got {d.val.crop}")
    _need(d.batch_size >= 1, source, f"data.batch_size must be >= 1, got {d.batch_size}")
    _need(d.val.batch_size is None or d.val.batch_size >= 1, source, "data.val.batch_size must be >= 1 or null")
    _need(d.num_workers >= 0, source, f"data.num_workers must be >= 0, got {d.num_workers}")
    _need(0 <= d.val.holdout_fraction < 1, source, "data.val.holdout_fraction must be in [0, 1)")
    _need(d.mos_min_gap >= 0, source, "data.mos_min_gap must be >= 0")
    _need(m.se_gate in SE_GATES, source, f"model.se_gate must be one of {SE_GATES}, got {m.se_gate!r}")
    norms = BACKBONE_NORMS
    _need(m.backbone_norm in norms, source, f"model.backbone_norm must be one of {norms}, got {m.backbone_norm!r}")
    _need(m.pair_channels >= 1 and m.fusion_channels >= 1, source, "model.pair_channels/fusion_channels must be >= 1")
    _validate_step(config.steps.classification, "steps.classification", source)
    _validate_step(config.steps.regression, "steps.regression", source)
    ties = config.steps.classification.ties
    _need(ties in TIE_POLICIES, source, f"steps.classification.ties must be one of {TIE_POLICIES}, got {ties!r}")
    _need(
        config.steps.classification.epochs + config.steps.regression.epochs > 0,
        source,
        "both steps have epochs 0: nothing to train",
    )
    _need(t.num_nodes >= 1, source, f"trainer.num_nodes must be >= 1, got {t.num_nodes}")
    _need(t.accumulate_grad_batches >= 1, source, "trainer.accumulate_grad_batches must be >= 1")
    _need(t.log_every_n_steps >= 1, source, "trainer.log_every_n_steps must be >= 1")
    _need(t.check_val_every_n_epoch >= 1, source, "trainer.check_val_every_n_epoch must be >= 1")
    _need(t.limit_train_batches > 0, source, "trainer.limit_train_batches must be > 0")
    _need(t.cpu_threads is None or t.cpu_threads >= 1, source, "trainer.cpu_threads must be >= 1 or null")
    every = t.checkpoint_every_n_steps
    _need(every is None or every >= 1, source, f"trainer.checkpoint_every_n_steps must be >= 1 or null, got {every}")


def dump_config(config: TrainConfig) -> str:
    """The config as YAML text (what ``out/config.yaml`` holds); :func:`load_train_config` reads it back."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
