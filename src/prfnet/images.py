"""Image decoding: any common file -> RGB tensor (1, 3, H, W): float32 in [0, 1], or the stored 8-bit values.

Handling of modes (documented in README): grayscale is replicated to three channels; palette
images are expanded; CMYK and YCbCr are converted with Pillow's conversion; 16-bit and 32-bit
integer images are scaled by their full range (65535); float images are clipped to [0, 1]; the
alpha channel of RGBA / LA / transparent palettes is dropped (the colour values are used as stored,
not composited on a background). EXIF orientation is applied.

Memory: the decoded image is converted to RGB in strips of rows, so a decode holds Pillow's image plus
the output array (plus one strip), never a second full-size copy. With ``keep_8bit=True`` an 8-bit file
stays uint8 (1 byte per sample instead of 4); the model divides by 255 per tile (``docs/design.md``).

Decompression bombs: the pixel count in the header is checked against ``max_pixels`` before any pixel is
decoded (:data:`DEFAULT_MAX_PIXELS`, the count at which Pillow's own check raises by default). prfnet applies
this limit itself, whatever ``PIL.Image.MAX_IMAGE_PIXELS`` says: Pillow's check is switched off while prfnet
opens and decodes a file (under a lock, so prfnet's decodes in several threads take turns).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError
from .ioutil import atomic_write

if TYPE_CHECKING:
    import torch

SUPPORTED = "PNG, JPEG, BMP, WebP, TIFF (and anything else Pillow decodes)"

#: Default pixel limit (width x height) of a decoded file: 178,956,970, i.e. twice Pillow's default
#: ``MAX_IMAGE_PIXELS`` (89,478,485), where Pillow raises ``DecompressionBombError``. Enough for 13000 x 13000.
DEFAULT_MAX_PIXELS = 2 * 89_478_485
MAX_PIXELS_OPTION = "--max-pixels N (API: max_pixels=N; 0 or none: no limit)"
_STRIP_PIXELS = 1 << 22  # rows converted at a time: about 4 megapixels per strip
_PILLOW_LIMIT_LOCK = threading.Lock()


def parse_max_pixels(value: int | str | None) -> int | None:
    """``max_pixels`` from an option value: a positive integer, or ``0`` / ``"none"`` / ``None`` for no limit.

    Raises :class:`ValueError` (with the accepted forms) for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "").replace(",", "")
        if text in ("none", "0", ""):
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a pixel count (e.g. 200000000), 0 or 'none', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a pixel count (e.g. 200000000), 0 or 'none', got {value!r}")
    return value or None


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Pillow's own decompression-bomb check off for the duration (prfnet checks ``max_pixels`` itself)."""
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} = {width * height:,} pixels is more than the limit of {max_pixels:,} "
            f"(a guard against decompression bombs); to read it, raise the limit with {MAX_PIXELS_OPTION}"
        )


def _strip_to_rgb(img: Image.Image) -> np.ndarray:
    """(h, W, 3): uint8 for 8-bit modes, float32 in [0, 1] for 16/32-bit integer and float modes."""
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
    return np.asarray(img, dtype=np.uint8)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) RGB of a loaded image, converted strip by strip into one preallocated array."""
    width, height = img.size
    rows = max(1, _STRIP_PIXELS // max(1, width))
    out = None
    for top in range(0, height, rows):
        strip = _strip_to_rgb(img.crop((0, top, width, min(height, top + rows))))
        if out is None:
            out = np.empty((height, width, 3), dtype=strip.dtype)
        out[top : top + strip.shape[0]] = strip
    return out if out is not None else np.zeros((height, width, 3), dtype=np.uint8)


def _missing_or_directory(path: Path) -> ImageReadError | None:
    if path.is_dir():
        return ImageReadError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        return ImageReadError(f"{path}: file not found")
    return None


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 value / 255 (the values :func:`load_image` gives); float unchanged. The one place
    where prfnet turns 8-bit samples into [0, 1]."""
    import torch  # here and below: importing this module costs no torch (`prfnet view` starts without it)

    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def load_image(
    path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, keep_8bit: bool = False
) -> torch.Tensor:
    """Decode ``path`` to an RGB tensor (1, 3, H, W): float32 in [0, 1] by default.

    ``max_pixels``: the largest width x height decoded (default :data:`DEFAULT_MAX_PIXELS`; ``None`` or 0: no
    limit), checked on the header before any pixel is decoded. ``keep_8bit=True``: a file with 8-bit samples
    (nearly every PNG, JPEG, WebP, BMP) comes back as a **uint8** tensor of the stored values 0..255, a quarter
    of the memory; the model accepts it and divides by 255 per tile. 16-bit and float files still come back as
    float32 in [0, 1] (no precision is dropped).

    Raises :class:`ImageReadError` (naming the file) if it is missing, a directory, not an image, truncated,
    or larger than ``max_pixels``.
    """
    path = Path(path)
    max_pixels = max_pixels or None
    problem = _missing_or_directory(path)
    if problem is not None:
        raise problem
    try:
        with _pillow_limit_off(), Image.open(path) as img:
            _check_pixels(path, img.size, max_pixels)  # Image.open reads the header only
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
            arr = _to_rgb_array(img)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read ({SUPPORTED})") from None
    except Image.DecompressionBombError as exc:  # a frame of a multi-frame file, checked by Pillow's plugin
        raise ImageReadError(f"{path}: {exc} (raise the limit with {MAX_PIXELS_OPTION})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    import torch

    x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    if x.dtype == torch.uint8 and not keep_8bit:
        x = unit_float(x)  # the same float32 values as numpy's arr.astype(float32) / 255
    return x


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as stored, read from its header without decoding the pixels
    (EXIF orientation is not applied: it can swap the two). :class:`ImageReadError` naming the file if it is
    missing, a directory or not an image. No pixel limit applies (nothing is decoded)."""
    path = Path(path)
    problem = _missing_or_directory(path)
    if problem is not None:
        raise problem
    try:
        with open(path, "rb") as f:
            head = f.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":  # fast path: most data sets are PNG
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        with _pillow_limit_off(), Image.open(path) as img:
            return img.size
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read ({SUPPORTED})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read the image header ({exc})") from None


def save_image(tensor: torch.Tensor, path: str | Path) -> None:
    """Write a (1, 3, H, W) or (3, H, W) tensor in [0, 1] (or uint8 0..255) as an 8-bit image (format from
    the suffix).

    Written atomically (:func:`prfnet.ioutil.atomic_write`): a failure leaves no partial file. An unknown
    suffix is a ``ValueError`` raised before anything is written.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path}: cannot tell an image format Pillow writes from the suffix {path.suffix!r}")
    import torch

    x = tensor.detach().cpu()
    if x.ndim == 4:
        x = x[0]
    if x.dtype == torch.uint8:
        arr = x.permute(1, 2, 0).contiguous().numpy()
    else:
        arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    image = Image.fromarray(arr)
    with atomic_write(path, "wb") as f:
        image.save(f, format=fmt)
