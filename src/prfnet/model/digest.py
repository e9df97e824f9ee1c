"""The SHA-256 that names a model's weights: what a score store keys scores on and the onnxruntime graph cache is
keyed by."""

from __future__ import annotations

import hashlib

import torch


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 (hex) of the model's state dict as it is now: every tensor's name and bytes, in name order."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def weights_sha256(model) -> str:
    """The SHA-256 that names ``model``'s weights: of the checkpoint file they were read from while that file is
    unchanged (read once per load: :meth:`~prfnet.model.checkpoint.CheckpointFile.sha256`), else
    :func:`weights_digest`."""
    file = getattr(model, "checkpoint_file", None)
    if file is not None and file.unchanged():
        return file.sha256()
    return weights_digest(model)
