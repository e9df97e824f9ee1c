"""Grouped bootstrap intervals and paired differences (prfnet.stats.bootstrap) on known answers."""

from __future__ import annotations

import numpy as np
import pytest

from prfnet.stats.bootstrap import Interval, accuracy_ci, bootstrap_ci, group_resample_counts, paired_difference


def test_bootstrap_of_a_constant_has_zero_width():
    groups = {f"ref{i}": np.full(1 + i % 4, 0.75) for i in range(12)}
    ci = bootstrap_ci(groups, np.mean, n_boot=300, seed=1)
    assert isinstance(ci, Interval) and ci.estimate == ci.low == ci.high == 0.75
    assert (ci.n_groups, ci.n_items, ci.n_boot, ci.n_failed) == (12, sum(1 + i % 4 for i in range(12)), 300, 0)
    ids = [g for g, v in groups.items() for _ in v]
    acc = accuracy_ci(np.ones(len(ids)), ids, n_boot=300)
    assert acc.estimate == acc.low == acc.high == 1.0
    assert ci.to_dict()["level"] == 0.95


def test_generic_and_fast_paths_agree_and_are_deterministic():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(15), rng.integers(1, 6, 15))
    correct = (rng.random(len(ids)) < 0.6).astype(float)
    fast = accuracy_ci(correct, list(ids), n_boot=400, seed=3)
    generic = bootstrap_ci([correct[ids == g] for g in range(15)], np.mean, n_boot=400, seed=3)
    assert fast.estimate == pytest.approx(correct.mean())
    assert (fast.low, fast.high) == pytest.approx((generic.low, generic.high))
    assert accuracy_ci(correct, list(ids), n_boot=400, seed=3) == fast
    assert accuracy_ci(correct, list(ids), n_boot=400, seed=4) != fast
    counts = group_resample_counts(15, 400, 3)
    assert counts.shape == (400, 15) and (counts.sum(axis=1) == 15).all()


def test_interval_covers_a_known_bernoulli_mean_at_about_the_nominal_rate():
    """200 simulated data sets: 40 references x 5 independent items, P(correct) = 0.7."""
    rng = np.random.default_rng(2024)
    ids = np.repeat(np.arange(40), 5)
    covered = 0
    for i in range(200):
        correct = (rng.random(200) < 0.7).astype(float)
        ci = accuracy_ci(correct, ids, n_boot=500, seed=i)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_grouping_widens_the_interval_when_items_are_copies():
    rng = np.random.default_rng(9)
    per_group = (rng.random(20) < 0.5).astype(float)
    correct = np.repeat(per_group, 10)  # 20 references, 10 identical triplets each
    grouped = accuracy_ci(correct, np.repeat(np.arange(20), 10), n_boot=1000)
    naive = accuracy_ci(correct, np.arange(200), n_boot=1000)  # as if the 200 items were independent
    assert grouped.estimate == naive.estimate
    assert grouped.high - grouped.low > 2.5 * (naive.high - naive.low)  # about sqrt(10) wider


def test_paired_difference():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(25), 4)
    correct = (rng.random(100) < 0.7).astype(float)
    same = paired_difference(correct, correct.copy(), ids, n_boot=500)
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0], "n_groups": 25, "n_items": 100}
    better = paired_difference(np.ones(100), correct, ids, n_boot=500)
    assert better["mean"] == pytest.approx(1 - correct.mean())
    assert 0 < better["ci95"][0] <= better["mean"] <= better["ci95"][1] < 1
    # the paired interval is narrower than the two separate intervals would suggest
    noisy = np.where(rng.random(100) < 0.1, 1 - correct, correct)
    paired = paired_difference(noisy, correct, ids, n_boot=1000)
    sep = [accuracy_ci(x, ids, n_boot=1000) for x in (noisy, correct)]
    assert paired["ci95"][1] - paired["ci95"][0] < 0.7 * sum(c.high - c.low for c in sep)
