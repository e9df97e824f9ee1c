"""Metric-targeted encoding (``prfnet tune``, docs/tune.md): per image, the codec setting with the fewest bits whose
distance in a chosen metric meets a target (an absolute value, or "at least as good as JPEG q85")."""

from .run import DEFAULT_TUNE_CODECS, EXAMPLE_PHOTOS, TUNE_OUTPUTS, Target, example_images, file_images, run_tune
from .search import MAX_ENCODES, Encoding, TuneResult, ladder, parse_encoding, tune_image

__all__ = [
    "DEFAULT_TUNE_CODECS",
    "EXAMPLE_PHOTOS",
    "MAX_ENCODES",
    "TUNE_OUTPUTS",
    "Encoding",
    "Target",
    "TuneResult",
    "example_images",
    "file_images",
    "ladder",
    "parse_encoding",
    "run_tune",
    "tune_image",
]
