"""Where prfnet keeps files it can rebuild or download again: ``$PRFNET_CACHE`` when set, else
``<torch hub dir>/prfnet`` (``torch.hub.get_dir()``, which follows ``$TORCH_HOME``; ``~/.cache/torch/hub/prfnet`` by
default). Nothing in it is the user's: prfnet writes it, checks it by hash before use and rebuilds what fails."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import OutputError

#: the environment variable that moves prfnet's cache folder
CACHE_ENV = "PRFNET_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (see the module doc) joined with ``parts``, created if missing; :class:`OutputError` (one
    line naming ``$PRFNET_CACHE``) when it cannot be created or written."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        import torch.hub  # imported here: `prfnet --help` imports no torch

        root = Path(torch.hub.get_dir()) / "prfnet"
    path = Path(root).expanduser().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cache folder {path}: cannot create it ({exc.strerror or exc}); set ${CACHE_ENV} to a writable folder"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"cache folder {path} is not writable; set ${CACHE_ENV} to a writable folder")
    return path
