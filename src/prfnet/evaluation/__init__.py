"""Evaluation protocols (CLIC, BAPPS 2AFC, MOS correlations) and HTML reports (``docs/evaluation.md``).

Every protocol scores each (reference, distorted) image pair once per metric and keeps each
metric's own direction (``higher_better``); PRFNet enters as :class:`PRFNetMetric` (a distance,
lower = closer).
"""

from .bapps import bapps_2afc_score, evaluate_bapps, find_splits, find_subsets
from .clic import (
    accuracy_by_kind,
    decisions,
    evaluate_clic,
    majority_accuracy,
    official_accuracy,
    score_submission,
    vote_accuracy,
    write_submission,
)
from .mos import LogisticFit, correlations, evaluate_mos, fit_logistic, load_mos, logistic4
from .plots import TripletExample, plot_accuracy_bars, plot_examples, plot_reliability, plot_scatter_fit
from .report import Report
from .scoring import MetricSelection, PairScores, PRFNetMetric, parse_metric_names, score_pairs, select_metrics

__all__ = [
    "LogisticFit",
    "MetricSelection",
    "PRFNetMetric",
    "PairScores",
    "Report",
    "TripletExample",
    "accuracy_by_kind",
    "bapps_2afc_score",
    "correlations",
    "decisions",
    "evaluate_bapps",
    "evaluate_clic",
    "evaluate_mos",
    "find_splits",
    "find_subsets",
    "fit_logistic",
    "load_mos",
    "logistic4",
    "majority_accuracy",
    "official_accuracy",
    "parse_metric_names",
    "plot_accuracy_bars",
    "plot_examples",
    "plot_reliability",
    "plot_scatter_fit",
    "score_pairs",
    "score_submission",
    "select_metrics",
    "vote_accuracy",
    "write_submission",
]
