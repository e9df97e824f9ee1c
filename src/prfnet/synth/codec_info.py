"""What ``prfnet codecs --list`` shows: every codec of :mod:`prfnet.synth.codecs` with its encoder library, versions,
rate parameter and whether it is usable here (or why not). Loads nothing but Pillow and, when installed, imagecodecs."""

from __future__ import annotations

import warnings

import PIL
from PIL import features

from . import codecs as cd

#: the encoder library behind each codec
LIBRARIES = {
    "jpeg420": "libjpeg",
    "jpeg444": "libjpeg",
    "webp": "libwebp",
    "jpeg2000": "OpenJPEG",
    "avif": "libavif",
    "jpegxl": "libjxl",
    "mozjpeg": "mozjpeg",
}


def codec_info(name: str) -> dict:
    """What ``prfnet codecs --list`` shows of one codec: name, library (the encoder) and its version, the Python
    binding and its version, the rate parameter and its range, whether usable here (``status``: "yes" or why not),
    a description. Loads nothing but the binding."""
    codec = cd.CODECS.get(name)
    if codec is None:
        raise cd.CodecUnavailable(f"unknown codec {name!r}; known: {', '.join(cd.CODECS)}")
    reason = cd.unavailable_reason(codec)
    library_version = binding_version = None
    library = LIBRARIES.get(codec.name, codec.format)
    if codec.library == "Pillow":
        binding_version = PIL.__version__
        with warnings.catch_warnings():  # an older Pillow warns about feature names it does not know
            warnings.simplefilter("ignore")
            if reason is None and codec.format == "JPEG" and features.check_feature("libjpeg_turbo"):
                library, library_version = "libjpeg-turbo", features.version_feature("libjpeg_turbo")
            elif reason is None:
                library_version = features.version(codec.feature)
    else:
        try:
            ic = cd.imagecodecs_module()
            binding_version = ic.__version__
            if reason is None:
                library_version = str(getattr(ic, f"{codec.format}_version")()).removeprefix(library).strip()
        except cd.CodecUnavailable:
            pass
        except Exception:  # noqa: BLE001 - a version string is informative only
            library_version = None
    low, high = codec.clamp(codec.low), codec.clamp(codec.high)
    return {
        "name": codec.name,
        "library": library,
        "library_version": None if library_version is None else str(library_version),
        "binding": codec.library,
        "binding_version": binding_version,
        "parameter": codec.param,
        "range": [low, high],
        "more_bits_when_higher": codec.more_bits_when_higher,
        "available": reason is None,
        "status": "yes" if reason is None else reason,
        "default": codec.name in cd.DEFAULT_CODECS,
        "description": codec.description,
    }
