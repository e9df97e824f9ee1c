"""Self-contained HTML reports (:class:`Report`: headings, tables, embedded PNG figures) and the Matplotlib
figures they hold. Used by ``prfnet eval``, ``rd``, ``ablate``, training curves and the demo."""

from .html import Report, figure_png

__all__ = ["Report", "figure_png"]
