"""Bootstrap intervals of SRCC, PLCC and KRCC over groups (prfnet.stats.resampled_correlations): scipy's
estimates, zero width where exact, and the same resamples as the loop bootstrap of prfnet.stats.bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from prfnet.stats.bootstrap import bootstrap_ci
from prfnet.stats.correlation import correlation
from prfnet.stats.resampled_correlations import correlation_ci


def test_correlation_ci():
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(20), 3)
    x = rng.random(60)
    exact = correlation_ci(x, x**3, ids, "srcc", n_boot=200)
    assert (exact.estimate, exact.low, exact.high) == pytest.approx((1.0, 1.0, 1.0))  # zero width, to rounding
    assert correlation(x, x**3, "plcc") < 1.0 and correlation(x, x**3, "krcc") == pytest.approx(1.0)
    y = x + 0.3 * rng.standard_normal(60)
    for kind, fn in (("srcc", sps.spearmanr), ("plcc", sps.pearsonr), ("krcc", sps.kendalltau)):
        ci = correlation_ci(x, y, ids, kind, n_boot=200, seed=5)
        assert ci.estimate == pytest.approx(fn(x, y).statistic)
        assert ci.low < ci.estimate < ci.high and ci.n_failed == 0
    single = correlation_ci([0.0, 1.0, 2.0], [1.0, 3.0, 2.0], ["a", "b", "c"], n_boot=200)
    assert 0 < single.n_failed < 60  # a resample drawing one reference three times is constant (1 in 9)
    with pytest.raises(ValueError):
        correlation(x, y, "pearson")


def test_vectorised_correlation_intervals_are_the_loop_bootstrap():
    """correlation_ci (weighted ranks / quadratic forms over groups) = bootstrap_ci with scipy on each resample."""
    rng = np.random.default_rng(6)
    groups = list(rng.integers(0, 12, 50))
    x = np.round(rng.random(50) * 6)  # ties in both
    y = np.round(x + rng.standard_normal(50), 1)
    codes = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    by_group = [np.column_stack([x, y])[[codes[g] == i for g in groups]] for i in range(len(codes))]
    for kind in ("srcc", "krcc", "plcc"):
        fast = correlation_ci(x, y, groups, kind, n_boot=300, seed=2)
        loop = bootstrap_ci(by_group, lambda v, k=kind: correlation(v[:, 0], v[:, 1], k), n_boot=300, seed=2)
        assert (fast.estimate, fast.low, fast.high) == pytest.approx((loop.estimate, loop.low, loop.high), abs=1e-12)
        assert fast.n_failed == loop.n_failed
