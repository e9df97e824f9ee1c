"""Statistics of evaluations: group-bootstrap intervals, (resampled) correlations, the VQEG logistic fit,
calibration and ceilings. Pure NumPy/SciPy on arrays of scores; nothing here reads an image or loads a model.

Intervals resample **groups** (reference ids) with replacement and report the percentile interval
(:mod:`.bootstrap`); the settings every protocol uses are in :mod:`.intervals`.
"""

from .bootstrap import Interval, accuracy_ci, bootstrap_ci, grouped_means, paired_difference
from .calibration import brier_score, calibration_table, expected_calibration_error
from .ceilings import clic_noise_ceiling, judge_ceiling
from .correlation import LogisticFit, correlation, correlations, fit_logistic, logistic4
from .resampled_correlations import correlation_ci

__all__ = [
    "Interval",
    "LogisticFit",
    "accuracy_ci",
    "bootstrap_ci",
    "brier_score",
    "calibration_table",
    "clic_noise_ceiling",
    "correlation",
    "correlation_ci",
    "correlations",
    "expected_calibration_error",
    "fit_logistic",
    "grouped_means",
    "judge_ceiling",
    "logistic4",
    "paired_difference",
]
