"""Reference images and distortions for the synthetic CLIC-format set (:mod:`prfnet.synth.distortion_set`).

Every image here is a ``uint8`` array (H, W, 3), RGB, 0..255: exactly what is written to PNG, so
an MSE measured here is the MSE a reader recomputes from the files. :func:`mse` reports it on the
[0, 1] scale (mean over pixels and channels; lower = closer to the reference).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

log = logging.getLogger(__name__)

Array = np.ndarray

#: scikit-image sample photos that ship inside the package (no download), colour ones first.
PHOTO_SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
    "clock",
    "cell",
)
CROPS_PER_SOURCE = 2  # at most this many non-overlapping crops of one photo
MIN_CROP_STD = 0.06  # reject near-flat crops (e.g. the black border of `retina`): luminance std on [0, 1]


def quantise(x: Array) -> Array:
    """Float image in [0, 1] (values outside are clipped) -> uint8 0..255, rounded to nearest."""
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def to_float(img: Array) -> Array:
    """uint8 (H, W, 3) -> float32 in [0, 1]."""
    return img.astype(np.float32) / np.float32(255.0)


def mse(ref: Array, dist: Array) -> float:
    """Mean squared error of two uint8 images on the [0, 1] scale (all pixels and channels)."""
    diff = (ref.astype(np.int32) - dist.astype(np.int32)).ravel()
    return float(np.dot(diff, diff)) / (diff.size * 255.0 * 255.0)


def psnr(ref: Array, dist: Array) -> float:
    """PSNR in dB (higher = closer) for a data range of 1; ``inf`` for identical images."""
    err = mse(ref, dist)
    return float("inf") if err == 0 else float(10.0 * np.log10(1.0 / err))


def luminance(img: Array) -> Array:
    """Rec. 601 luma of a uint8 RGB image, float32 (H, W) in [0, 1]."""
    return to_float(img) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- references


def _load_source(name: str) -> Array | None:
    """A scikit-image sample as uint8 RGB (grey replicated), or None where it cannot load offline."""
    import skimage.data

    try:
        img = np.asarray(getattr(skimage.data, name)())
    except Exception as exc:  # missing file / needs pooch download in another scikit-image version
        log.info("skipping skimage.data.%s: %s", name, exc)
        return None
    if img.dtype != np.uint8:
        return None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def photo_crops(size: int, seed: int) -> list[tuple[str, Array]]:
    """Every usable ``size`` x ``size`` crop of the packaged photos, as ``(origin, uint8 image)``.

    Per photo, up to :data:`CROPS_PER_SOURCE` non-overlapping cells of a ``size`` grid are taken in a
    seeded random order (one shared random offset of the grid), skipping near-flat cells. The list is
    ordered round-robin (first crop of every photo, then the second ones) so that a few references
    already cover many different photos. It does not depend on how many references are requested.
    """
    per_source: list[list[tuple[str, Array]]] = []
    for index, name in enumerate(PHOTO_SOURCES):
        img = _load_source(name)
        if img is None or min(img.shape[:2]) < size:
            continue
        rng = np.random.default_rng([seed, 1, index])
        rows, cols = img.shape[0] // size, img.shape[1] // size
        dy = int(rng.integers(0, img.shape[0] - rows * size + 1))
        dx = int(rng.integers(0, img.shape[1] - cols * size + 1))
        crops = []
        for cell in rng.permutation(rows * cols):
            y, x = dy + (cell // cols) * size, dx + (cell % cols) * size
            crop = np.ascontiguousarray(img[y : y + size, x : x + size])
            if luminance(crop).std() >= MIN_CROP_STD:
                crops.append((f"skimage.data.{name}() crop at y={y}, x={x}", crop))
            if len(crops) == CROPS_PER_SOURCE:
                break
        per_source.append(crops)
    ordered = []
    for round_index in range(CROPS_PER_SOURCE):
        ordered += [crops[round_index] for crops in per_source if len(crops) > round_index]
    return ordered


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> Array:
    """Smooth random field (size, size, 3) in about [0, 1]: a ``cells`` x ``cells`` grid, bicubic-upsampled."""
    coarse = rng.random((3, cells, cells)).astype(np.float32)
    channels = [np.asarray(Image.fromarray(c, mode="F").resize((size, size), Image.BICUBIC)) for c in coarse]
    return np.stack(channels, axis=2).astype(np.float64)


def procedural_reference(size: int, rng: np.random.Generator) -> Array:
    """A synthetic photo-like image, uint8 (size, size, 3): smooth colour field + sharp-edged shapes + textures."""
    img = 0.2 + 0.6 * _smooth_field(rng, size, cells=4)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for _ in range(int(rng.integers(4, 9))):
        mask_img = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(mask_img)
        x0, y0 = rng.random(2) * size * 0.8
        w, h = (0.1 + 0.4 * rng.random(2)) * size
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=255)
        elif shape == 1:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=255)
        else:
            draw.polygon([tuple(p) for p in (rng.random((5, 2)) * size)], fill=255)
        mask = np.asarray(mask_img, dtype=np.float64)[..., None] / 255.0
        colour = rng.random(3)
        fill = colour * (0.8 + 0.4 * _smooth_field(rng, size, cells=3))  # shaded flat colour
        if rng.random() < 0.5:  # a grating texture inside the shape
            freq, angle = 4 + 28 * rng.random(), np.pi * rng.random()
            grating = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
            fill = fill * (1.0 + 0.35 * grating[..., None])
        img = img * (1 - mask) + fill * mask
    fine = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.8)  # fine grain texture
    img = img + 0.03 * fine[..., None] / (fine.std() + 1e-12)
    img = ndimage.gaussian_filter(img, (0.6, 0.6, 0))  # optical softness: no aliased staircase edges
    return quantise(img)


def reference_images(refs: int, size: int, seed: int) -> list[tuple[str, Array]]:
    """``refs`` references (origin, uint8 image): packaged photo crops first, then procedural images."""
    chosen = photo_crops(size, seed)[:refs]
    for index in range(len(chosen), refs):
        rng = np.random.default_rng([seed, 2, index])
        chosen.append(("procedural", procedural_reference(size, rng)))
    return chosen


# ----------------------------------------------------------------------------------------------- distortions


def _codec(img: Array, fmt: str, quality: int) -> Array:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB")).copy()


def jpeg(img: Array, quality: int) -> Array:
    """JPEG round trip at ``quality`` (1..95, higher = milder), Pillow/libjpeg defaults (4:2:0 chroma)."""
    return _codec(img, "JPEG", quality)


def webp(img: Array, quality: int) -> Array:
    """Lossy WebP round trip at ``quality`` (0..100, higher = milder)."""
    return _codec(img, "WEBP", quality)


def gaussian_blur(img: Array, sigma: float) -> Array:
    """Gaussian blur with standard deviation ``sigma`` pixels (reflected borders)."""
    if sigma <= 0:
        return img.copy()
    return quantise(ndimage.gaussian_filter(to_float(img), (sigma, sigma, 0), mode="reflect"))


def gaussian_noise(img: Array, sigma: float, field: Array) -> Array:
    """Add ``sigma`` times the fixed standard-normal ``field`` (H, W, 3, float32); sigma on the [0, 1] scale."""
    return quantise(to_float(img) + np.float32(sigma) * field)


def resample(img: Array, factor: float) -> Array:
    """Bicubic down-sampling by ``factor`` and back up to the original size (loses detail, adds ringing)."""
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC)).copy()


def block_means(img: Array, block: int = 8) -> Array:
    """Each ``block`` x ``block`` cell replaced by its mean, per channel: float32 (H, W, 3) in [0, 1].

    This is what JPEG keeps of a block at the lowest qualities (the DC coefficient only); a partial
    block at the right / bottom border is averaged over the pixels it has.
    """
    x = to_float(img)
    out = np.empty_like(x)
    for y in range(0, x.shape[0], block):
        for x0 in range(0, x.shape[1], block):
            cell = x[y : y + block, x0 : x0 + block]
            out[y : y + block, x0 : x0 + block] = cell.mean(axis=(0, 1), keepdims=True)
    return out


def blocking(img: Array, amount: float, means: Array) -> Array:
    """JPEG-like blocking of strength ``amount`` in [0, 1]: blend towards the 8x8 ``block_means(img)``.

    The block means are not on the 8-bit grid, so the quantised MSE grows smoothly with ``amount``
    (a blend towards a decoded JPEG would jump wherever many integer differences round at once).
    """
    x = to_float(img)
    return quantise(x + np.float32(amount) * (means - x))


def luminance_offset(img: Array, levels: int) -> Array:
    """Add ``levels`` grey levels (of 255) to every pixel, clipped: a barely visible global brightness change."""
    return np.clip(img.astype(np.int16) + int(levels), 0, 255).astype(np.uint8)


def contrast_change(img: Array, amount: float) -> Array:
    """Lower the global contrast by ``amount`` (0 = none): x -> m + (1 - amount)(x - m), m the mean luma."""
    x = to_float(img)
    m = np.float32(luminance(img).mean())
    return quantise(m + np.float32(1.0 - amount) * (x - m))


SHIFT_PAD = 16


def subpixel_shift(img: Array, pixels: float) -> Array:
    """Translate by ``pixels`` (|pixels| <= 1) down and right: ideal (Fourier) interpolation, reflected borders.

    The image is mirror-padded by SHIFT_PAD pixels before the FFT so that the periodic wrap-around of
    the Fourier shift stays in the padding, which is cropped off again.
    """
    x = np.pad(to_float(img), ((SHIFT_PAD, SHIFT_PAD), (SHIFT_PAD, SHIFT_PAD), (0, 0)), mode="symmetric")
    spectrum = ndimage.fourier_shift(np.fft.fft2(x, axes=(0, 1)), (pixels, pixels, 0))
    shifted = np.fft.ifft2(spectrum, axes=(0, 1)).real
    return quantise(shifted[SHIFT_PAD:-SHIFT_PAD, SHIFT_PAD:-SHIFT_PAD])


# ----------------------------------------------------------------------------------------------- MSE matching


@dataclass(frozen=True)
class Matched:
    """Result of :func:`match_mse`: the distorted image, its strength parameter and its MSE (on [0, 1])."""

    image: Array
    strength: float
    mse: float


def match_mse(
    ref: Array,
    make: Callable[[float], Array],
    target: float,
    low: float,
    high: float,
    rel_tol: float = 0.005,
    prefer_above: bool = False,
    max_steps: int = 40,
) -> Matched | None:
    """Bracketing search on the strength of ``make`` until the quantised image's MSE to ``ref`` is ``target``.

    Bisection whose split point is interpolated on sqrt(MSE) (close to linear in the strength for
    these distortions); a step that does not halve the bracket is followed by a plain halving, so
    it converges at least as fast as bisection every two steps.

    ``make(strength)`` returns a uint8 image whose MSE to ``ref`` grows with the strength on
    [low, high]. Stops once both ends of the bracket are within ``rel_tol`` of ``target``;
    ``prefer_above`` then picks the end with MSE >= target, else the one below (callers randomise it
    so that the residual difference has no systematic sign). Returns None if ``target`` is outside
    [MSE(low), MSE(high)] or cannot be matched within ``rel_tol`` (a jump in the quantised MSE).
    """

    def measured(strength: float) -> Matched:
        image = make(strength)
        return Matched(image, strength, mse(ref, image))

    lo, hi = measured(low), measured(high)
    if not lo.mse <= target <= hi.mse:
        return None
    halve = False
    for _ in range(max_steps):
        if hi.mse - lo.mse <= rel_tol * target:  # both ends of the bracket are within rel_tol of target
            break
        split = 0.5
        if not halve:  # interpolate on sqrt(MSE), about linear in the strength; stay inside the bracket
            span = np.sqrt(hi.mse) - np.sqrt(lo.mse)
            split = min(0.95, max(0.05, (np.sqrt(target) - np.sqrt(lo.mse)) / span)) if span > 0 else 0.5
        width = hi.strength - lo.strength
        mid = measured(lo.strength + split * width)
        if mid.mse < target:
            lo = mid
        else:
            hi = mid
        halve = (hi.strength - lo.strength) > 0.5 * width  # a step that did not halve the bracket: bisect next
    close = [m for m in ((hi, lo) if prefer_above else (lo, hi)) if abs(m.mse - target) <= rel_tol * target]
    return close[0] if close else None
