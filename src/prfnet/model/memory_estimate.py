"""How much memory scoring needs: the estimate behind :meth:`PRFNet.scoring_memory` and the check behind
:meth:`PRFNet.check_memory` (a refusal that names a tile size that fits). ``model`` is a :class:`~.prfnet.PRFNet`."""

from __future__ import annotations

import math

from ..memory import check_memory
from .backbone import scoring_bytes_per_pixel
from .inputs import MIN_SIDE


def scoring_memory(model, height: int, width: int, images: int = 1) -> int:
    """Estimated peak bytes of scoring ``images`` distorted images of ``height`` x ``width`` against one reference
    on ``model``: bytes per pixel of its backbone x the pixels of one window x (``images`` + 1), half that under
    16-bit autocast (:meth:`PRFNet.scoring_memory`)."""
    if model.will_tile(height, width):
        height, width = min(height, model.config.tile_size), min(width, model.config.tile_size)
    per_pixel = scoring_bytes_per_pixel(model.backbone, model.config.backbone)
    if model.inference.autocast_dtype is not None:
        per_pixel /= 2
    return int(per_pixel * height * width * (images + 1))


def check_scoring_memory(model, height: int, width: int, images: int, what: str, held: int = 0) -> None:
    """:class:`~prfnet.memory.NotEnoughMemory` when ``model.scoring_memory`` plus ``held`` bytes is more than the
    memory available on the model's device, with advice: a tile size that would fit, or fewer images at once
    (:meth:`PRFNet.check_memory`)."""
    scoring = model.scoring_memory(height, width, images)
    tiling = model.will_tile(height, width)
    side = model.config.tile_size if tiling else None
    window = min(height, side or height) * min(width, side or width)

    def advice(available: int) -> str:
        fits = math.isqrt(int(max(0, available - held) * window / scoring))  # the square window that would fit
        tile = min(2048, fits // 256 * 256 if fits >= 256 else fits)
        if tile < MIN_SIDE:
            return "free some memory, or score fewer images at once (--batch-size)"
        return (
            f"score in {'smaller tiles' if tiling else 'tiles'}: --tile {tile} "
            f"(Python: load_model(..., tile_size={tile}) or model.set_tiling({tile}))"
        )

    check_memory(scoring + held, what, advice, device=model.device)
