"""RD figures (mean score against mean bpp, one line per codec) and the self-contained HTML report.

Figures are bare ``matplotlib.figure.Figure`` objects (no pyplot state, no GUI backend), as in
:mod:`prfnet.report.plots`; :meth:`prfnet.report.html.Report.add_figure` embeds and closes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..report.html import Report
from .bdrate import LEVEL
from .curves import RDCurves, result_key


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend

    return Figure(figsize=(width, height), layout="constrained")


def y_label(curves: RDCurves, metric: str) -> str:
    """``"psnr-rgb (dB, higher = closer)"``, ``"prfnet (lower = closer)"``: the key and the raw direction."""
    direction = "higher = closer" if curves.higher_better[metric] else "lower = closer"
    unit = "dB, " if metric == "psnr" else ""
    return f"{result_key(metric)} ({unit}{direction})"


def plot_rd(curves: RDCurves, metric: str):
    """One panel: the mean ``metric`` score against the mean bpp per rate point, one line with markers per codec
    (in ``curves.codecs`` order; a rate point with a missing score leaves a gap)."""
    if metric not in curves.scores:
        raise KeyError(f"metric {metric!r} was not scored (scored: {', '.join(curves.scores)})")
    fig = _figure(5.2, 3.9)
    ax = fig.add_subplot()
    for codec in curves.codecs:
        ax.plot(curves.mean_bpp(codec), curves.mean_scores(metric, codec), "o-", label=codec, markersize=4)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(y_label(curves, metric))
    ax.set_title(f"{result_key(metric)}: mean over {len(curves.images)} image(s)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def percent_cell(value: float | None, ci: Sequence[float] | None) -> str:
    """``"-20.0 [-23.1, -17.2]"`` (percent, signed), the bare estimate without an interval, ``"n/a"`` if undefined.

    (:func:`prfnet.stats.intervals.with_ci` prints 3 decimals for accuracies; percents need one.)"""
    if value is None or not np.isfinite(value):
        return "n/a"
    if ci is None:
        return f"{value:+.1f}"
    return f"{value:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"


def bd_rate_rows(curves: RDCurves, bd: dict) -> tuple[list[str], list[list[str]]]:
    """Columns (codec, one per metric) and rows (one per codec) of the BD-rate table; the anchor says "anchor"."""
    metrics = [m for m in curves.scores if m in bd["bd_rate"]]
    columns = ["codec", *(f"{result_key(m)} BD-rate %" for m in metrics)]
    rows = []
    for codec in curves.codecs:
        if codec == bd["anchor"]:
            rows.append([codec, *(["anchor"] * len(metrics))])
            continue
        cells = [percent_cell(bd["bd_rate"][m].get(codec), bd["bd_rate_ci95"][m].get(codec)) for m in metrics]
        rows.append([codec, *cells])
    return columns, rows


def rate_point_rows(curves: RDCurves, codec: str) -> tuple[list[str], list[list]]:
    """Columns and rows (one per rate point, ascending bpp) of a codec: label, mean bpp, each metric's mean."""
    columns = ["rate point", "mean bpp", *(result_key(m) for m in curves.scores)]
    bpp = curves.mean_bpp(codec)
    means = [curves.mean_scores(m, codec) for m in curves.scores]
    rows = []
    for j, label in enumerate(curves.rate_points[codec]):
        values = [float(v[j]) if np.isfinite(v[j]) else "n/a" for v in (bpp, *means)]
        rows.append([label, *values])
    return columns, rows


def _bd_section(report: Report, curves: RDCurves, bd: dict) -> None:
    report.add_heading(f"BD-rate against {bd['anchor']}")
    intervals = f", {LEVEL:.0%} interval over images ({bd['bootstrap']} bootstrap resamples)" if bd["bootstrap"] else ""
    report.add_text(
        f"Percent more bits than the anchor {bd['anchor']} for the same quality (negative = fewer bits), "
        f"bjontegaard {bd['method']} on the mean curves{intervals}. Distances (lower = closer: "
        + (", ".join(m for m, d in bd["direction"].items() if d == "lower") or "none")
        + ") are negated before the fit.",
        note=True,
    )
    report.add_table(*bd_rate_rows(curves, bd))
    for metric, by_codec in bd["notes"].items():
        for codec, note in by_codec.items():
            report.add_text(f"{result_key(metric)}, {codec}: {note}", note=True)


def rd_report(curves: RDCurves, bd: dict | None, title: str, notes: Sequence[str] = ()) -> Report:
    """The HTML report: the BD-rate table ("est [low, high]" %, codec rows, metric columns) with its notes, one RD
    figure per metric, a table of rate points per codec, the ``notes`` and the image count. ``bd=None``: no
    BD-rate section (e.g. ``--no-bd-rate``)."""
    report = Report(title)
    report.add_text(
        f"{len(curves.images)} image(s), {len(curves.codecs)} codec(s): "
        + ", ".join(f"{c} ({len(curves.rate_points[c])} rate points)" for c in curves.codecs)
        + f"; metrics: {', '.join(curves.scores)}."
    )
    if bd is not None:
        _bd_section(report, curves, bd)
    else:
        report.add_text("BD-rate not computed.", note=True)
    report.add_heading("Rate-distortion curves")
    for metric in curves.scores:
        report.add_figure(plot_rd(curves, metric), caption=f"{y_label(curves, metric)} against bits per pixel")
    report.add_heading("Rate points")
    for codec in curves.codecs:
        report.add_text(f"{codec}" + (" (anchor)" if bd is not None and codec == bd["anchor"] else ""))
        report.add_table(*rate_point_rows(curves, codec), floatfmt=".4f")
    if notes:
        report.add_heading("Notes")
        for note in notes:
            report.add_text(note, note=True)
    report.add_text(f"n_images = {len(curves.images)} (every mean is over the same images).", note=True)
    return report
