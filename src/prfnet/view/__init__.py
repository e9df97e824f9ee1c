"""``prfnet view``: a local viewer of prfnet's output sets (``demo``, ``eval clic|bapps|mos|jnd``, ``rd``, ``tune``).

:func:`build_view` reads a set into a :class:`ViewData` (the page's JSON document, the image files it names and the
folders they must lie under, the checkpoint for score maps); :func:`serve` serves it on 127.0.0.1 behind a token;
:func:`export_static` writes it as a folder that opens from disk.
"""

from .catalog import ViewData, build_view
from .server import serve
from .static import export_static

__all__ = ["ViewData", "build_view", "export_static", "serve"]
