"""Real codec output: JPEG (4:2:0, 4:4:4), WebP, JPEG 2000 and AVIF through Pillow, JPEG XL (and mozjpeg, where
the build has it) through the optional ``imagecodecs`` (``pip install 'prfnet[jxl]'``), and a rate search.

Images are ``uint8`` arrays (H, W, 3), RGB, 0..255, in and out. Rates are in **bits per pixel**:
``bpp = 8 * len(bytes) / (H * W)`` (all three channels together; the whole file, headers included).

Every codec has one parameter that sets its rate (:class:`Codec`): a quality (JPEG 1..95, WebP and
AVIF 0..100, JPEG XL 1..99 (libjxl's quality, as ``cjxl -q``: mapped to a Butteraugli distance), higher = more
bits) or, for JPEG 2000, a compression ratio (2..400 against the 24-bit
raw image, higher = fewer bits: OpenJPEG's ``quality_mode="rates"``, ``quality_layers=[ratio]``, so
bpp is about 24 / ratio plus about 270 bytes of headers). Everything else is fixed, so the same image
and parameter always give the same bytes (AVIF and JPEG XL run one thread: their output may depend on the thread
count; JPEG XL at effort 7, cjxl's default, as a bare codestream).

:func:`encode_at_bpp` searches the parameter for a target bpp (bracketing search interpolating on
log bpp, a handful of encodes) and says when the target cannot be reached.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import PIL
from PIL import Image, features

from ..errors import ConfigError, InputError

Array = np.ndarray


class CodecUnavailable(ConfigError):
    """The Pillow or imagecodecs build here cannot encode with this codec, or imagecodecs is not installed (the
    message says why)."""


#: the codecs of the simulated codec set by default (``prfnet synth --kind codecs``, ``prfnet demo``): adding one
#: would change the demo's data and figures, so newer codecs (jpegxl) are chosen by name
DEFAULT_CODECS: tuple[str, ...] = ("jpeg420", "jpeg444", "webp", "jpeg2000", "avif")
#: the optional extra that installs imagecodecs
JXL_EXTRA = "pip install 'prfnet[jxl]'"


@dataclass(frozen=True)
class Codec:
    """One codec configuration.

    ``param`` is the name of the rate parameter, on [``low``, ``high``]; ``more_bits_when_higher``
    gives its direction (False for the JPEG 2000 compression ratio); ``integer`` parameters are
    rounded; ``log_scale`` parameters are searched on log(param). ``options`` are fixed save options.
    ``library`` is ``"Pillow"`` (``format``: Pillow's format, ``feature``: its ``PIL.features`` name) or
    ``"imagecodecs"`` (``format``: the imagecodecs codec prefix, ``feature``: its attribute, e.g. ``JPEGXL``).
    """

    name: str
    format: str
    feature: str
    param: str
    low: float
    high: float
    options: Mapping = field(default_factory=dict)
    integer: bool = True
    more_bits_when_higher: bool = True
    log_scale: bool = False
    description: str = ""
    library: str = "Pillow"
    extension: str = ".jpg"  # of its files (``prfnet tune`` writes the chosen bitstreams with it)
    max_side: int = 0  # the largest width or height the format stores (0: no limit below the memory's)

    def clamp(self, value: float) -> float | int:
        """The parameter value actually used: clipped to [low, high], rounded when ``integer``."""
        value = min(max(float(value), self.low), self.high)
        return int(round(value)) if self.integer else value

    def save_options(self, value: float) -> dict:
        """Keyword arguments of ``PIL.Image.save`` for this parameter value."""
        value = self.clamp(value)
        if self.param == "ratio":
            return {**self.options, "quality_layers": [float(value)]}
        return {**self.options, self.param: value}


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec(
            "jpeg420",
            "JPEG",
            "jpg",
            "quality",
            1,
            95,
            {"subsampling": 2},
            description="libjpeg, 4:2:0 chroma",
            max_side=65500,
        ),
        Codec(
            "jpeg444",
            "JPEG",
            "jpg",
            "quality",
            1,
            95,
            {"subsampling": 0},
            description="libjpeg, 4:4:4 chroma",
            max_side=65500,
        ),
        Codec(
            "webp",
            "WEBP",
            "webp",
            "quality",
            0,
            100,
            {"method": 4},
            description="libwebp lossy, 4:2:0",
            extension=".webp",
            max_side=16383,
        ),
        Codec(
            "jpeg2000",
            "JPEG2000",
            "jpg_2000",
            "ratio",
            2.0,
            400.0,
            {"quality_mode": "rates", "irreversible": True},
            integer=False,
            more_bits_when_higher=False,
            log_scale=True,
            description="OpenJPEG, 9/7 wavelet, one quality layer at a compression ratio",
            extension=".jp2",
        ),
        Codec(
            "avif",
            "AVIF",
            "avif",
            "quality",
            0,
            100,
            {"subsampling": "4:2:0", "speed": 6, "max_threads": 1},
            description="libavif (AV1), 4:2:0, speed 6, one thread",
            extension=".avif",
        ),
        Codec(
            "jpegxl",
            "jpegxl",
            "JPEGXL",
            "quality",
            1,
            99,
            {"effort": 7, "numthreads": 1, "usecontainer": False},
            description="libjxl lossy (VarDCT), quality as cjxl -q, effort 7, one thread, bare codestream",
            library="imagecodecs",
            extension=".jxl",
        ),
        Codec(
            "mozjpeg",
            "mozjpeg",
            "MOZJPEG",
            "quality",
            1,
            95,
            {"subsampling": "420"},
            description="mozjpeg (trellis quantisation, optimised Huffman), 4:2:0 chroma",
            library="imagecodecs",
            max_side=65500,
        ),
    )
}


def _supported(feature: str) -> bool:
    with warnings.catch_warnings():  # an older Pillow warns about feature names it does not know (e.g. "avif")
        warnings.simplefilter("ignore")
        return bool(features.check(feature))


def imagecodecs_module():
    """The imagecodecs module (an optional dependency); :class:`CodecUnavailable` naming the extra when missing."""
    try:
        import imagecodecs
    except ImportError:
        raise CodecUnavailable(f"imagecodecs is not installed: {JXL_EXTRA}") from None
    return imagecodecs


def unavailable_reason(codec: Codec) -> str | None:
    """None if ``codec`` is usable here, else why not (one line)."""
    if codec.library == "Pillow":
        if _supported(codec.feature):
            return None
        check = f"features.check({codec.feature!r}) is False"
        return f"Pillow {PIL.__version__} here has no {codec.format} support ({check})"
    try:
        ic = imagecodecs_module()
    except CodecUnavailable:
        return f"{codec.name} needs imagecodecs, which is not installed: {JXL_EXTRA}"
    if bool(getattr(getattr(ic, codec.feature, None), "available", False)):
        return None
    return f"not available: this imagecodecs build has no {codec.format}"


def codec_status() -> dict[str, str | None]:
    """``{codec name: None if usable here, else the reason}`` (``PIL.features.check``, imagecodecs' ``available``)."""
    return {name: unavailable_reason(codec) for name, codec in CODECS.items()}


def available_codecs() -> list[str]:
    """Names of the codecs usable here, in :data:`CODECS` order."""
    return [name for name, reason in codec_status().items() if reason is None]


def default_codecs() -> list[str]:
    """The :data:`DEFAULT_CODECS` usable here (the simulated codec set's default), in that order."""
    return [name for name in DEFAULT_CODECS if unavailable_reason(CODECS[name]) is None]


def get_codec(codec: str | Codec) -> Codec:
    """A :class:`Codec` by name (or itself); :class:`CodecUnavailable` if unknown or not usable here (one line)."""
    if isinstance(codec, Codec):
        found = codec
    elif codec in CODECS:
        found = CODECS[codec]
    else:
        raise CodecUnavailable(f"unknown codec {codec!r}; known: {', '.join(CODECS)}")
    reason = unavailable_reason(found)
    if reason is not None:
        raise CodecUnavailable(reason if reason.startswith(found.name) else f"{found.name}: {reason}")
    return found


def _check_image(image: Array) -> Array:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InputError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def bits_per_pixel(data: bytes, shape: tuple[int, ...]) -> float:
    """``8 * len(data) / (H * W)`` for an image of shape (H, W, ...)."""
    return 8.0 * len(data) / (shape[0] * shape[1])


def encode(image: Array, codec: str | Codec, quality: float) -> tuple[bytes, Array]:
    """Encode ``image`` (uint8 (H, W, 3)) at parameter ``quality``; returns (file bytes, decoded uint8 (H, W, 3))."""
    image = _check_image(image)
    codec = get_codec(codec)
    if codec.library == "imagecodecs":
        data, out = _encode_imagecodecs(image, codec, quality)
    else:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=codec.format, **codec.save_options(quality))
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            out = np.asarray(decoded.convert("RGB")).copy()
    if out.shape != image.shape:
        raise InputError(f"{codec.name} decoded a {out.shape} image from a {image.shape} one")
    return data, out


def _encode_imagecodecs(image: Array, codec: Codec, quality: float) -> tuple[bytes, Array]:
    """(bytes, decoded uint8 (H, W, 3)) through ``imagecodecs.<format>_encode`` / ``_decode``; the quality is
    imagecodecs' ``level``."""
    ic = imagecodecs_module()
    options = dict(codec.options)
    level = codec.clamp(quality)
    try:
        data = bytes(getattr(ic, f"{codec.format}_encode")(image, level=level, **options))
        decode_options = {"numthreads": options["numthreads"]} if "numthreads" in options else {}
        out = np.asarray(getattr(ic, f"{codec.format}_decode")(data, **decode_options))
    except Exception as exc:  # imagecodecs raises its own <Codec>Error types
        what = f"{codec.name} could not encode a {image.shape} image at {codec.param}={level}"
        raise InputError(f"{what}: {exc}") from None
    if out.ndim == 3 and out.shape[2] == 4:
        out = out[..., :3]
    return data, np.ascontiguousarray(out, dtype=np.uint8)


@dataclass(frozen=True)
class RateMatch:
    """Result of :func:`encode_at_bpp`.

    ``quality``: the parameter chosen (the codec's ``param``); ``bpp``: its actual rate; ``image``:
    decoded uint8 (H, W, 3); ``data``: the file bytes; ``reached``: ``|bpp / target_bpp - 1| <= tol``;
    when False this is the closest encode seen (on log bpp) and ``reason`` says why. ``encodes``:
    how many encodes the search ran.
    """

    codec: str
    target_bpp: float
    quality: float
    bpp: float
    image: Array
    data: bytes
    reached: bool
    encodes: int
    reason: str = ""

    @property
    def rel_error(self) -> float:
        """``bpp / target_bpp - 1`` (signed)."""
        return self.bpp / self.target_bpp - 1.0


def encode_at_bpp(
    image: Array, codec: str | Codec, target_bpp: float, tol: float = 0.10, max_encodes: int = 12
) -> RateMatch:
    """Search the codec's parameter for ``target_bpp`` (> 0) within relative tolerance ``tol``.

    Bracketing search: it starts at the middle of the range (JPEG 2000: at ratio 24 / target), then
    encodes the far end of the range in the needed direction (which either closes a bracket or shows
    the target cannot be reached), then interpolates on log bpp (against log(param) for a ``log_scale``
    parameter), with a plain bisection after any step that did not halve the bracket. Stops at the first
    encode within ``tol`` (typically 1-5 encodes), when an integer bracket has no value left inside
    (the rate jumps over the target), or after ``max_encodes`` encodes. Returns the closest encode.
    """
    image = _check_image(image)
    codec = get_codec(codec)
    if not (target_bpp > 0 and math.isfinite(target_bpp)):
        raise InputError(f"target_bpp must be a positive number, got {target_bpp}")
    cache: dict[float, tuple[bytes, Array, float]] = {}

    def at(q: float) -> tuple[bytes, Array, float]:
        q = codec.clamp(q)
        if q not in cache:
            data, decoded = encode(image, codec, q)
            cache[q] = (data, decoded, bits_per_pixel(data, image.shape))
        return cache[q]

    def x_of(q: float) -> float:
        return math.log(q) if codec.log_scale else float(q)

    def q_of(x: float) -> float:
        return math.exp(x) if codec.log_scale else x

    def close_enough(bpp: float) -> bool:
        return abs(bpp / target_bpp - 1.0) <= tol

    fewest, most = codec.clamp(codec.low), codec.clamp(codec.high)
    if not codec.more_bits_when_higher:
        fewest, most = most, fewest
    lo, hi = fewest, most  # parameter values giving fewer / more bits than the target
    lo_bpp: float | None = None
    hi_bpp: float | None = None
    q = codec.clamp(24.0 / target_bpp if codec.param == "ratio" else (codec.low + codec.high) / 2)
    halve = False
    while len(cache) < max_encodes:
        bpp = at(q)[2]
        if close_enough(bpp) or (q == fewest and bpp > target_bpp) or (q == most and bpp < target_bpp):
            break  # found, or the target is beyond this end of the range
        width = abs(x_of(hi) - x_of(lo))
        if bpp < target_bpp:
            lo, lo_bpp = q, bpp
        else:
            hi, hi_bpp = q, bpp
        new_width = abs(x_of(hi) - x_of(lo))
        if lo_bpp is None or hi_bpp is None:  # measure the far end of the range first: a bracket, or unreachable
            q = lo if lo_bpp is None else hi
            if q in cache:  # only when the curve is not monotone: keep the closest seen
                break
            continue
        if (abs(hi - lo) <= 1) if codec.integer else (new_width < 1e-3):
            break  # nothing left between two neighbouring values
        split = 0.5
        if not halve and hi_bpp > lo_bpp:
            split = (math.log(target_bpp) - math.log(lo_bpp)) / (math.log(hi_bpp) - math.log(lo_bpp))
            split = min(0.9, max(0.1, split))
        q = codec.clamp(q_of(x_of(lo) + split * (x_of(hi) - x_of(lo))))
        if codec.integer and q in (lo, hi):  # keep strictly inside the bracket
            q = lo + (1 if hi > lo else -1)
        if q in cache:
            break
        halve = new_width > 0.5 * width

    best_q = min(cache, key=lambda k: abs(math.log(cache[k][2] / target_bpp)))
    data, decoded, bpp = cache[best_q]
    reached = close_enough(bpp)
    reason = ""
    if not reached:
        bpps = [v[2] for v in cache.values()]
        if best_q == fewest and bpp > target_bpp:
            reason = f"target below the lowest rate: {bpp:.3f} bpp at {codec.param}={fewest}"
        elif best_q == most and bpp < target_bpp:
            reason = f"target above the highest rate: {bpp:.3f} bpp at {codec.param}={most}"
        elif len(cache) >= max_encodes:
            reason = f"no encode within {tol:.0%} after {len(cache)} encodes (rates {min(bpps):.3f}..{max(bpps):.3f})"
        else:
            reason = f"the rate jumps over the target between neighbouring {codec.param} values (closest {bpp:.3f})"
    return RateMatch(codec.name, float(target_bpp), best_q, bpp, decoded, data, reached, len(cache), reason)
