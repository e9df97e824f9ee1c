"""Calibration of predicted 2AFC probabilities against vote fractions: Brier score, reliability table, ECE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def brier_score(prob: Sequence[float], frac: Sequence[float]) -> float:
    """mean((prob - frac)^2): predicted P(A closer) against the observed fraction of votes for A (both in [0, 1]).

    Lower = better; 0 only when every prediction equals its vote fraction (a perfect predictor of
    noisy votes still scores the votes' sampling variance against single-vote fractions).
    """
    p, f = np.asarray(prob, dtype=np.float64), np.asarray(frac, dtype=np.float64)
    if p.shape != f.shape or p.size == 0:
        raise ValueError(f"prob and frac need the same non-empty shape, got {p.shape} and {f.shape}")
    return float(np.mean((p - f) ** 2))


def calibration_table(prob: Sequence[float], frac: Sequence[float], bins: int = 10) -> list[dict]:
    """Per equal-width bin of ``prob`` on [0, 1] (bin i holds [i/bins, (i+1)/bins), the last one includes 1):
    ``{"low", "high", "count", "mean_prob", "mean_frac"}``; empty bins are left out."""
    p, f = np.asarray(prob, dtype=np.float64), np.asarray(frac, dtype=np.float64)
    if p.shape != f.shape or p.size == 0:
        raise ValueError(f"prob and frac need the same non-empty shape, got {p.shape} and {f.shape}")
    which = np.clip(np.floor(p * bins).astype(np.int64), 0, bins - 1)
    table = []
    for i in range(bins):
        inside = which == i
        if inside.any():
            row = {"low": i / bins, "high": (i + 1) / bins, "count": int(inside.sum())}
            table.append({**row, "mean_prob": float(p[inside].mean()), "mean_frac": float(f[inside].mean())})
    return table


def expected_calibration_error(prob: Sequence[float], frac: Sequence[float], bins: int = 10) -> float:
    """ECE = sum over bins of (count / N) * |mean prob - mean vote fraction| (bins of :func:`calibration_table`)."""
    table = calibration_table(prob, frac, bins)
    total = sum(row["count"] for row in table)
    return float(sum(row["count"] / total * abs(row["mean_prob"] - row["mean_frac"]) for row in table))
