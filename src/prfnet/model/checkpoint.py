"""One-file checkpoints: weights + architecture config in a ``.safetensors`` file (no pickle)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import CheckpointError, ConfigError, InputError
from ..ioutil import atomic_write

if TYPE_CHECKING:
    from .prfnet import PRFNet

FORMAT = "prfnet"
FORMAT_VERSION = "2"
INFERENCE_OPTIONS = {"tile_size", "tile_stride"}
#: config keys added after format 1, with the value that reproduces what a format-1 file computed
FORMAT_1_DEFAULTS = {"se_gate": "sigmoid"}


def save_checkpoint(model: PRFNet, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (:func:`prfnet.ioutil.atomic_write`)."""
    from safetensors.torch import save

    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(format=FORMAT, format_version=FORMAT_VERSION, config=json.dumps(dataclasses.asdict(model.config)))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_write(path, mode="wb") as f:
        f.write(save(state, metadata=meta))
    return Path(path)


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, str]]:
    """(config dict, state dict, metadata) of a prfnet checkpoint; :class:`CheckpointError` otherwise."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{path}: a safetensors file, but not a prfnet checkpoint (no prfnet config)")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt config in metadata ({exc})") from None
    return config, state, meta


def load_checkpoint(cls: type[PRFNet], path: str | Path, map_location="cpu", **overrides) -> PRFNet:
    config, state, _ = read_checkpoint(path)
    unknown = set(overrides) - INFERENCE_OPTIONS
    if unknown:
        raise InputError(f"only {sorted(INFERENCE_OPTIONS)} can be overridden at load time, got {sorted(unknown)}")
    for key, value in FORMAT_1_DEFAULTS.items():
        config.setdefault(key, value)
    config.update(overrides)
    try:
        model = cls(**config)
    except (TypeError, ConfigError, CheckpointError) as exc:
        raise CheckpointError(f"{path}: config does not describe a PRFNet ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not match the stored config: {' '.join(first[:2])}") from None
    return model.to(map_location).eval()
