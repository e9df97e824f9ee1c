"""Input checks and conversions shared by the model's methods and the baselines.

Images are float RGB tensors (N, 3, H, W) in [0, 1], or uint8 0..255 (converted one tile / batch at a time).
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..images import unit_float

MIN_SIDE = 32  # the backbone's 5 stride-2 stages need 32 pixels


def check_images(*images: torch.Tensor, names: tuple[str, ...] | None = None, min_side: int = MIN_SIDE) -> None:
    """Raise :class:`InputError` unless every tensor is RGB (N, 3, H, W), float in [0, 1] and finite or
    uint8 (0..255), H, W >= ``min_side``, and all share H x W and a batch size (or a batch of 1, which
    broadcasts)."""
    names = names or tuple(f"image {i}" for i in range(len(images)))
    for name, x in zip(names, images, strict=True):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"{name}: expected shape (N, 3, H, W) with RGB channels, got {tuple(x.shape)}")
        if not x.is_floating_point() and x.dtype != torch.uint8:
            raise InputError(f"{name}: expected a float tensor in [0, 1] (or uint8 0..255), got {x.dtype}")
        if min(x.shape[-2:]) < min_side:
            raise InputError(f"{name}: height and width must be >= {min_side}, got {tuple(x.shape[-2:])}")
        if x.dtype == torch.uint8:
            continue  # every value is valid: 0..255 is read as value / 255
        if x.numel() and not torch.isfinite(x).all():
            raise InputError(f"{name}: contains NaN or infinite values")
        if x.numel():
            lo, hi = x.min().item(), x.max().item()
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise InputError(
                    f"{name}: values must be in [0, 1], got [{lo:.3g}, {hi:.3g}] "
                    "(divide 8-bit images by 255; map [-1, 1] images with (x + 1) / 2)"
                )
    sizes = {tuple(x.shape[-2:]) for x in images}
    if len(sizes) > 1:
        raise InputError(f"{' and '.join(names)} must have the same height and width, got {sorted(sizes)}")
    batches = {x.shape[0] for x in images} - {1}
    if len(batches) > 1:
        raise InputError(f"batch sizes differ: {[x.shape[0] for x in images]}")


def same_dtype(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors as they are when they share a dtype (uint8 stays compact), else all as float in [0, 1]."""
    if len({x.dtype for x in images}) <= 1:
        return list(images)
    return [unit_float(x).float() for x in images]
