"""Grouped bootstrap intervals: resample groups (reference ids), keep all their items, percentile interval.

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


def group_codes(groups: Sequence[Hashable]) -> tuple[Array, int]:
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
    codes, n_groups = group_codes(groups)
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
