"""The official evaluation protocols: CLIC 2AFC, BAPPS 2AFC and JND, and MOS correlations, with their report pages
(``docs/evaluation.md``).

Every protocol scores each (reference, distorted) image pair once per metric through :mod:`prfnet.scoring` and
keeps each metric's own direction (``higher_better``); PRFNet enters as a distance (lower = closer).
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
from .jnd import evaluate_jnd, jnd_average_precision
from .mos import evaluate_mos, load_mos

__all__ = [
    "accuracy_by_kind",
    "bapps_2afc_score",
    "decisions",
    "evaluate_bapps",
    "evaluate_clic",
    "evaluate_jnd",
    "evaluate_mos",
    "find_splits",
    "find_subsets",
    "jnd_average_precision",
    "load_mos",
    "majority_accuracy",
    "official_accuracy",
    "score_submission",
    "vote_accuracy",
    "write_submission",
]
