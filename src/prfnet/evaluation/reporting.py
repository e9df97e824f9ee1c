"""HTML reports of the three protocols, built with :class:`prfnet.evaluation.report.Report`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .plots import plot_accuracy_bars, plot_examples, plot_reliability, plot_scatter_fit
from .report import Report

PRFNET = "prfnet"


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


def clic_table(results: dict) -> tuple[list[str], list[list]]:
    """Columns and rows (one per metric, floats or "n/a") of the CLIC accuracy table."""
    kinds = sorted({k for r in results.values() for k in (r.get("accuracy_by_kind") or {})})
    columns = ["metric", "closer when", "accuracy", "majority", "per vote", *(f"kind: {k}" for k in kinds), "status"]
    rows = [
        [
            name,
            direction(r),
            _num(r.get("accuracy")),
            _num(r.get("accuracy_majority")),
            _num(r.get("accuracy_votes")),
            *(_num((r.get("accuracy_by_kind") or {}).get(k)) for k in kinds),
            _status(r),
        ]
        for name, r in results.items()
    ]
    return columns, rows


def bapps_subsets(results: dict) -> list[str]:
    """Subset names in the order of the first available metric's result."""
    return list(next((r["subsets"] for r in results.values() if r.get("available")), {}))


def bapps_splits(results: dict) -> list[str]:
    """Split names (``train``, ``val``) in the order of the first available metric's result."""
    return list(next((r.get("splits") or {} for r in results.values() if r.get("available")), {}))


def bapps_table(results: dict) -> tuple[list[str], list[list]]:
    """Columns and rows of the BAPPS 2AFC score table: per subset, then per split the mean over its triplets
    ("all") and over its subsets ("mean"). With several splits each has its own columns (never pooled)."""
    subsets, splits = bapps_subsets(results), bapps_splits(results)
    summary = [("all", "score"), ("mean", "mean_of_subsets")]
    if len(splits) > 1:
        columns = [f"{split}: {label}" for split in splits for label, _ in summary]
    else:
        columns = [label for label, _ in summary]
    rows = [
        [
            name,
            direction(r),
            *(_num((r.get("subsets") or {}).get(s)) for s in subsets),
            *(_num(((r.get("splits") or {}).get(split) or {}).get(key)) for split in splits for _, key in summary),
            _status(r),
        ]
        for name, r in results.items()
    ]
    return ["metric", "closer when", *subsets, *columns, "status"], rows


def mos_table(results: dict) -> tuple[list[str], list[list]]:
    """Columns and rows of the MOS correlation table."""
    rows = [
        [n, direction(r), _num(r.get("srcc")), _num(r.get("plcc")), _num(r.get("krcc")), r.get("n", ""), _status(r)]
        for n, r in results.items()
    ]
    return ["metric", "closer when", "SRCC", "PLCC", "KRCC", "n", "status"], rows


def clic_report(
    results: dict,
    csv: Path,
    oracle: Path | None,
    shown: str | None,
    reliability: tuple[np.ndarray, np.ndarray] | None,
    examples: Sequence,
) -> Report:
    """Accuracy table, accuracy bars, PRFNet reliability diagram and example triplets."""
    report = Report("CLIC perceptual 2AFC evaluation")
    report.add_text(f"Triplets: {csv}. Oracle: {oracle if oracle is not None else 'none (submissions only)'}.")
    report.add_text(
        "accuracy: the official CLIC scorer (oracle dict keyed 'O,A,B', last row of a repeated key wins, "
        "matches / keys). majority: per unordered triplet against the majority of its votes, ties excluded. "
        "per vote: fraction of individual oracle rows matched. A tie between a metric's two scores is "
        "submitted as T = 0 (A closer), like the devkit's PSNR baseline.",
        note=True,
    )
    report.add_heading("Accuracy")
    report.add_table(*clic_table(results))
    _unavailable_note(report, results)
    if oracle is not None:
        bars = {n: (r.get("accuracy") if r.get("available") else None) for n, r in results.items()}
        report.add_figure(plot_accuracy_bars(bars, title="official CLIC accuracy"), "Accuracy per metric.")
    if reliability is not None:
        report.add_heading("PRFNet calibration")
        report.add_figure(
            plot_reliability(*reliability, title="PRFNet reliability"),
            "Predicted P(A closer) against the human vote fraction and the majority label, per probability bin.",
        )
    if examples and shown is not None:
        report.add_heading(f"Example triplets ({shown})")
        report.add_figure(plot_examples(examples), "R, A, B with the metric's decision and the human majority.")
    return report


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
    report.add_table(*bapps_table(results))
    _unavailable_note(report, results)
    for split in bapps_splits(results):
        bars = {n: (r["splits"][split]["score"] if r.get("available") else None) for n, r in results.items()}
        report.add_figure(
            plot_accuracy_bars(bars, ylabel="2AFC score", title=f"BAPPS 2AFC score: {split}"),
            f"2AFC score over the {split} triplets.",
        )
    return report


def mos_report(results: dict, source: str, mos, columns: dict[str, np.ndarray], subjective: np.ndarray) -> Report:
    """Correlation table, SRCC bars and a scatter with the logistic fit of PRFNet (or the first metric)."""
    from .mos import LogisticFit

    report = Report("MOS correlation evaluation")
    direction_word = "higher = better" if mos.higher_better else "lower = better"
    report.add_text(f"Data: {source} ({len(mos.items)} distorted images, subjective scores {direction_word}).")
    report.add_text(
        "Scores are oriented like the subjective scores before correlating. PLCC after the VQEG "
        "4-parameter logistic fit; SRCC Spearman, KRCC Kendall tau-b.",
        note=True,
    )
    report.add_table(*mos_table(results))
    _unavailable_note(report, results)
    bars = {n: (r.get("srcc") if r.get("available") else None) for n, r in results.items()}
    report.add_figure(plot_accuracy_bars(bars, ylabel="SRCC", title="Spearman correlation", chance=None), "SRCC.")
    shown = PRFNET if PRFNET in columns else next(iter(columns), None)
    if shown is not None:
        fit = results[shown].get("fit")
        curve = LogisticFit(tuple(fit["params"]), fit["mean"], fit["std"], True) if fit and fit["converged"] else None
        sign = 1.0 if bool(results[shown]["higher_better"]) == bool(mos.higher_better) else -1.0
        label = f"{shown} (negated)" if sign < 0 else shown
        report.add_figure(
            plot_scatter_fit(sign * columns[shown], subjective, curve, label),
            f"{shown} against the subjective scores, with the logistic fit used for PLCC.",
        )
    return report
