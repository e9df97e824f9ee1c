"""The photos scikit-image ships (``skimage.data.<name>()``), as RGB images of a chosen size: the inputs of
``prfnet rd --example`` and ``prfnet tune --example``."""

from __future__ import annotations

from PIL import Image

from ..errors import ConfigError

#: the default long side the examples scale photos to (Lanczos)
PHOTO_MAX_SIDE = 384


def load_photo(name: str, max_side: int | None = PHOTO_MAX_SIDE) -> Image.Image:
    """``skimage.data.<name>()`` as an RGB image (gray photos repeated on R, G, B), scaled (Lanczos) to ``max_side``
    on its long side if larger (``None``: full size). :class:`ConfigError` for a name that is not a shipped photo."""
    from skimage import data  # scikit-image's data module is slow to import: only when a photo is asked for

    loader = getattr(data, name, None) if name.isidentifier() and not name.startswith("_") else None
    if not callable(loader):
        raise ConfigError(f"unknown scikit-image photo {name!r} (e.g. astronaut, chelsea, coffee, rocket)")
    try:
        img = Image.fromarray(loader()).convert("RGB")
    except Exception as exc:  # a data set that must be downloaded, or one that is not a 2-D image
        raise ConfigError(f"scikit-image photo {name!r} cannot be used here ({exc})") from None
    scale = max_side / max(img.size) if max_side else 1.0
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img
