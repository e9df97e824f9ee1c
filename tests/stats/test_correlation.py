"""SRCC, KRCC and PLCC after the VQEG logistic fit (prfnet.stats.correlation) on constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from prfnet.stats.correlation import correlations, fit_logistic, logistic4


def _pearson(x, y) -> float:
    """Pearson's r from its definition (no scipy)."""
    dx, dy = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


def test_correlations_give_known_answers_on_constructed_data():
    # x = 1..5 against y = 2 1 4 3 5: rank differences -1 1 -1 1 0, so SRCC = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8;
    # of the 10 pairs, (1, 2) and (3, 4) are discordant: KRCC = (8 - 2) / 10 = 0.6
    small = correlations([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert (small["n"], small["srcc"], small["krcc"]) == (5, pytest.approx(0.8), pytest.approx(0.6))
    # with a tie in y (1 1 2 3 against 1 2 3 4): Spearman on average ranks (1.5 1.5 3 4) gives
    # 4.5 / sqrt(5 * 4.5) = sqrt(0.9); Kendall's tau-b: 5 concordant pairs, 1 tied in y only,
    # (5 - 0) / sqrt(6 * (6 - 1)) = 5 / sqrt(30)
    tied = correlations([1, 2, 3, 4], [1, 1, 2, 3])
    assert tied["srcc"] == pytest.approx(np.sqrt(0.9)) and tied["krcc"] == pytest.approx(5 / np.sqrt(30))

    # a noiseless, strongly curved monotone relation: rank correlations are exactly 1, and the fitted VQEG
    # logistic maps x onto y, so PLCC is 1 where the linear correlation is far from it
    x = np.linspace(-4, 4, 41)
    y = 1 + 4 / (1 + np.exp(-3 * x))
    assert _pearson(x, y) < 0.95
    out = correlations(x, y)
    assert out["srcc"] == pytest.approx(1.0) and out["krcc"] == pytest.approx(1.0)
    assert out["plcc"] == pytest.approx(1.0, abs=1e-6)

    # orientation: a distance (lower = better) against MOS (higher = better) is negated first, so a perfect
    # distance has +1 everywhere; without that flag its correlations are -1
    # (the logistic is fitted decreasing there, docs/evaluation.md, so PLCC alone does not show the sign)
    distance = 10 - x
    flipped = correlations(distance, y, same_direction=False)
    assert (flipped["srcc"], flipped["krcc"]) == (pytest.approx(1.0), pytest.approx(1.0))
    assert flipped["plcc"] == pytest.approx(1.0, abs=1e-6)
    unflipped = correlations(distance, y)
    assert (unflipped["srcc"], unflipped["krcc"]) == (pytest.approx(-1.0), pytest.approx(-1.0))
    assert unflipped["plcc"] == pytest.approx(1.0, abs=1e-6)
    assert unflipped["fit"]["params"][0] < unflipped["fit"]["params"][1]  # b1 < b2: decreasing
    # the same distance against DMOS (also lower = better) needs no flip
    assert correlations(distance, 6 - y)["srcc"] == pytest.approx(1.0)


@pytest.mark.parametrize("increasing", [True, False])
def test_logistic_fit_recovers_a_noiseless_curve(increasing):
    x = np.linspace(-30, 50, 120)
    params = (90.0, 10.0, 12.0, 6.0) if increasing else (10.0, 90.0, 12.0, 6.0)
    y = logistic4(x, *params)
    fit = fit_logistic(x, y)
    assert fit.converged
    assert np.abs(fit(x) - y).max() < 1e-3 * np.ptp(y)
    assert correlations(x, y)["plcc"] == pytest.approx(1.0, abs=1e-6)
