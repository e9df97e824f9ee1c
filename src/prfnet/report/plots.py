"""Matplotlib figures for evaluation reports (also reused by ``prfnet demo``).

Every function returns a new :class:`matplotlib.figure.Figure` (not shown, not saved); pass it to
:meth:`prfnet.report.html.Report.add_figure`, which closes it. Figures are bare
``matplotlib.figure.Figure`` objects (no pyplot state), so no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..images import load_image, unit_float
from ..model.maps import overlay

HIGHLIGHT = "prfnet"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # a bare Figure: no pyplot state, no GUI backend

    return Figure(figsize=(width, height), layout="constrained")


def plot_accuracy_bars(
    values: Mapping[str, float | None],
    ylabel: str = "accuracy",
    title: str = "",
    chance: float | None = 0.5,
    highlight: str = HIGHLIGHT,
    intervals: Mapping[str, Sequence[float] | None] | None = None,
    ceiling: float | None = None,
):
    """Bar per metric (dict order). ``None`` values (unavailable metrics) get an "n/a" label and no bar.
    ``chance``: a dashed line at that level (0.5 for 2AFC accuracy; ``None`` for none). ``intervals``: per metric
    ``[low, high]`` drawn as an error bar; ``ceiling``: a dotted line (the noise ceiling of the votes)."""
    names = list(values)
    fig = _figure(max(4.0, 0.6 * len(names) + 1.5), 3.6)
    ax = fig.add_subplot()
    heights = [values[n] if values[n] is not None else 0.0 for n in names]
    colors = ["tab:red" if n == highlight else "tab:blue" for n in names]
    bars = ax.bar(range(len(names)), heights, color=colors)
    for i, name in enumerate(names):
        ci = (intervals or {}).get(name)
        if ci and values[name] is not None and all(np.isfinite(ci)):
            below, above = max(0.0, values[name] - ci[0]), max(0.0, ci[1] - values[name])
            ax.errorbar(i, values[name], yerr=[[below], [above]], color="black", capsize=3, linewidth=1)
    if ceiling is not None:
        ax.axhline(ceiling, color="tab:green", linestyle=":", linewidth=1.2)
        where = (len(names) - 0.55, ceiling)
        ax.annotate(f"noise ceiling {ceiling:.3f}", where, ha="right", va="bottom", fontsize=7, color="tab:green")
    for bar, name in zip(bars, names, strict=True):
        v = values[name]
        label = "n/a" if v is None else f"{v:.3f}"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"chance {chance:g}", (-0.45, chance), va="bottom", fontsize=7, color="grey")
    finite = [v for v in values.values() if v is not None and np.isfinite(v)]
    low = min([*finite, chance if chance is not None else 0.0, 0.0])
    high = max([*finite, 1.0 if chance is not None else 0.0])
    ax.set_ylim(min(low, 0.0), high * 1.08 if high > 0 else 1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def reliability_bins(prob: Sequence[float], target: Sequence[float], n_bins: int = 10):
    """Equal-width bins of ``prob`` on [0, 1]: (bin centres, mean prob, mean target, count) per non-empty bin."""
    prob, target = np.asarray(prob, float), np.asarray(target, float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, n_bins - 1)
    rows = [
        ((edges[i] + edges[i + 1]) / 2, prob[which == i].mean(), target[which == i].mean(), int((which == i).sum()))
        for i in range(n_bins)
        if (which == i).any()
    ]
    return tuple(np.array(col) for col in zip(*rows, strict=True)) if rows else tuple(np.empty(0) for _ in range(4))


def plot_reliability(
    prob_a: Sequence[float], human_p_a: Sequence[float], n_bins: int = 10, title: str = "", votes: str = "human"
):
    """Reliability diagram of predicted P(A closer) against the votes.

    ``prob_a``: model probabilities in [0, 1]; ``human_p_a``: the fraction of judges who found A closer
    (the vote fraction). Plotted per probability bin: the mean vote fraction, and the fraction of
    triplets whose majority label is A (ties excluded). A calibrated model lies on the diagonal. ``votes``: who
    voted, the vertical axis' label (``"simulated votes"`` for a synthetic set, whose judges are not people).
    """
    prob, human = np.asarray(prob_a, float), np.asarray(human_p_a, float)
    fig = _figure(5.0, 5.2)
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    _, mean_p, mean_vote, _ = reliability_bins(prob, human, n_bins)
    ax.plot(mean_p, mean_vote, "o-", label="mean vote fraction for A")
    decided = human != 0.5
    _, mean_p_maj, frac_a, _ = reliability_bins(prob[decided], (human[decided] > 0.5).astype(float), n_bins)
    ax.plot(mean_p_maj, frac_a, "s--", label="fraction with majority A")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel(votes)
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    hist.hist(prob, bins=np.linspace(0, 1, n_bins + 1), color="tab:blue", alpha=0.7)
    hist.set_xlabel("predicted P(A closer)")
    hist.set_ylabel("triplets")
    return fig


@dataclass
class TripletExample:
    """One triplet to show: images (path, or tensor (3, H, W) / (1, 3, H, W) in [0, 1]) and the outcome.

    ``decision``: the metric's choice, ``"A"`` or ``"B"``; ``truth``: the humans' majority, ``"A"``,
    ``"B"``, ``"tie"`` or ``""`` (unknown); ``prob_a``: the model's P(A closer) if it has one;
    ``human_p_a``: the vote fraction for A if known.
    """

    ref: str | Path | Tensor
    a: str | Path | Tensor
    b: str | Path | Tensor
    decision: str
    truth: str = ""
    prob_a: float | None = None
    human_p_a: float | None = None


def thumbnail(image: str | Path | Tensor, max_side: int = 160) -> np.ndarray:
    """(h, w, 3) float array in [0, 1], longest side at most ``max_side`` (antialiased)."""
    # the files were decoded (and checked against the pixel limit) when they were scored
    x = load_image(image, max_pixels=None) if isinstance(image, str | Path) else image.detach().float().cpu()
    x = x if x.ndim == 4 else x.unsqueeze(0)
    scale = max_side / max(x.shape[-2:])
    if scale < 1:
        size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x[0].clamp(0, 1).permute(1, 2, 0).numpy()


def _row_title(ex: TripletExample) -> tuple[str, str]:
    model = f"decision {ex.decision}" + (f" (P(A)={ex.prob_a:.2f})" if ex.prob_a is not None else "")
    human = f"label {ex.truth or '?'}" + (f" (votes A={ex.human_p_a:.2f})" if ex.human_p_a is not None else "")
    color = "black" if ex.truth not in ("A", "B") else ("tab:green" if ex.truth == ex.decision else "tab:red")
    return f"{model} | {human}", color


def plot_examples(examples: Sequence[TripletExample], max_side: int = 160, title: str = ""):
    """A grid: one row per triplet (R, A, B thumbnails), titled with the decision and the human truth
    (green: agrees, red: disagrees, black: no truth)."""
    fig = _figure(7.5, 2.6 * max(1, len(examples)))
    if not examples:
        fig.text(0.5, 0.5, "no examples", ha="center")
        return fig
    grid = fig.subplots(len(examples), 3, squeeze=False)
    for row, ex in zip(grid, examples, strict=True):
        for ax, img, name in zip(row, (ex.ref, ex.a, ex.b), ("R", "A", "B"), strict=True):
            ax.imshow(thumbnail(img, max_side), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(name)
        text, color = _row_title(ex)
        row[1].set_title(text, color=color, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


MAPS_CAPTION = (
    "PRFNet's per-pixel distance maps for the example triplets, one row each. Columns: the reference R; A and B "
    "in grey with their maps over them (inferno, one scale per row shared by A and B: black = no distance, "
    "bright yellow = the row's largest value, the colour bar's top); the difference map_A - map_B over R in grey "
    "(RdBu_r, symmetric about 0: red where A is farther from R than B, i.e. A is worse there; blue where B is "
    "worse; white where they are equal). The maps are computed on the full images (the model's tiling as "
    "configured) and only downscaled for display. The mean of a map over its pixels is exactly PRFNet's distance "
    "d(R, A) or d(R, B) (the numbers in the titles); the mean of the difference map is d(R, A) - d(R, B), and "
    "P(A closer) = sigmoid(d(R, B) - d(R, A))."
)


def _full_image(image: str | Path | Tensor) -> Tensor:
    """(1, 3, H, W) at full size: a path decoded as 8-bit when it is (as scored), a tensor as given."""
    if isinstance(image, str | Path):  # decoded and checked against the pixel limit when it was scored
        return load_image(image, max_pixels=None, keep_8bit=True)
    x = image.detach().cpu()
    return x if x.ndim == 4 else x.unsqueeze(0)


def _display(picture: np.ndarray, max_side: int) -> np.ndarray:
    """An (H, W, 3) uint8 picture as a float thumbnail (:func:`thumbnail`)."""
    return thumbnail(unit_float(torch.from_numpy(picture).permute(2, 0, 1)), max_side)


def example_maps(example: TripletExample, model) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(ref, a, b, map_a, map_b) of one example: the full images (1, 3, H, W) and the model's maps (H, W) on the
    CPU (:meth:`prfnet.PRFNet.compare_maps`; raises its :class:`~prfnet.errors.InputError` for unusable images)."""
    ref, a, b = (_full_image(x) for x in (example.ref, example.a, example.b))
    with torch.inference_mode():
        map_a, map_b = (m[0, 0].float().cpu() for m in model.compare_maps(ref, a, b))
    return ref, a, b, map_a, map_b


def plot_example_maps(examples: Sequence[TripletExample], model, max_side: int = 160):
    """One row per triplet: R; A with its PRFNet map; B with its map (both on one ``inferno`` scale per row); the
    difference map_a - map_b over R (``RdBu_r``, red where A is worse). The maps are computed on the full images
    (:func:`example_maps`, the model's tiling as configured), then downscaled with the pictures for display; the
    titles give each map's mean, which is PRFNet's distance. See :data:`MAPS_CAPTION`. Raises what
    ``model.compare_maps`` raises (e.g. :class:`~prfnet.errors.InputError`)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rows = [example_maps(ex, model) for ex in examples]  # every map first: a failure leaves no half figure
    fig = _figure(10.5, 2.7 * max(1, len(examples)))
    if not examples:
        fig.text(0.5, 0.5, "no examples", ha="center")
        return fig
    grid = fig.subplots(len(examples), 4, squeeze=False)
    for axes, ex, (ref, a, b, map_a, map_b) in zip(grid, examples, rows, strict=True):
        scale = max(map_a.max().item(), map_b.max().item(), 1e-12)
        diff = map_a - map_b
        spread = max(diff.abs().max().item(), 1e-12)
        d_a, d_b = map_a.double().mean().item(), map_b.double().mean().item()
        pictures = [
            thumbnail(unit_float(ref), max_side),
            _display(overlay(a, map_a, scale), max_side),
            _display(overlay(b, map_b, scale), max_side),
            _display(overlay(ref, diff, spread, diverging=True), max_side),
        ]
        labels = ["R", f"A: mean = d(R, A) = {d_a:.4g}", f"B: mean = d(R, B) = {d_b:.4g}", "map A - map B"]
        for ax, picture, label in zip(axes, pictures, labels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=8)
        text, color = _row_title(ex)
        axes[1].set_title(text, color=color, fontsize=9, loc="left")
        heat = ScalarMappable(Normalize(0.0, scale), colormaps["inferno"])
        fig.colorbar(heat, ax=list(axes[1:3]), fraction=0.04, pad=0.01).ax.tick_params(labelsize=7)
        signed = ScalarMappable(Normalize(-spread, spread), colormaps["RdBu_r"])
        bar = fig.colorbar(signed, ax=axes[3], fraction=0.08, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("red: A worse", fontsize=7)
    return fig


def plot_scatter_fit(pred: Sequence[float], mos: Sequence[float], curve=None, name: str = "", mos_label: str = "MOS"):
    """Scatter of metric scores against subjective scores, with the fitted mapping ``curve(x)`` if given."""
    pred, mos = np.asarray(pred, float), np.asarray(mos, float)
    fig = _figure(4.5, 3.8)
    ax = fig.add_subplot()
    ax.scatter(pred, mos, s=8, alpha=0.6)
    if curve is not None and len(pred):
        xs = np.linspace(np.nanmin(pred), np.nanmax(pred), 200)
        ax.plot(xs, curve(xs), color="tab:red", label="4-parameter logistic fit")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{name} score" if name else "metric score")
    ax.set_ylabel(mos_label)
    return fig
