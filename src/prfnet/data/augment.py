"""Geometric augmentation shared by the reference and both distorted images of a triplet.

A :class:`Geometry` (crop box, horizontal flip, number of 90-degree rotations) is drawn once per triplet
from a caller-supplied ``torch.Generator`` and applied identically to R, A and B, so the pixel
correspondence the model compares is kept. No global RNG state is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError


@dataclass(frozen=True)
class Geometry:
    """Crop ``[top:top+height, left:left+width]``, flip left-right if ``hflip``, rotate ``rot90`` x 90 degrees."""

    top: int
    left: int
    height: int
    width: int
    hflip: bool = False
    rot90: int = 0

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) -> (..., C, h, w): the cropped, flipped, rotated view (a copy when flipped/rotated)."""
        out = image[..., self.top : self.top + self.height, self.left : self.left + self.width]
        if self.hflip:
            out = out.flip(-1)
        if self.rot90 % 4:
            out = torch.rot90(out, self.rot90 % 4, dims=(-2, -1))
        return out


def _crop_size(height: int, width: int, crop: int | None, source: str) -> tuple[int, int]:
    if crop is None:
        return height, width
    if crop < 1:
        raise DataError(f"crop must be a positive number of pixels or None, got {crop}")
    if crop > height or crop > width:
        raise DataError(
            f"{source}: crop {crop}x{crop} is larger than the image ({width}x{height}); use a smaller crop, "
            "or crop=None to use whole images"
        )
    return crop, crop


def center_geometry(height: int, width: int, crop: int | None, source: str = "image") -> Geometry:
    """Deterministic centre crop (the whole image when ``crop`` is None); no flip or rotation."""
    ch, cw = _crop_size(height, width, crop, source)
    return Geometry((height - ch) // 2, (width - cw) // 2, ch, cw)


def random_geometry(
    height: int,
    width: int,
    crop: int | None,
    generator: torch.Generator,
    flip: bool = True,
    rotate: bool = True,
    source: str = "image",
) -> Geometry:
    """Random crop position, horizontal flip (p = 0.5) and rotation by k x 90 degrees (k uniform).

    Rotations by 90/270 degrees are drawn only when the crop is square, so every sample of a batch keeps
    one shape; otherwise k is 0 or 2.
    """
    ch, cw = _crop_size(height, width, crop, source)
    top = int(torch.randint(0, height - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - cw + 1, (1,), generator=generator))
    hflip = bool(torch.rand((), generator=generator) < 0.5) if flip else False
    rot90 = 0
    if rotate:
        k = int(torch.randint(0, 4, (1,), generator=generator))
        rot90 = k if ch == cw else 2 * (k % 2)
    return Geometry(top, left, ch, cw, hflip, rot90)


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A ``torch.Generator`` seeded from (seed, epoch, index) alone: the same item in the same epoch always
    gets the same augmentation, whatever the worker, batch order or number of workers."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch & 0xFFFFFFFF, index & 0xFFFFFFFF]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def swap_coin(generator: torch.Generator) -> bool:
    """True with probability 0.5: exchange A and B (and flip ``p_a -> 1 - p_a``)."""
    return bool(torch.rand((), generator=generator) < 0.5)
