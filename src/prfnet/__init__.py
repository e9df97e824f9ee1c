"""prfnet: PRFNet full-reference quality model for compressed images.

Images are float RGB tensors (N, 3, H, W) in [0, 1] (uint8 tensors are read as 0..255). ``PRFNet.score``
is a distance (>= 0, lower = closer to the reference); ``PRFNet.compare`` is the probability that A is
closer than B.

The model names are imported on first use (PEP 562), so ``import prfnet`` (and ``prfnet --help``) imports no
torch; the errors and ``__version__`` are imported at once.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DownloadError,
    ImageReadError,
    InputError,
    ModelOutputError,
    OutputError,
    PRFNetError,
)

#: public name -> the module that defines it, imported on first access
_LAZY = {
    "PRFNet": ".model",
    "PRFNetConfig": ".model",
    "Ranking": ".model",
    "ReferenceFeatures": ".model",
    "load_image": ".images",
    "save_image": ".images",
    "PRFNetLoss": ".integrations.loss",
}

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DownloadError",
    "ImageReadError",
    "InputError",
    "ModelOutputError",
    "OutputError",
    "PRFNet",
    "PRFNetConfig",
    "PRFNetError",
    "PRFNetLoss",
    "Ranking",
    "ReferenceFeatures",
    "__version__",
    "load_image",
    "save_image",
]


def __getattr__(name: str):
    """The lazy public names: imported from their module on first access, then cached in this module."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
