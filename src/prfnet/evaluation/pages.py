"""HTML reports of the three protocols, built with :class:`prfnet.report.html.Report`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import PRFNetError
from ..report.html import Report
from ..report.plots import (
    MAPS_CAPTION,
    plot_accuracy_bars,
    plot_example_maps,
    plot_examples,
    plot_reliability,
    plot_scatter_fit,
)
from ..stats.correlation import LogisticFit
from ..stats.intervals import METHOD, ceiling_note, ceiling_of, difference_cell, with_ci

PRFNET = "prfnet"

log = logging.getLogger(__name__)


def direction(entry: dict) -> str:
    """Which raw score means closer to the reference: "higher" or "lower" ("" if unavailable)."""
    if not entry.get("available"):
        return ""
    return "higher" if entry["higher_better"] else "lower"


def _num(value) -> float | str:
    return float(value) if value is not None and np.isfinite(value) else "n/a"


def _status(entry: dict) -> str:
    return "ok" if entry.get("available") else f"unavailable: {entry.get('reason', '')}"


def _unavailable_note(report: Report, results: dict) -> None:
    missing = {n: r["reason"] for n, r in results.items() if not r.get("available")}
    if missing:
        report.add_text(
            "Not run here: " + "; ".join(f"{n} ({reason})" for n, reason in missing.items()) + ".", note=True
        )


PAIRED = "prfnet - metric"


def _paired_column(results: dict) -> bool:
    """Whether any entry has a paired difference to PRFNet (the table then has a "prfnet - metric" column)."""
    return any(r.get("paired_difference") or r.get("splits_paired_difference") for r in results.values())


def _cell(intervals: bool, value, ci):
    """A figure as a float ("n/a" if undefined), or with ``intervals`` as "est [low, high]"."""
    return with_ci(value, ci) if intervals else _num(value)


def by_kind_ci(entry: dict, kind: str) -> list[float] | None:
    return (entry.get("accuracy_by_kind_ci95") or {}).get(kind)


def clic_table(results: dict, intervals: bool = False) -> tuple[list[str], list[list]]:
    """Columns and rows (one per metric, floats or "n/a") of the CLIC accuracy table; with ``intervals`` every
    accuracy is "est [low, high]" and, when PRFNet was evaluated, a "prfnet - metric" column is added."""
    kinds = sorted({k for r in results.values() for k in (r.get("accuracy_by_kind") or {})})
    paired = intervals and _paired_column(results)
    figures = ("accuracy", "accuracy_majority", "accuracy_votes")
    columns = ["metric", "closer when", "accuracy", "majority", "per vote", *(f"kind: {k}" for k in kinds)]
    rows = [
        [
            name,
            direction(r),
            *(_cell(intervals, r.get(f), r.get(f"{f}_ci95")) for f in figures),
            *(_cell(intervals, (r.get("accuracy_by_kind") or {}).get(k), by_kind_ci(r, k)) for k in kinds),
            *([difference_cell(r)] if paired else []),
            _status(r),
        ]
        for name, r in results.items()
    ]
    return [*columns, *([PAIRED] if paired else []), "status"], rows


def bapps_subsets(results: dict) -> list[str]:
    """Subset names in the order of the first available metric's result."""
    return list(next((r["subsets"] for r in results.values() if r.get("available")), {}))


def bapps_splits(results: dict) -> list[str]:
    """Split names (``train``, ``val``) in the order of the first available metric's result."""
    return list(next((r.get("splits") or {} for r in results.values() if r.get("available")), {}))


def bapps_table(results: dict, intervals: bool = False) -> tuple[list[str], list[list]]:
    """Columns and rows of the BAPPS 2AFC score table: per subset, then per split the mean over its triplets
    ("all") and over its subsets ("mean"). With several splits each has its own columns (never pooled). With
    ``intervals``: "est [low, high]" cells and, with PRFNet, "prfnet - metric" on each split's "all"."""
    subsets, splits = bapps_subsets(results), bapps_splits(results)
    summary = [("all", "score"), ("mean", "mean_of_subsets")]
    many = len(splits) > 1
    columns = [f"{split}: {label}" if many else label for split in splits for label, _ in summary]
    paired = intervals and _paired_column(results)
    if paired:
        columns += [f"{split}: {PAIRED}" if many else PAIRED for split in splits]

    def split_cell(r: dict, split: str, key: str):
        figure = ((r.get("splits") or {}).get(split) or {}).get(key)
        return _cell(intervals, figure, ((r.get("splits_ci95") or {}).get(split) or {}).get(key))

    rows = [
        [
            name,
            direction(r),
            *(_cell(intervals, (r.get("subsets") or {}).get(s), (r.get("subsets_ci95") or {}).get(s)) for s in subsets),
            *(split_cell(r, split, key) for split in splits for _, key in summary),
            *(difference_cell(r.get("splits_paired_difference") or {}, split) for split in splits if paired),
            _status(r),
        ]
        for name, r in results.items()
    ]
    return ["metric", "closer when", *subsets, *columns, "status"], rows


def mos_table(results: dict, intervals: bool = False) -> tuple[list[str], list[list]]:
    """Columns and rows of the MOS correlation table; with ``intervals`` "est [low, high]" cells and, with
    PRFNet, the paired difference of SRCC ("SRCC: prfnet - metric")."""
    paired = intervals and _paired_column(results)
    rows = [
        [
            n,
            direction(r),
            *(_cell(intervals, r.get(f), r.get(f"{f}_ci95")) for f in ("srcc", "plcc", "krcc")),
            r.get("n", ""),
            *([difference_cell(r)] if paired else []),
            _status(r),
        ]
        for n, r in results.items()
    ]
    columns = ["metric", "closer when", "SRCC", "PLCC", "KRCC", "n", *([f"SRCC: {PAIRED}"] if paired else [])]
    return [*columns, "status"], rows


def calibration_text(entry: dict) -> str:
    """PRFNet's Brier score (with its interval) and ECE in words."""
    if entry.get("brier") is None:
        return "No calibration figures (no oracle)."
    brier = with_ci(entry["brier"], entry.get("brier_ci95"))
    return (
        f"Brier score {brier if isinstance(brier, str) else f'{brier:.3f}'} (lower is better), expected calibration "
        f"error {entry['ece']:.3f}: P(A closer) = sigmoid(score_b - score_a) against the fraction of each triplet's "
        "votes for A, over unordered triplets (ECE: 10 equal-width probability bins, weighted by their counts)."
    )


def clic_report(
    results: dict,
    csv: Path,
    oracle: Path | None,
    shown: str | None,
    reliability: tuple[np.ndarray, np.ndarray] | None,
    examples: Sequence,
    model=None,
    simulated_votes: bool | None = None,
) -> Report:
    """Accuracy table, accuracy bars, PRFNet reliability diagram and example triplets; with ``model`` (the PRFNet
    that was evaluated, ``shown`` being PRFNet) also its per-pixel maps of the examples (:func:`add_example_maps`).
    ``simulated_votes``: whether the oracle's votes are simulated, not people's (the figures then say "simulated
    votes", not "human"); ``None``: :func:`votes_are_simulated` of ``oracle``."""
    simulated = votes_are_simulated(oracle) if simulated_votes is None else simulated_votes
    report = Report("CLIC perceptual 2AFC evaluation")
    source = "none (submissions only)" if oracle is None else f"{oracle}" + (" (SIMULATED votes)" if simulated else "")
    report.add_text(f"Triplets: {csv}. Oracle: {source}.")
    report.add_text(
        "accuracy: the official CLIC scorer (oracle dict keyed 'O,A,B', last row of a repeated key wins, "
        "matches / keys). majority: per unordered triplet against the majority of its votes, ties excluded. "
        "per vote: fraction of individual oracle rows matched. A tie between a metric's two scores is "
        "submitted as T = 0 (A closer), like the devkit's PSNR baseline.",
        note=True,
    )
    report.add_heading("Accuracy")
    report.add_table(*clic_table(results, intervals=True))
    note = ceiling_note(results)
    if note:
        report.add_text(note)
    report.add_text(METHOD + " 'prfnet - metric': PRFNet's official accuracy minus the metric's.", note=True)
    _unavailable_note(report, results)
    if oracle is not None:
        bars = {n: (r.get("accuracy") if r.get("available") else None) for n, r in results.items()}
        cis = {n: r.get("accuracy_ci95") for n, r in results.items()}
        ceiling = (ceiling_of(results) or {}).get("ceiling")
        report.add_figure(
            plot_accuracy_bars(bars, title="official CLIC accuracy", intervals=cis, ceiling=ceiling),
            "Accuracy per metric with its 95 % interval; dotted: the noise ceiling of the votes.",
        )
    if reliability is not None:
        report.add_heading("PRFNet calibration")
        report.add_text(calibration_text(results.get(PRFNET) or {}))
        report.add_figure(
            plot_reliability(
                *reliability, title="PRFNet reliability", votes="simulated votes" if simulated else "human"
            ),
            f"Predicted P(A closer) against the {'simulated' if simulated else 'human'} vote fraction and the majority "
            "label, per probability bin.",
        )
    if examples and shown is not None:
        report.add_heading(f"Example triplets ({shown})")
        majority = "the majority of the simulated votes" if simulated else "the human majority"
        report.add_figure(plot_examples(examples), f"R, A, B with the metric's decision and {majority}.")
        if model is not None and shown == PRFNET:
            add_example_maps(report, examples, model)
    return report


def votes_are_simulated(oracle: Path | None) -> bool:
    """Whether ``oracle``'s votes come from a synthetic set of ``prfnet synth`` (the demo's too): its folder's
    ``ceiling.json`` says ``"simulated": true`` (``--kind codecs``) or its ``README.txt`` says NOT HUMAN JUDGMENTS
    (both kinds). CLIC's and BAPPS' own files have neither: their votes are people's."""
    if oracle is None:
        return False
    folder = Path(oracle).parent
    try:
        if json.loads((folder / "ceiling.json").read_text(encoding="utf-8")).get("simulated") is True:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return "NOT HUMAN JUDGMENTS" in (folder / "README.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def add_example_maps(report: Report, examples: Sequence, model) -> bool:
    """Add PRFNet's per-pixel maps of ``examples`` (:func:`~prfnet.report.plots.plot_example_maps`) with
    their caption. A map that cannot be computed (e.g. an :class:`~prfnet.errors.InputError`, a fusion block
    without maps, out of memory) leaves a note instead of the figure; the evaluation goes on. True if added."""
    report.add_heading("Where PRFNet sees the differences")
    try:
        fig = plot_example_maps(examples, model)
    except (PRFNetError, TypeError, MemoryError, torch.OutOfMemoryError) as exc:
        log.warning("report: no PRFNet maps of the example triplets (%s)", exc)
        report.add_text(f"No PRFNet maps of the example triplets: {exc}", note=True)
        return False
    report.add_figure(fig, MAPS_CAPTION)
    return True


def bapps_report(results: dict, root: Path, subsets: list[str]) -> Report:
    """2AFC score table per subset and per split, and bars of each split's score."""
    report = Report("BAPPS 2AFC evaluation")
    report.add_text(f"Data: {root}. Subsets: {', '.join(subsets)}.")
    report.add_text(
        "2AFC score per triplet: (d0<d1)*(1-judge) + (d1<d0)*judge + 0.5*(d0==d1), with the metric's own "
        "direction; per split, 'all' = mean over its triplets, 'mean' = unweighted mean of its subset scores. "
        "Train and val splits are reported separately, never pooled.",
        note=True,
    )
    report.add_table(*bapps_table(results, intervals=True))
    report.add_text(
        METHOD.replace("over references", "over triplets (each has its own reference patch)")
        + " 'prfnet - metric': PRFNet's score over the split's triplets minus the metric's.",
        note=True,
    )
    _unavailable_note(report, results)
    for split in bapps_splits(results):
        bars = {n: (r["splits"][split]["score"] if r.get("available") else None) for n, r in results.items()}
        report.add_figure(
            plot_accuracy_bars(
                bars,
                ylabel="2AFC score",
                title=f"BAPPS 2AFC score: {split}",
                intervals={n: ((r.get("splits_ci95") or {}).get(split) or {}).get("score") for n, r in results.items()},
            ),
            f"2AFC score over the {split} triplets.",
        )
    return report


def mos_report(results: dict, source: str, mos, columns: dict[str, np.ndarray], subjective: np.ndarray) -> Report:
    """Correlation table, SRCC bars and a scatter with the logistic fit of PRFNet (or the first metric)."""
    report = Report("MOS correlation evaluation")
    direction_word = "higher = better" if mos.higher_better else "lower = better"
    report.add_text(f"Data: {source} ({len(mos.items)} distorted images, subjective scores {direction_word}).")
    report.add_text(
        "Scores are oriented like the subjective scores before correlating. PLCC after the VQEG "
        "4-parameter logistic fit; SRCC Spearman, KRCC Kendall tau-b.",
        note=True,
    )
    report.add_table(*mos_table(results, intervals=True))
    report.add_text(
        METHOD.replace("over references", "over reference images, each with all its distorted images")
        + " PLCC's intervals keep the logistic fitted on all items. 'prfnet - metric': PRFNet's SRCC minus the "
        "metric's, on the items both scored.",
        note=True,
    )
    _unavailable_note(report, results)
    bars = {n: (r.get("srcc") if r.get("available") else None) for n, r in results.items()}
    cis = {n: r.get("srcc_ci95") for n, r in results.items()}
    report.add_figure(
        plot_accuracy_bars(bars, ylabel="SRCC", title="Spearman correlation", chance=None, intervals=cis),
        "SRCC with its 95 % interval.",
    )
    shown = PRFNET if PRFNET in columns else next(iter(columns), None)
    if shown is not None:
        fit = results[shown].get("fit")
        curve = LogisticFit(tuple(fit["params"]), fit["mean"], fit["std"], True) if fit and fit["converged"] else None
        sign = 1.0 if bool(results[shown]["higher_better"]) == bool(mos.higher_better) else -1.0
        label = f"{shown} (negated)" if sign < 0 else shown
        report.add_figure(
            plot_scatter_fit(sign * columns[shown], subjective, curve, label),
            f"{shown} against the subjective scores, with the logistic fit used for PLCC."
            if curve is not None
            else f"{shown} against the subjective scores; the logistic fit did not converge, so PLCC is the linear "
            "correlation of the raw scores.",
        )
    return report
