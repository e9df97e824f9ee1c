"""Image decoding: any common file -> float RGB tensor (1, 3, H, W) in [0, 1].

Handling of modes (documented in README): grayscale is replicated to three channels; palette
images are expanded; CMYK and YCbCr are converted with Pillow's conversion; 16-bit and 32-bit
integer images are scaled by their full range (65535); float images are clipped to [0, 1]; the
alpha channel of RGBA / LA / transparent palettes is dropped (the colour values are used as stored,
not composited on a background). EXIF orientation is applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError
from .ioutil import atomic_write

SUPPORTED = "PNG, JPEG, BMP, WebP, TIFF (and anything else Pillow decodes)"


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / 65535.0, 0.0, 1.0).astype(np.float32)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, LA, RGBA (alpha dropped), CMYK, YCbCr, 1, ...
    return np.asarray(img, dtype=np.float32) / 255.0


def load_image(path: str | Path) -> torch.Tensor:
    """Decode ``path`` to a float32 tensor (1, 3, H, W), RGB in [0, 1].

    Raises :class:`ImageReadError` (naming the file) if it is missing, not an image, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            arr = _to_rgb_array(img)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read ({SUPPORTED})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as stored, read from its header without decoding the pixels
    (EXIF orientation is not applied: it can swap the two). :class:`ImageReadError` naming the file if it is
    missing or not an image."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":  # fast path: most data sets are PNG
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        with Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read ({SUPPORTED})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read the image header ({exc})") from None


def save_image(tensor: torch.Tensor, path: str | Path) -> None:
    """Write a (1, 3, H, W) or (3, H, W) tensor in [0, 1] as an 8-bit image (format from the suffix).

    Written atomically (:func:`prfnet.ioutil.atomic_write`): a failure leaves no partial file. An unknown
    suffix is a ``ValueError`` raised before anything is written.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path}: cannot tell an image format Pillow writes from the suffix {path.suffix!r}")
    x = tensor.detach().cpu()
    if x.ndim == 4:
        x = x[0]
    arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    image = Image.fromarray(arr)
    with atomic_write(path, "wb") as f:
        image.save(f, format=fmt)
