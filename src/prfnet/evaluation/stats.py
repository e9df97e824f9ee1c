"""Uncertainty and ceilings for 2AFC evaluations: grouped bootstrap intervals, calibration, CLIC ceilings.

Items (triplets) of one reference image are not independent, so every interval here resamples
**groups** (reference ids) with replacement, keeping all items of a drawn group, and reports the
percentile interval. Resampling is deterministic given ``seed``: the same seed, group count and
``n_boot`` draw the same groups in every function, so the intervals of two metrics computed on the
same items with the same seed use the same resamples.

CLIC conventions: ``T = 0`` means A is closer to O, ``T = 1`` B; the official scorer keys a dict on
``"O,A,B"`` where the last row of a repeated key wins (``docs/evaluation.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

Array = np.ndarray
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval [``low``, ``high``] at ``level``.

    ``n_failed``: resamples whose statistic was not finite (left out of the percentiles).
    """

    estimate: float
    low: float
    high: float
    level: float
    n_groups: int
    n_items: int
    n_boot: int
    n_failed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _group_codes(groups: Sequence[Hashable]) -> tuple[Array, int]:
    """Group ids -> integer codes 0..G-1 in first-seen order, and G."""
    index: dict[Hashable, int] = {}
    codes = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
    return codes, len(index)


_CHUNK_CELLS = 1 << 21  # resample counts generated at a time (bounds memory for item-level groups)


def resample_count_chunks(n_groups: int, n_boot: int, seed: int) -> Iterator[Array]:
    """The rows of :func:`group_resample_counts` in consecutive blocks (memory stays bounded for large
    ``n_groups``); the blocks depend only on ``(n_groups, n_boot, seed)``, so their concatenation is the matrix."""
    if n_groups < 1 or n_boot < 1:
        raise ValueError(f"need n_groups >= 1 and n_boot >= 1, got {n_groups} and {n_boot}")
    rng = np.random.default_rng(seed)
    rows = max(1, min(n_boot, _CHUNK_CELLS // n_groups))
    for start in range(0, n_boot, rows):
        m = min(rows, n_boot - start)
        drawn = rng.integers(0, n_groups, size=(m, n_groups)) + n_groups * np.arange(m)[:, None]
        yield np.bincount(drawn.ravel(), minlength=m * n_groups).reshape(m, n_groups)


def group_resample_counts(n_groups: int, n_boot: int, seed: int) -> Array:
    """(n_boot, n_groups) int array: how often each group is drawn in each resample (rows sum to n_groups).

    Each resample draws ``n_groups`` group indices uniformly with replacement (a multinomial count vector).
    """
    return np.concatenate(list(resample_count_chunks(n_groups, n_boot, seed)))


def percentile_interval(estimate: float, boot: Array, level: float, n_groups: int, n_items: int) -> Interval:
    """:class:`Interval` of bootstrap replicates ``boot`` (non-finite ones are left out and counted)."""
    return _interval(estimate, np.asarray(boot, dtype=np.float64), level, n_groups, n_items)


def _interval(estimate: float, boot: Array, level: float, n_groups: int, n_items: int) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    finite = boot[np.isfinite(boot)]
    alpha = 1.0 - level
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if finite.size else (np.nan, np.nan)
    return Interval(
        float(estimate), float(low), float(high), level, n_groups, n_items, len(boot), len(boot) - finite.size
    )


def bootstrap_ci(
    values_by_group: Mapping[Hashable, Array] | Sequence[Array],
    statistic: Callable[[Array], float],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic`` over resamples of the groups.

    ``values_by_group``: one array per group (a mapping's values in its order), items along axis 0
    (e.g. (n_i,) correctness or (n_i, 2) score pairs). ``statistic`` gets the concatenation of the
    drawn groups' arrays (a group drawn twice appears twice) and returns a float; the estimate is
    ``statistic`` of all groups once.
    """
    arrays = [
        np.asarray(v) for v in (values_by_group.values() if isinstance(values_by_group, Mapping) else values_by_group)
    ]
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one group")
    counts = group_resample_counts(len(arrays), n_boot, seed)
    boot = np.empty(n_boot)
    for b, row in enumerate(counts):
        boot[b] = statistic(np.concatenate([arrays[g] for g in np.repeat(np.arange(len(arrays)), row)]))
    estimate = statistic(np.concatenate(arrays))
    return _interval(estimate, boot, level, len(arrays), sum(len(a) for a in arrays))


def grouped_means(
    values: Sequence[float] | Array, groups: Sequence[Hashable], n_boot: int = 2000, seed: int = 0
) -> tuple[Array, Array, int]:
    """Means over items of one or more columns and their group-bootstrap replicates, in one pass.

    ``values``: (n,) or (n, k) per-item values (k statistics on the same items, e.g. one column per metric);
    ``groups``: the group id of each item. Returns ``(estimates (k,), replicates (n_boot, k), n_groups)``; a
    replicate is the ratio of the drawn groups' sums to their item counts, every column with the same
    resamples (:func:`resample_count_chunks`), so columns can be compared resample by resample.
    """
    values = np.asarray(values, dtype=np.float64)
    matrix = values[:, None] if values.ndim == 1 else values
    if matrix.ndim != 2 or len(matrix) != len(groups) or len(matrix) == 0:
        raise ValueError(f"need one group id per item and at least one item, got {values.shape} and {len(groups)}")
    codes, n_groups = _group_codes(groups)
    sums = np.column_stack([np.bincount(codes, column, n_groups) for column in matrix.T])
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)
    boot = np.concatenate([(c @ sums) / (c @ sizes)[:, None] for c in resample_count_chunks(n_groups, n_boot, seed)])
    return matrix.mean(axis=0), boot, n_groups


def _grouped_mean(values: Array, groups: Sequence[Hashable], n_boot: int, seed: int) -> tuple[float, Array, int]:
    """Mean over items and its group-bootstrap replicates (ratio of drawn sums to drawn counts), and G."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"need one value per item, got shape {values.shape}")
    estimate, boot, n_groups = grouped_means(values, groups, n_boot, seed)
    return float(estimate[0]), boot[:, 0], n_groups


def accuracy_ci(
    correct: Sequence[float], groups: Sequence[Hashable], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> Interval:
    """Accuracy (mean of per-item ``correct`` in {0, 1}, or 0.5 for a tie) with a group-bootstrap interval.

    ``groups``: the reference id of each item. Each resample draws G groups with replacement and takes
    the mean over all their items, so the estimate equals matches / items, as the official CLIC scorer.
    """
    estimate, boot, n_groups = _grouped_mean(correct, groups, n_boot, seed)
    return _interval(estimate, boot, level, n_groups, len(groups))


def paired_difference(
    correct_a: Sequence[float],
    correct_b: Sequence[float],
    groups: Sequence[Hashable],
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Accuracy of A minus accuracy of B on the same items: ``{"mean", "ci95", "n_groups", "n_items"}``.

    Both are resampled with the same groups (the difference is taken per item first), so the interval
    reflects only where the two disagree; ``ci95`` is the 95% percentile interval as ``[low, high]``.
    """
    diff = np.asarray(correct_a, dtype=np.float64) - np.asarray(correct_b, dtype=np.float64)
    estimate, boot, n_groups = _grouped_mean(diff, groups, n_boot, seed)
    return difference_summary(estimate, boot, n_groups, len(groups))


def difference_summary(estimate: float, boot: Array, n_groups: int, n_items: int) -> dict:
    """``{"mean", "ci95", "n_groups", "n_items"}`` of a difference and its paired replicates (as
    :func:`paired_difference` returns; ``ci95`` the 95% percentile interval)."""
    interval = _interval(estimate, np.asarray(boot, dtype=np.float64), 0.95, n_groups, n_items)
    return {"mean": float(estimate), "ci95": [interval.low, interval.high], "n_groups": n_groups, "n_items": n_items}


CORRELATIONS = ("srcc", "plcc", "krcc")


def correlation(x: Sequence[float], y: Sequence[float], kind: str = "srcc") -> float:
    """SRCC (Spearman), PLCC (Pearson, no logistic fit) or KRCC (Kendall tau-b) from scipy.stats."""
    from scipy import stats

    functions = {"srcc": stats.spearmanr, "plcc": stats.pearsonr, "krcc": stats.kendalltau}
    if kind not in functions:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # undefined for constant input (scipy would warn)
    return float(functions[kind](x, y).statistic)


def correlation_ci(
    x: Sequence[float],
    y: Sequence[float],
    groups: Sequence[Hashable],
    kind: str = "srcc",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """:func:`correlation` of items (x_i, y_i) with a group-bootstrap interval (``groups``: reference ids).

    Raw orientation: negate a distance first if positive correlations are wanted against MOS.
    Resamples with a constant x or y give NaN and are counted in ``n_failed``. The same resamples and values
    as :func:`bootstrap_ci` with :func:`correlation`, computed without a loop (:mod:`.resampled_correlations`).
    """
    from .resampled_correlations import correlation_replicates  # vectorised: the resamples of bootstrap_ci

    if kind not in CORRELATIONS:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    if len(x) != len(groups):
        raise ValueError(f"need one group id per item, got {len(x)} items and {len(groups)} ids")
    estimate, boot, n_groups = correlation_replicates(x, y, groups, kind, n_boot, seed)
    return _interval(estimate, boot, level, n_groups, len(groups))


# --------------------------------------------------------------------------------------------- calibration


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


# --------------------------------------------------------------------------------------------- CLIC ceilings


def _oracle_rows(oracle_rows) -> list[tuple[str, str, str, int]]:
    """``(O, A, B, T)`` rows (T as 0/1) from 4-tuples or ``(Triplet, T)`` pairs (``ClicOracle.rows``)."""
    out = []
    for row in oracle_rows:
        if len(row) == 2:
            triplet, t = row
            o, a, b = triplet.names() if hasattr(triplet, "names") else triplet
        else:
            o, a, b, t = row
        if int(t) not in (0, 1):
            raise ValueError(f"T must be 0 or 1, got {t!r} in row {row!r}")
        out.append((str(o), str(a), str(b), int(t)))
    return out


def official_dict(oracle_rows) -> dict[Key, int]:
    """The official scorer's dict: ``(O, A, B) -> T`` where the last row of a repeated key wins."""
    return {(o, a, b): t for o, a, b, t in _oracle_rows(oracle_rows)}


def clic_noise_ceiling(oracle_rows) -> dict:
    """The best official-scorer accuracy of any deterministic predictor that answers both orientations of a
    triplet consistently (choosing one image of {A, B} per reference, so ``T(O,A,B) = 1 - T(O,B,A)``).

    Per unordered triplet {O, {A, B}}: when only one orientation is an oracle key, its last vote can always
    be matched. When both ``O,A,B`` and ``O,B,A`` are keys, their last votes either name the same image
    (``T1 != T2``: both matched) or **conflict** (``T1 == T2``: they name different images, and a
    consistent predictor matches exactly one of the two). So ``ceiling = (keys - conflicts) / keys``.

    Also returned: ``ceiling_with_ties`` for a predictor allowed to tie: the devkit submits a tie as
    ``T = 0`` in both orientations, which matches both keys of a conflict whose last votes are both 0 (and
    none of one whose votes are both 1); ``votes_ceiling``: the best fraction of individual rows
    (``accuracy_votes``) a consistent predictor can match, sum over triplets of max(votes for A, votes
    for B) / rows. Counts: ``n_keys``, ``n_triplets``, ``n_both_orientations``, ``n_conflicts``, ``n_rows``.
    """
    rows = _oracle_rows(oracle_rows)
    if not rows:
        raise ValueError("the oracle has no rows")
    official = official_dict(rows)
    votes: dict[tuple[str, frozenset], dict[str, int]] = {}
    for o, a, b, t in rows:
        closer = a if t == 0 else b
        tally = votes.setdefault((o, frozenset((a, b))), {})
        tally[closer] = tally.get(closer, 0) + 1
    conflicts = conflicts_at_0 = both = 0
    seen: set[Key] = set()
    for (o, a, b), t in official.items():
        counted = (o, b, a) in seen  # the pair was counted at its other orientation
        seen.add((o, a, b))
        if a == b or (o, b, a) not in official or counted:
            continue
        both += 1
        if official[(o, b, a)] == t:
            conflicts += 1
            conflicts_at_0 += t == 0
    n_keys = len(official)
    return {
        "ceiling": (n_keys - conflicts) / n_keys,
        "ceiling_with_ties": (n_keys - conflicts + conflicts_at_0) / n_keys,
        "votes_ceiling": sum(max(tally.values()) for tally in votes.values()) / len(rows),
        "n_keys": n_keys,
        "n_triplets": len(votes),
        "n_both_orientations": both,
        "n_conflicts": conflicts,
        "n_rows": len(rows),
    }


def clic_correct(oracle_rows, submission: Mapping[Key, int]) -> tuple[Array, list[str]]:
    """Per official key (oracle order): 1.0 where ``submission[(O, A, B)]`` equals the key's last vote, else 0.0;
    and each key's reference O (the group for :func:`accuracy_ci`). Their mean is the official accuracy."""
    official = official_dict(oracle_rows)
    missing = [k for k in official if k not in submission]
    if missing:
        raise KeyError(f"{len(missing)} oracle keys are not in the submission (first: {','.join(missing[0])})")
    correct = np.array([float(int(submission[k]) == t) for k, t in official.items()])
    return correct, [k[0] for k in official]


def judge_ceiling(oracle_rows, distance: Mapping[tuple[str, str], float] | Callable[[str, str], float]) -> dict:
    """Official-scorer accuracy of a distance-based predictor such as the hidden judge.

    ``distance``: ``(O, X) -> float`` (lower = closer), a mapping or a function. For each oracle key the
    predictor submits ``T = 1`` when d(O, A) > d(O, B), else ``T = 0`` (ties to 0, as the devkit).
    Returns ``{"accuracy", "n_keys", "ties", "accuracy_votes"}`` (``accuracy_votes``: fraction of rows matched).
    """
    rows = _oracle_rows(oracle_rows)
    dist = distance if callable(distance) else (lambda o, x: distance[(o, x)])
    keys = {(o, a, b) for o, a, b, _ in rows}
    d = {k: (dist(k[0], k[1]), dist(k[0], k[2])) for k in keys}
    submission = {k: int(da > db) for k, (da, db) in d.items()}
    correct, _ = clic_correct(rows, submission)
    return {
        "accuracy": float(correct.mean()),
        "n_keys": len(correct),
        "ties": int(sum(da == db for da, db in d.values())),
        "accuracy_votes": float(np.mean([submission[(o, a, b)] == t for o, a, b, t in rows])),
    }
