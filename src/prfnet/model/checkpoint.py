"""One-file checkpoints: weights + architecture config in a ``.safetensors`` file (no pickle)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .._version import __version__
from ..cache import cache_dir
from ..errors import CheckpointError, ConfigError
from ..hub.checkpoints import CACHE_FOLDER, describe, resolve_checkpoint
from ..ioutil import atomic_write, file_sha256

if TYPE_CHECKING:
    from .prfnet import PRFNet

FORMAT = "prfnet"
FORMAT_VERSION = "2"
#: format versions this prfnet reads; a newer file is refused (upgrade prfnet)
READABLE_VERSIONS = ("1", "2")
#: the config keys :meth:`PRFNet.from_pretrained` may override (inference-only settings)
INFERENCE_OPTIONS = {"tile_size", "tile_stride"}
#: config keys added after format 1, with the value that reproduces what a format-1 file computed
FORMAT_1_DEFAULTS = {"se_gate": "sigmoid"}


@dataclass(frozen=True)
class CheckpointFile:
    """The checkpoint file a model's weights were read from, as it was just before the read: its path, size in bytes
    and modification time (ns). Set by :meth:`PRFNet.from_pretrained` as ``model.checkpoint_file``."""

    path: str
    size: int
    mtime_ns: int
    _sha256: str | None = field(default=None, init=False, repr=False, compare=False)  # read once, see sha256()

    @classmethod
    def of(cls, path: str | Path) -> CheckpointFile:
        """The file at ``path`` as it is now (``OSError`` if it cannot be stat'ed)."""
        st = os.stat(path)
        return cls(str(path), st.st_size, st.st_mtime_ns)

    def unchanged(self) -> bool:
        """Whether the file still has this size and modification time, so still holds the weights read from it."""
        try:
            return CheckpointFile.of(self.path) == self
        except OSError:
            return False

    def sha256(self) -> str:
        """SHA-256 (hex) of the file's bytes, read on the first call only (:class:`CheckpointError` if it cannot be
        read): the store's identity and the onnxruntime cache key share one read. Callers check :meth:`unchanged`
        first, as :func:`~prfnet.model.digest.weights_sha256` does."""
        if self._sha256 is None:
            try:
                object.__setattr__(self, "_sha256", file_sha256(self.path))  # frozen: the file's facts never change
            except OSError as exc:
                raise CheckpointError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        return self._sha256


def save_checkpoint(model: PRFNet, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (:func:`prfnet.ioutil.atomic_write`)."""
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        config=json.dumps(dataclasses.asdict(model.config), allow_nan=False),
    )
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_write(path, mode="wb") as f:
        f.write(save(state, metadata=meta))
    return Path(path)


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, str]]:
    """(config dict, state dict, metadata) of a prfnet checkpoint; :class:`CheckpointError` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file (pass the .safetensors file)")
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
    version = meta.get("format_version", "1")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r} is newer than this prfnet (version {__version__}) "
            f"reads (format {', '.join(READABLE_VERSIONS)}): upgrade prfnet to load it"
        )
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt config in metadata ({exc})") from None
    return config, state, meta


def _first(names: list[str], shown: int = 3) -> str:
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def mismatch_summary(expected: dict[str, torch.Tensor], stored: dict[str, torch.Tensor]) -> str:
    """One short line on how two state dicts differ: counts and the first few keys of each kind."""
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    shapes = [
        f"{k} {tuple(stored[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in stored and tuple(stored[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing from the file ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors ({_first(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} with another shape (file vs config: {_first(shapes)})")
    return "; ".join(parts) or "the tensors differ"


def locate_checkpoint(spec: str | Path, sha256: str | None = None) -> tuple[Path, str]:
    """(local file, what messages call it) of a checkpoint path, http(s) URL or published name: URLs and names are
    downloaded once into ``cache_dir("checkpoints")`` (:func:`prfnet.hub.resolve_checkpoint`)."""
    path = resolve_checkpoint(spec, sha256, cache=lambda: cache_dir(CACHE_FOLDER))
    return path, describe(spec, path)


def load_checkpoint(
    cls: type[PRFNet], path: str | Path, source: str | None = None, map_location="cpu", **overrides
) -> PRFNet:
    """A ``cls`` model (eval mode, on ``map_location``) from the checkpoint file at ``path``, with the config keys
    ``overrides`` (already checked by the caller) replaced; ``model.checkpoint_file`` names the file and
    ``model.source`` ``source`` (default: the file). :class:`CheckpointError` for a file that is not a readable
    checkpoint of this architecture."""
    try:
        stamp = CheckpointFile.of(path)  # before the read: a file replaced meanwhile no longer matches it
    except OSError:
        stamp = None  # read_checkpoint says why
    config, state, _ = read_checkpoint(path)
    for key, value in FORMAT_1_DEFAULTS.items():
        config.setdefault(key, value)
    config.update(overrides)
    try:
        model = cls(**config)
    except (TypeError, ConfigError, CheckpointError) as exc:
        raise CheckpointError(f"{path}: config does not describe a PRFNet ({exc})") from None
    expected = model.state_dict()
    if set(expected) != set(state) or any(tuple(expected[k].shape) != tuple(state[k].shape) for k in expected):
        raise CheckpointError(
            f"{path}: weights do not match the stored config (backbone {config.get('backbone')!r}): "
            f"{mismatch_summary(expected, state)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise CheckpointError(f"{path}: weights do not match the stored config: {first}") from None
    model.source = source or str(path)
    model.checkpoint_file = stamp
    return model.to(map_location).eval()
