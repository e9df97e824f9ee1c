"""``prfnet fetch``: the public data sets PRFNet is trained and evaluated on, downloaded (resumed, verified),
unpacked safely and laid out so that ``prfnet train`` and ``prfnet eval`` read them with no further step
(``docs/fetch.md``). Torch-free: the catalog, the downloads and the layout import nothing heavy."""

from .catalog import CATALOG, MIRROR_ENV, DataFile, DataSet, dataset, resolve_url
from .run import fetch, marker_path, plan
from .unpack import Limits

__all__ = [
    "CATALOG",
    "MIRROR_ENV",
    "DataFile",
    "DataSet",
    "Limits",
    "dataset",
    "fetch",
    "marker_path",
    "plan",
    "resolve_url",
]
