"""Rate-distortion evaluation of codecs (``prfnet rd``, ``docs/rd.md``): inputs, curves, BD-rate, figures.

What this package exports is pure data: inputs (sizes from image headers, no pixels decoded), curves, BD-rates
and figures from scores passed to :func:`build_curves` in the order of the items. :mod:`.run` (``run_rd``) scores
the items through :mod:`prfnet.protocol` and the scoring engine (which loads the model, lazily); :mod:`.example`
encodes the ``--example`` set with Pillow's codecs.
"""

from .bdrate import akima_bd_rate, bd_rate_table
from .curves import (
    COMPRESSAI_KEYS,
    RDCurves,
    build_curves,
    check_rd_items,
    compressai_results,
    result_key,
)
from .figures import plot_rd, rd_report
from .inputs import DECODED_EXTENSIONS, RDItem, read_rd_csv, scan_rd_folders

__all__ = [
    "COMPRESSAI_KEYS",
    "DECODED_EXTENSIONS",
    "RDCurves",
    "RDItem",
    "akima_bd_rate",
    "bd_rate_table",
    "build_curves",
    "check_rd_items",
    "compressai_results",
    "plot_rd",
    "rd_report",
    "read_rd_csv",
    "result_key",
    "scan_rd_folders",
]
