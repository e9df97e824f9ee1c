"""Correlations of a metric with subjective scores: SRCC, PLCC, KRCC and the VQEG 4-parameter logistic fit."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

log = logging.getLogger(__name__)

CORRELATIONS = ("srcc", "plcc", "krcc")


def correlation(x: Sequence[float], y: Sequence[float], kind: str = "srcc") -> float:
    """SRCC (Spearman), PLCC (Pearson, no logistic fit) or KRCC (Kendall tau-b) from scipy.stats."""
    functions = {"srcc": stats.spearmanr, "plcc": stats.pearsonr, "krcc": stats.kendalltau}
    if kind not in functions:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # undefined for constant input (scipy would warn)
    return float(functions[kind](x, y).statistic)


MIN_ITEMS = 3  # fewer points make every rank correlation +-1 or undefined
MIN_FIT_POINTS = 4  # the logistic has four parameters


def logistic4(x, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG four-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2 (increasing when b1 > b2)."""
    z = np.clip(-(np.asarray(x, dtype=float) - b3) / max(abs(b4), 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


@dataclass(frozen=True)
class LogisticFit:
    """A fitted mapping from metric scores to subjective scores. ``params``: (b1, b2, b3, b4) on the
    standardised scores (x - mean) / std; ``converged``: False when the fit failed, and the mapping
    is then the identity (PLCC falls back to the plain Pearson correlation)."""

    params: tuple[float, float, float, float]
    mean: float
    std: float
    converged: bool

    def __call__(self, x) -> np.ndarray:
        """Predicted subjective score of metric scores ``x`` (oriented as in the fit); identity if not converged."""
        if not self.converged:
            return np.asarray(x, dtype=float)
        return logistic4((np.asarray(x, dtype=float) - self.mean) / self.std, *self.params)


def fit_logistic(x: Sequence[float], y: Sequence[float]) -> LogisticFit:
    """Least-squares fit of :func:`logistic4` to (x, y) with a robust initial guess (see module doc)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    mean, std = float(x.mean()), float(x.std())
    failed = LogisticFit((float("nan"),) * 4, mean, std or 1.0, converged=False)
    if not np.isfinite(std) or std == 0.0 or len(x) < MIN_FIT_POINTS:
        return failed
    xs = (x - mean) / std
    sign = 1.0 if stats.spearmanr(xs, y).statistic >= 0 else -1.0
    hi, lo = float(y.max()), float(y.min())
    guess = (hi, lo, float(np.median(xs)), 1.0) if sign > 0 else (lo, hi, float(np.median(xs)), 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, xs, y, p0=guess, maxfev=20000)
        if not np.all(np.isfinite(params)):
            raise RuntimeError("non-finite parameters")
        return LogisticFit(tuple(float(p) for p in params), mean, std, converged=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        log.warning("logistic fit failed (%s); PLCC falls back to the linear correlation", exc)
        return failed


def correlations(scores: Sequence[float], mos: Sequence[float], same_direction: bool = True) -> dict:
    """SRCC, KRCC and PLCC (after the logistic fit) of metric ``scores`` against subjective ``mos``.

    ``same_direction``: whether larger scores mean what larger MOS values mean; if not, scores are
    negated first. Non-finite scores (e.g. PSNR of an identical image) are left out (``n_excluded``).
    A figure that is undefined here is NaN, with its reason in ``undefined`` (figure -> reason): fewer than
    3 points (all three), a constant metric or constant subjective scores (all three), fewer than 4 points
    (PLCC only: the logistic has four parameters; SRCC and KRCC are reported).
    """
    x = np.asarray(scores, dtype=float) * (1.0 if same_direction else -1.0)
    y = np.asarray(mos, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = float("nan")
    undefined: dict[str, str] = {}
    out = {"n": int(keep.sum()), "n_excluded": int((~keep).sum()), "srcc": nan, "krcc": nan, "plcc": nan}
    out.update(fit=None, undefined=undefined)
    excluded = f" ({out['n_excluded']} non-finite scores left out)" if out["n_excluded"] else ""
    if len(x) < MIN_ITEMS:
        reason = f"{len(x)} scored items{excluded}; correlations need at least {MIN_ITEMS}"
    elif np.ptp(x) == 0:
        reason = "the metric gives every item the same score: a correlation with a constant is undefined"
    elif np.ptp(y) == 0:
        reason = "every item has the same subjective score: a correlation with a constant is undefined"
    else:
        reason = None
    if reason is not None:
        undefined.update(srcc=reason, krcc=reason, plcc=reason)
        return out
    out.update(srcc=float(stats.spearmanr(x, y).statistic), krcc=float(stats.kendalltau(x, y).statistic))
    if len(x) < MIN_FIT_POINTS:
        undefined["plcc"] = (
            f"the VQEG 4-parameter logistic needs at least {MIN_FIT_POINTS} points, got {len(x)}{excluded}"
        )
        return out
    fit = fit_logistic(x, y)
    mapped = fit(x)
    if np.ptp(mapped) > 0:
        out["plcc"] = float(stats.pearsonr(mapped, y).statistic)
    else:
        undefined["plcc"] = "the fitted logistic is flat: every item gets the same prediction"
    out["fit"] = {"params": list(fit.params), "mean": fit.mean, "std": fit.std, "converged": fit.converged}
    return out
