"""Group-bootstrap replicates of SRCC, PLCC and KRCC without a Python loop over the resamples.

A resample that draws group g ``c_g`` times holds every item of g ``c_g`` times, so it is the item set with
integer weights ``w_i = c_{group(i)}``, and each correlation of the concatenated resample (what
:func:`prfnet.stats.bootstrap.bootstrap_ci` computes with scipy, one resample at a time) is a weighted
statistic of the original items:

- PLCC (Pearson): weighted moments, i.e. the drawn groups' sums of 1, x, y, x², y², xy;
- SRCC (Spearman, average ranks for ties): an item's average rank among the weighted items is the weight of
  the smaller values plus (weight of its tie block + 1) / 2; SRCC is the weighted Pearson correlation of
  those ranks;
- KRCC (Kendall tau-b): with ``A[g, h]`` the sum over items i of g and j of h of sign(x_i - x_j) *
  sign(y_i - y_j), and ``Tx[g, h]`` the number of pairs (i, j), i = j included, with x_i = x_j,
  concordant minus discordant pairs = c'Ac / 2, pairs tied in x = (c'Tx c - N) / 2, and
  tau-b = (c'Ac / 2) / sqrt((N(N-1)/2 - ties x) (N(N-1)/2 - ties y)). Building A costs O(n²) once; beyond
  :data:`KENDALL_MAX_GROUPS` groups the G x G forms cost more than scipy per resample, which is used then.

A resample whose x or y is constant (or that holds fewer than 2 items) gives NaN, as :func:`correlation`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .bootstrap import Interval, group_codes, percentile_interval, resample_count_chunks
from .correlation import CORRELATIONS, correlation

Array = np.ndarray

KENDALL_MAX_GROUPS = 1000
_ITEM_CELLS = 1 << 20  # (resamples x items) cells handled at a time for SRCC, (items x items) for KRCC


def correlation_replicates(
    x: Sequence[float], y: Sequence[float], groups: Sequence[Hashable], kind: str, n_boot: int = 2000, seed: int = 0
) -> tuple[float, Array, int]:
    """``(correlation(x, y, kind), replicates (n_boot,), n_groups)`` over the group resamples of
    :func:`prfnet.stats.bootstrap.resample_count_chunks` (the resamples of every other interval with the same
    seed and groups)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) != len(groups) or len(x) == 0:
        raise ValueError(f"need x, y and one group id per item, got {x.shape}, {y.shape} and {len(groups)} ids")
    estimate = correlation(x, y, kind)
    codes, n_groups = group_codes(groups)
    constant = _constant_resample_test(x, y, codes, n_groups)
    if kind == "krcc" and n_groups > KENDALL_MAX_GROUPS:
        return estimate, _loop_replicates(x, y, codes, n_groups, kind, n_boot, seed), n_groups
    prepare = {"plcc": _pearson_prepare, "srcc": _spearman_prepare, "krcc": _kendall_prepare}[kind]
    state = prepare(x, y, codes, n_groups)
    parts = []
    for counts in resample_count_chunks(n_groups, n_boot, seed):
        values = state(counts.astype(np.float64))
        values[constant(counts)] = np.nan
        parts.append(values)
    return estimate, np.concatenate(parts), n_groups


def _constant_resample_test(x: Array, y: Array, codes: Array, n_groups: int):
    """counts -> bool per resample: True where the drawn items hold fewer than 2 items or a constant x or y."""
    sizes = np.bincount(codes, minlength=n_groups)
    bounds = []
    for v in (x, y):
        low, high = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
        np.minimum.at(low, codes, v)
        np.maximum.at(high, codes, v)
        bounds.append((low, high))

    def test(counts: Array) -> Array:
        drawn = counts > 0
        out = counts @ sizes < 2
        for low, high in bounds:
            out |= np.where(drawn, high, -np.inf).max(axis=1) <= np.where(drawn, low, np.inf).min(axis=1)
        return out

    return test


def _weighted_pearson(w: Array, a: Array, b: Array) -> Array:
    """Row-wise Pearson correlation of a and b (each (m, n)) with weights w (m, n)."""
    total = w.sum(axis=1, keepdims=True)
    da = a - (w * a).sum(axis=1, keepdims=True) / total
    db = b - (w * b).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * da * db).sum(axis=1) / np.sqrt((w * da * da).sum(axis=1) * (w * db * db).sum(axis=1))


def _pearson_prepare(x: Array, y: Array, codes: Array, n_groups: int):
    xs, ys = (x - x.mean()) / (x.std() or 1.0), (y - y.mean()) / (y.std() or 1.0)  # standardised: no cancellation
    moments = np.zeros((n_groups, 6))
    np.add.at(moments, codes, np.column_stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys]))

    def state(counts: Array) -> Array:
        n, sx, sy, sxx, syy, sxy = (counts @ moments).T
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sxy - sx * sy / n) / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))

    return state


def _rank_weights(v: Array, codes: Array, n_groups: int) -> Array:
    """(G, n): per group g and item i, the items of g below v_i plus half of those equal to v_i (i included);
    a resample's average rank of item i (1-based) is ``counts @ this + 1/2``."""
    out = np.empty((n_groups, len(v)))
    for g in range(n_groups):
        members = np.sort(v[codes == g])
        below = np.searchsorted(members, v, side="left")
        out[g] = (below + np.searchsorted(members, v, side="right")) / 2.0
    return out


def _spearman_prepare(x: Array, y: Array, codes: Array, n_groups: int):
    if n_groups * len(x) > 4 * _ITEM_CELLS:  # (G, n) rank weights too large (many groups): rank per resample
        return _spearman_sorting(x, y, codes)
    lx, ly = _rank_weights(x, codes, n_groups), _rank_weights(y, codes, n_groups)
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)

    def block(c: Array) -> Array:
        half = (c @ sizes)[:, None] / 2.0  # weighted mean of the average ranks (N + 1) / 2, minus the 1/2
        w, dx, dy = c[:, codes], c @ lx - half, c @ ly - half
        wx = w * dx
        dot = np.einsum
        with np.errstate(invalid="ignore", divide="ignore"):
            return dot("ij,ij->i", wx, dy) / np.sqrt(dot("ij,ij->i", wx, dx) * dot("ij,ij->i", w * dy, dy))

    def state(counts: Array) -> Array:
        rows = max(1, _ITEM_CELLS // len(x))
        return np.concatenate([block(counts[i : i + rows]) for i in range(0, len(counts), rows)])

    return state


def _tie_blocks(v: Array) -> tuple[Array, Array, Array]:
    """(sort order, start of each block of equal values in sorted order, block index of each item)."""
    order = np.argsort(v, kind="stable")
    new = np.r_[True, np.diff(v[order]) != 0]
    block_of_item = np.empty(len(v), dtype=np.int64)
    block_of_item[order] = np.cumsum(new) - 1
    return order, np.flatnonzero(new), block_of_item


def _spearman_sorting(x: Array, y: Array, codes: Array):
    blocks = [_tie_blocks(x), _tie_blocks(y)]

    def ranks(w: Array, order: Array, starts: Array, block_of_item: Array) -> Array:
        weight = np.add.reduceat(w[:, order], starts, axis=1)  # weight of each tie block
        average = np.cumsum(weight, axis=1) - weight + (weight + 1.0) / 2.0
        return average[:, block_of_item]

    def state(counts: Array) -> Array:
        rows = max(1, _ITEM_CELLS // len(x))
        out = []
        for start in range(0, len(counts), rows):
            w = counts[start : start + rows][:, codes]
            out.append(_weighted_pearson(w, ranks(w, *blocks[0]), ranks(w, *blocks[1])))
        return np.concatenate(out)

    return state


def _kendall_prepare(x: Array, y: Array, codes: Array, n_groups: int):
    order = np.argsort(codes, kind="stable")  # items sorted by group: group sums are reduceat over runs
    # dense ranks as float32: exact integers (< 2**24 values), and the sign of a product of two rank differences
    # is the product of the signs of the value differences
    xs, ys = (np.unique(v, return_inverse=True)[1].astype(np.float32)[order] for v in (x, y))
    cs = codes[order]
    starts = np.flatnonzero(np.r_[True, np.diff(cs) != 0])
    concordance = np.zeros((n_groups, n_groups))
    rows = max(1, _ITEM_CELLS // len(x))
    for i in range(0, len(xs), rows):
        sign = np.sign((xs[i : i + rows, None] - xs[None, :]) * (ys[i : i + rows, None] - ys[None, :]))
        np.add.at(concordance, cs[i : i + rows], np.add.reduceat(sign, starts, axis=1))
    ties = []
    for v in (x, y):
        _, _, block = _tie_blocks(v)
        per_block = np.zeros((block.max() + 1, n_groups))
        np.add.at(per_block, (block, codes), 1.0)
        ties.append(per_block.T @ per_block)  # pairs (i, j), i = j included, with equal values, per group pair

    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)

    def quadratic(counts: Array, form: Array) -> Array:
        return ((counts @ form) * counts).sum(axis=1)

    def state(counts: Array) -> Array:
        n = counts @ sizes
        pairs = n * (n - 1) / 2
        s = quadratic(counts, concordance) / 2
        tx, ty = ((quadratic(counts, t) - n) / 2 for t in ties)
        with np.errstate(invalid="ignore", divide="ignore"):
            return s / np.sqrt((pairs - tx) * (pairs - ty))

    return state


def _loop_replicates(x, y, codes, n_groups, kind, n_boot, seed) -> Array:
    """One scipy call per resample (KRCC with many groups)."""
    members = [np.flatnonzero(codes == g) for g in range(n_groups)]
    out = []
    for counts in resample_count_chunks(n_groups, n_boot, seed):
        for row in counts:
            index = np.concatenate([members[g] for g in np.repeat(np.arange(n_groups), row)])
            out.append(correlation(x[index], y[index], kind))
    return np.array(out)


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
    as :func:`bootstrap_ci` with :func:`correlation`, computed without a loop (above).
    """
    if kind not in CORRELATIONS:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    if len(x) != len(groups):
        raise ValueError(f"need one group id per item, got {len(x)} items and {len(groups)} ids")
    estimate, boot, n_groups = correlation_replicates(x, y, groups, kind, n_boot, seed)
    return percentile_interval(estimate, boot, level, n_groups, len(groups))
