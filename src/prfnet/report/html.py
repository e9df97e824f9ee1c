"""Self-contained HTML reports: headings, text, tables and matplotlib figures embedded as PNG."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..ioutil import atomic_write

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222;padding:0 1em}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#555;font-size:0.9em}
"""


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class Report:
    """Build a report piece by piece, then :meth:`write` one HTML file with every image inlined."""

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []

    def add_heading(self, text: str) -> None:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def add_text(self, text: str, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def add_table(self, columns: list[str], rows: list[list], floatfmt: str = ".3f") -> None:
        def cell(v):
            return format(v, floatfmt) if isinstance(v, float) else html.escape(str(v))

        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
        self._parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def add_figure(self, fig, caption: str = "") -> None:
        data = base64.b64encode(figure_png(fig)).decode("ascii")
        cap = f"<figcaption class='note'>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(
            f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>{cap}</figure>"
        )

    def merge(self, other: Report, first: bool = False) -> None:
        """Append (or, with ``first``, prepend) every section of ``other``."""
        self._parts = [*other._parts, *self._parts] if first else [*self._parts, *other._parts]

    def html(self) -> str:
        title = html.escape(self.title)
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
            f"</head><body><h1>{title}</h1>{''.join(self._parts)}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write atomically: a reader never sees a half-written report."""
        with atomic_write(path, encoding="utf-8") as f:
            f.write(self.html())
        return Path(path)
