"""Confidence intervals, paired differences to PRFNet, PRFNet's calibration and the CLIC noise ceiling.

Every figure of ``prfnet eval clic|bapps|mos`` gets a 95 % percentile interval from a bootstrap that
resamples **references** (CLIC: the reference O of each key, vote or triplet; MOS: the reference image with
all its distorted images; BAPPS: the triplet, since each has its own reference patch), with the settings
:data:`N_BOOT`, :data:`SEED`, :data:`LEVEL` (:mod:`prfnet.stats`). Within one figure every metric
is computed on the same resamples, so the paired difference PRFNet minus a baseline is taken resample by
resample. ``docs/evaluation.md`` ("Confidence intervals") lists the JSON keys.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from .bootstrap import Interval, difference_summary, grouped_means, percentile_interval
from .calibration import brier_score, calibration_table, expected_calibration_error
from .ceilings import clic_correct, clic_noise_ceiling
from .correlation import LogisticFit
from .resampled_correlations import correlation_replicates

N_BOOT = 2000
SEED = 0
LEVEL = 0.95
PRFNET = "prfnet"
CALIBRATION_BINS = 10
#: What the reports and ``docs/evaluation.md`` say about the intervals.
METHOD = (
    f"Intervals: {LEVEL:.0%} percentile bootstrap over references ({N_BOOT} resamples, seed {SEED}); "
    "every metric of a figure on the same resamples, so 'prfnet - metric' is a paired difference."
)


def ci95(interval: Interval) -> list[float] | None:
    """``[low, high]`` of an interval, ``None`` when undefined (no finite resample)."""
    low, high = interval.low, interval.high
    return [low, high] if np.isfinite(low) and np.isfinite(high) else None


def mean_intervals(
    columns: Mapping[str, Sequence[float]], groups: Sequence[Hashable]
) -> tuple[dict[str, Interval], dict[str, tuple[float, np.ndarray]], int]:
    """Group-bootstrap intervals of the mean of each column (same items, same resamples for all).

    Returns (intervals by name, (estimate, replicates) by name for paired differences, number of groups).
    """
    names = list(columns)
    estimates, boot, n_groups = grouped_means(np.column_stack([columns[n] for n in names]), groups, N_BOOT, SEED)
    intervals = {
        n: percentile_interval(estimates[i], boot[:, i], LEVEL, n_groups, len(groups)) for i, n in enumerate(names)
    }
    return intervals, {n: (float(estimates[i]), boot[:, i]) for i, n in enumerate(names)}, n_groups


def paired_differences(replicates: Mapping[str, tuple[float, np.ndarray]], n_groups: int, n_items: int) -> dict:
    """PRFNet minus each other metric, on the same resamples: ``{metric: {"mean", "ci95", "n_groups", "n_items"}}``
    (empty when PRFNet is not among them)."""
    if PRFNET not in replicates:
        return {}
    est_p, boot_p = replicates[PRFNET]
    return {
        name: difference_summary(est_p - est, boot_p - boot, n_groups, n_items)
        for name, (est, boot) in replicates.items()
        if name != PRFNET
    }


# --------------------------------------------------------------------------------------------------- CLIC

CLIC_NONE = ("accuracy_ci95", "n_references", "accuracy_majority_ci95", "accuracy_votes_ci95", "noise_ceiling")


def clic_uncertainty(
    results: dict,
    oracle,
    submissions: Mapping[str, Mapping[tuple, int]],
    labeled_decisions: Mapping[str, np.ndarray],
    key_kinds: Sequence[str] | None,
    prfnet_prob: np.ndarray | None,
) -> None:
    """Add the intervals, paired differences, calibration and ceiling to the available entries of ``results``.

    ``oracle``: the :class:`prfnet.data.ClicOracle` or ``None``; ``submissions``: per metric ``(O, A, B) -> T``;
    ``labeled_decisions``: per metric its T on ``oracle.triplets``; ``key_kinds``: the kind of each oracle key
    (``oracle.official`` order) or ``None``; ``prfnet_prob``: PRFNet's P(A closer) on ``oracle.triplets``.
    """
    names = list(submissions)
    entries = {n: results[n] for n in names}
    has_prfnet = PRFNET in names
    for name, entry in entries.items():
        entry.update(dict.fromkeys(CLIC_NONE), accuracy_by_kind_ci95=None)
        if has_prfnet and name != PRFNET:
            entry["paired_difference"] = None
    if has_prfnet:
        entries[PRFNET].update(brier=None, brier_ci95=None, ece=None, calibration=None)
    if oracle is None or not names:
        return
    official_rows = [(*key, t) for key, t in oracle.official.items()]
    correct = {n: clic_correct(official_rows, submissions[n]) for n in names}
    refs = correct[names[0]][1]
    intervals, replicates, n_groups = mean_intervals({n: c for n, (c, _) in correct.items()}, refs)
    ceiling = clic_noise_ceiling(oracle.rows)
    for name, diff in paired_differences(replicates, n_groups, len(refs)).items():
        entries[name]["paired_difference"] = diff
    for name, entry in entries.items():
        entry.update(accuracy_ci95=ci95(intervals[name]), n_references=n_groups, noise_ceiling=dict(ceiling))

    labels = np.array([t.label for t in oracle.triplets])
    decided = labels != 0.5
    if decided.any():
        agree = {n: ((labeled_decisions[n][decided] == 0) == (labels[decided] == 1.0)).astype(float) for n in names}
        majority, _, _ = mean_intervals(agree, [t.ref for t, d in zip(oracle.triplets, decided, strict=True) if d])
        for name, entry in entries.items():
            entry["accuracy_majority_ci95"] = ci95(majority[name])

    row_keys, row_labels = [t.names() for t, _ in oracle.rows], np.array([label for _, label in oracle.rows])
    votes = {n: np.array([submissions[n][k] for k in row_keys]) == row_labels for n in names}
    per_vote, _, _ = mean_intervals(votes, [t.ref for t, _ in oracle.rows])
    for name, entry in entries.items():
        entry["accuracy_votes_ci95"] = ci95(per_vote[name])

    if key_kinds is not None:
        kinds = np.asarray(key_kinds)
        by_kind = {}
        for kind in sorted(set(key_kinds)):
            inside = kinds == kind
            by_kind[kind], _, _ = mean_intervals(
                {n: c[inside] for n, (c, _) in correct.items()}, [r for r, i in zip(refs, inside, strict=True) if i]
            )
        for name, entry in entries.items():
            entry["accuracy_by_kind_ci95"] = {kind: ci95(cis[name]) for kind, cis in by_kind.items()}

    if has_prfnet and prfnet_prob is not None:
        entries[PRFNET].update(calibration_fields(prfnet_prob, [t.p_a for t in oracle.triplets], oracle.triplets))


def calibration_fields(prob: Sequence[float], frac: Sequence[float], triplets: Sequence) -> dict:
    """``brier`` (with ``brier_ci95``, resampling references), ``ece`` and the ``calibration`` table of P(A closer)
    against the vote fraction for A of each unordered triplet."""
    prob, frac = np.asarray(prob, dtype=np.float64), np.asarray(frac, dtype=np.float64)
    squared, _, _ = mean_intervals({"brier": (prob - frac) ** 2}, [t.ref for t in triplets])
    return {
        "brier": brier_score(prob, frac),
        "brier_ci95": ci95(squared["brier"]),
        "ece": expected_calibration_error(prob, frac, CALIBRATION_BINS),
        "calibration": calibration_table(prob, frac, CALIBRATION_BINS),
    }


def ceiling_of(results: Mapping[str, dict]) -> dict | None:
    """The CLIC noise ceiling of an evaluation's votes (the same in every available entry), ``None`` without one;
    what ``prfnet demo`` can lift to a top-level key."""
    return next((r["noise_ceiling"] for r in results.values() if r.get("noise_ceiling")), None)


def ceiling_note(results: Mapping[str, dict]) -> str | None:
    """One line on the noise ceiling for the tables, ``None`` without an oracle."""
    c = ceiling_of(results)
    if c is None:
        return None
    return (
        f"Noise ceiling of the votes: accuracy {c['ceiling']:.3f} (the best any consistent predictor can score "
        f"with the official scorer: {c['n_conflicts']} of {c['n_keys']} keys are lost because the last vote of "
        f"their swapped twin contradicts theirs); per vote {c['votes_ceiling']:.3f} (each triplet's majority "
        f"answer, {c['n_rows']} votes)."
    )


# --------------------------------------------------------------------------------------------------- BAPPS


def bapps_uncertainty(results: dict, per_triplet: Mapping[str, Mapping[str, np.ndarray]], splits: Mapping) -> None:
    """Intervals of each subset's score and of each split's ``score`` and ``mean_of_subsets`` (resampling
    triplets: each has its own reference patch), and the paired difference to PRFNet of each split's ``score``.

    ``per_triplet``: per metric, per subset, the 2AFC score of each triplet; ``splits``: split -> subset names.
    """
    names = list(per_triplet)
    if not names:
        return
    subsets = list(per_triplet[names[0]])
    entries = {n: results[n] for n in names}
    for name, entry in entries.items():
        entry.update(subsets_ci95={}, splits_ci95={})
        if PRFNET in names and name != PRFNET:
            entry["splits_paired_difference"] = {}
    for subset in subsets:
        n = len(per_triplet[names[0]][subset])
        cis, _, _ = mean_intervals({m: per_triplet[m][subset] for m in names}, range(n))
        for name, entry in entries.items():
            entry["subsets_ci95"][subset] = ci95(cis[name])
    for split, members in splits.items():
        members = list(members)
        sizes = [len(per_triplet[names[0]][s]) for s in members]
        which = np.repeat(np.arange(len(members)), sizes)
        columns = {f"in:{i}": (which == i).astype(float) for i in range(len(members))}
        for m in names:
            values = np.concatenate([per_triplet[m][s] for s in members])
            columns[m] = values
            columns.update({f"{m}:{i}": values * (which == i) for i in range(len(members))})
        cis, replicates, n_groups = mean_intervals(columns, range(len(which)))
        differences = paired_differences({m: replicates[m] for m in names}, n_groups, len(which))
        for name, entry in entries.items():
            # a subset's mean in a resample: its drawn triplets' sum over their number (NaN if none was drawn)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = np.mean(
                    [replicates[f"{name}:{i}"][1] / replicates[f"in:{i}"][1] for i in range(len(members))], axis=0
                )
            estimate = float(np.mean([per_triplet[name][s].mean() for s in members]))
            of_subsets = percentile_interval(estimate, boot, LEVEL, n_groups, len(which))
            entry["splits_ci95"][split] = {"score": ci95(cis[name]), "mean_of_subsets": ci95(of_subsets)}
            if name in differences:
                entry["splits_paired_difference"][split] = differences[name]
    if len(splits) == 1:
        (split,) = splits
        for entry in entries.values():
            entry.update(
                score_ci95=entry["splits_ci95"][split]["score"],
                mean_of_subsets_ci95=entry["splits_ci95"][split]["mean_of_subsets"],
            )
            if "splits_paired_difference" in entry:
                entry["paired_difference"] = entry["splits_paired_difference"][split]


# --------------------------------------------------------------------------------------------------- MOS


def mos_uncertainty(results: dict, oriented: Mapping[str, np.ndarray], subjective: np.ndarray, refs: Sequence) -> None:
    """Intervals of SRCC, KRCC and PLCC (resampling reference images with all their distorted images), the
    number of references, and the paired difference of SRCC to PRFNet on the items both scored.

    ``oriented``: per metric its scores oriented like ``subjective`` (as :func:`prfnet.evaluation.correlations`
    correlates them). PLCC's interval keeps the logistic fitted on all items fixed in every resample.
    """
    y, refs = np.asarray(subjective, dtype=np.float64), np.asarray(refs, dtype=object)
    cache: dict[tuple[str, bytes], tuple[float, np.ndarray, int]] = {}

    def srcc(name: str, keep: np.ndarray) -> tuple[float, np.ndarray, int]:
        key = (name, np.packbits(keep).tobytes())
        if key not in cache:
            cache[key] = correlation_replicates(oriented[name][keep], y[keep], list(refs[keep]), "srcc", N_BOOT, SEED)
        return cache[key]

    finite = {n: np.isfinite(x) & np.isfinite(y) for n, x in oriented.items()}
    for name, x in oriented.items():
        entry, keep = results[name], finite[name]
        entry.update(srcc_ci95=None, krcc_ci95=None, plcc_ci95=None, n_references=len(set(refs[keep])))
        if keep.sum() < 2:
            continue
        groups, n = list(refs[keep]), int(keep.sum())
        for figure in ("srcc", "krcc", "plcc"):
            value = entry.get(figure)
            if value is None or not np.isfinite(value):
                continue
            if figure == "srcc":
                estimate, boot, n_groups = srcc(name, keep)
            else:
                xs = x[keep]
                if figure == "plcc" and entry.get("fit") and entry["fit"]["converged"]:
                    fit = entry["fit"]
                    xs = LogisticFit(tuple(fit["params"]), fit["mean"], fit["std"], True)(xs)
                estimate, boot, n_groups = correlation_replicates(
                    xs, y[keep], groups, "plcc" if figure == "plcc" else "krcc", N_BOOT, SEED
                )
            entry[f"{figure}_ci95"] = ci95(percentile_interval(estimate, boot, LEVEL, n_groups, n))
    if PRFNET not in oriented:
        return
    for name in oriented:
        if name == PRFNET:
            continue
        keep = finite[name] & finite[PRFNET]
        if keep.sum() < 2:
            results[name]["paired_difference"] = None
            continue
        (est_p, boot_p, n_groups), (est_b, boot_b, _) = srcc(PRFNET, keep), srcc(name, keep)
        with np.errstate(invalid="ignore"):
            results[name]["paired_difference"] = difference_summary(
                est_p - est_b, boot_p - boot_b, n_groups, int(keep.sum())
            )


# --------------------------------------------------------------------------------------------------- tables


def with_ci(value, ci: Sequence[float] | None) -> float | str:
    """A table cell: ``"0.781 [0.752, 0.809]"``, the bare value without an interval, ``"n/a"`` if undefined."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else float(value)


def difference_cell(entry: dict, key: str = "paired_difference") -> str:
    """``"+0.031 [+0.010, +0.052]"`` (PRFNet minus this metric), ``""`` where there is none."""
    diff = entry.get(key)
    if not diff or diff.get("mean") is None or not np.isfinite(diff["mean"]):
        return ""
    low, high = diff["ci95"] or (np.nan, np.nan)  # ci95 is None when no resample was finite
    interval = f" [{low:+.3f}, {high:+.3f}]" if np.isfinite(low) and np.isfinite(high) else ""
    return f"{diff['mean']:+.3f}{interval}"
