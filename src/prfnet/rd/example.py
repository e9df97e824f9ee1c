"""A real rate-distortion example: photos shipped with scikit-image, coded by Pillow with JPEG, WebP, JPEG 2000
and AVIF and by libjxl (imagecodecs, the ``jxl`` extra) with JPEG XL at 5 rate points each, written in the layout
``prfnet rd`` reads (``rd.csv``). Without imagecodecs the default example leaves JPEG XL out, with a warning.

The default settings put every codec at about 0.15-1.6 bpp on the default photos (scaled to 384 px on the long
side, so that a small model and the baselines score the 80 decoded images in a few minutes on 2 CPU cores), and
their PSNR ranges overlap the JPEG anchor's, so BD-rate against JPEG is defined for each codec.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, features

from ..errors import ConfigError
from ..ioutil import atomic_write, write_csv
from ..synth.codecs import CodecUnavailable, get_codec, unavailable_reason
from ..synth.codecs import encode as encode_with_layer
from ..synth.photos import load_photo as load_example_image

log = logging.getLogger(__name__)

#: scikit-image photos (``skimage.data.<name>()``); each is scaled to ``max_side`` on its long side
EXAMPLE_IMAGES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
EXAMPLE_MAX_SIDE = 384
#: codec -> its settings from the lowest to the highest rate: quality (JPEG, WebP, AVIF) or compression ratio
#: against 24-bit RGB (JPEG 2000: 24 / ratio bpp)
EXAMPLE_CODECS: dict[str, list] = {
    "jpeg": [5, 12, 30, 60, 80],
    "webp": [2, 20, 50, 75, 88],
    "jpeg2000": [160, 80, 50, 30, 16],
    "avif": [15, 30, 45, 60, 80],
    "jpegxl": [10, 30, 55, 75, 88],
}
CSV_HEADER = ("codec", "image", "rate_point", "decoded_path", "original_path", "bitstream_path")


def _jpeg2000(ratio) -> dict:  # irreversible 9/7 wavelet with the RGB->YCbCr transform (opj_compress defaults)
    return {"quality_mode": "rates", "quality_layers": [ratio], "irreversible": True, "mct": 1}


# codec -> (Pillow format, PIL.features name, bitstream extension, rate-point label prefix, setting -> save options);
# a Pillow format of None: the codec of prfnet's codec layer of that name (prfnet.synth.codecs), its quality
CODECS: dict[str, tuple[str | None, str | None, str, str, Callable[..., dict] | None]] = {
    "jpeg": ("JPEG", "jpg", ".jpg", "q", lambda q: {"quality": q, "subsampling": "4:2:0"}),
    "webp": ("WEBP", "webp", ".webp", "q", lambda q: {"quality": q, "method": 6}),
    "jpeg2000": ("JPEG2000", "jpg_2000", ".jp2", "r", _jpeg2000),
    "avif": ("AVIF", "avif", ".avif", "q", lambda q: {"quality": q, "speed": 6}),
    "jpegxl": (None, None, ".jxl", "q", None),  # libjxl: quality as cjxl -q, effort 7, one thread
}


def rate_label(codec: str, setting) -> str:
    """The rate-point label of a setting: ``q30`` (quality) or ``r80`` (JPEG 2000 compression ratio)."""
    return f"{CODECS[codec][3]}{setting}"


def check_codecs(codecs: Mapping[str, Sequence]) -> None:
    """:class:`ConfigError` for an unknown codec, an empty or repeated setting list, or a codec this Pillow lacks."""
    for codec, settings in codecs.items():
        if codec not in CODECS:
            raise ConfigError(f"unknown codec {codec!r}; choose among {', '.join(CODECS)}")
        if not settings or len({rate_label(codec, s) for s in settings}) != len(settings):
            raise ConfigError(f"codec {codec}: settings must be non-empty and distinct, got {list(settings)}")
        if CODECS[codec][0] is None:
            reason = unavailable_reason(get_codec(codec))
            if reason:
                raise CodecUnavailable(f"{codec}: {reason}")
        elif not features.check(CODECS[codec][1]):
            raise ConfigError(
                f"this Pillow cannot encode {codec} (PIL.features.check({CODECS[codec][1]!r}) is False); "
                f"install a Pillow built with it or leave {codec} out of the codecs"
            )


def encode(img: Image.Image, codec: str, setting) -> tuple[bytes, Image.Image]:
    """(bitstream bytes, decoded RGB image) of ``img`` coded by ``codec`` at ``setting``."""
    fmt, _, _, _, options = CODECS[codec]
    if fmt is None:
        data, decoded = encode_with_layer(np.asarray(img.convert("RGB")), codec, setting)
        return data, Image.fromarray(decoded)
    buf = io.BytesIO()  # in memory: the files are written by make_example, atomically
    img.save(buf, fmt, **options(setting))
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as decoded:
        return data, decoded.convert("RGB")


def _write_png(img: Image.Image, path: Path) -> None:
    with atomic_write(path, "wb") as f:
        img.save(f, "PNG")


def default_example_codecs() -> dict[str, list]:
    """:data:`EXAMPLE_CODECS` less the codecs of optional libraries missing here (each left out with a warning)."""
    codecs = dict(EXAMPLE_CODECS)
    for codec in [c for c in codecs if CODECS[c][0] is None]:
        reason = unavailable_reason(get_codec(codec))
        if reason:
            log.warning("the example leaves %s out: %s", codec, reason)
            del codecs[codec]
    return codecs


def make_example(
    folder: str | Path,
    images: Sequence[str] = EXAMPLE_IMAGES,
    codecs: Mapping[str, Sequence] | None = None,
    max_side: int | None = EXAMPLE_MAX_SIDE,
) -> Path:
    """Writes folder/originals/<image>.png, folder/decoded/<codec>/<rate>/<image>.png (the decoded pixels),
    folder/bitstreams/<codec>/<rate>/<image>.<ext> (the encoded file), and folder/rd.csv with header
    codec,image,rate_point,decoded_path,original_path,bitstream_path (paths relative to the CSV); returns the CSV path.

    ``codecs``: codec -> settings (default: :func:`default_example_codecs`). Rate points are labelled
    ``q<quality>`` or ``r<ratio>`` (JPEG 2000). Files are written atomically, rd.csv last; the same arguments give
    the same bytes (the encoders are deterministic). :class:`ConfigError` for an unknown photo or codec, or a codec
    that cannot encode here (checked before anything is written).
    """
    folder = Path(folder)
    codecs = default_example_codecs() if codecs is None else codecs
    check_codecs(codecs)
    if not images or len(set(images)) != len(images):
        raise ConfigError(f"images must be non-empty and distinct, got {list(images)}")
    photos = {name: load_example_image(name, max_side) for name in images}
    for name, img in photos.items():
        _write_png(img, folder / "originals" / f"{name}.png")
    rows = []
    for codec, settings in codecs.items():
        for setting in settings:
            label = rate_label(codec, setting)
            for name, img in photos.items():
                data, decoded = encode(img, codec, setting)
                decoded_path = Path("decoded", codec, label, f"{name}.png")
                bitstream_path = Path("bitstreams", codec, label, f"{name}{CODECS[codec][2]}")
                with atomic_write(folder / bitstream_path, "wb") as f:
                    f.write(data)
                _write_png(decoded, folder / decoded_path)
                original = Path("originals", f"{name}.png")
                rows.append((codec, name, label, *(p.as_posix() for p in (decoded_path, original, bitstream_path))))
    csv_path = folder / "rd.csv"
    return write_csv(csv_path, rows, CSV_HEADER)
