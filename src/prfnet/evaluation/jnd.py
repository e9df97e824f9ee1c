"""BAPPS JND evaluation (LPIPS paper): how well a metric's distances rank pairs that people could not tell apart.

Each JND pair (p0, p1) has ``same`` = the fraction of judges who saw no difference. The pairs are sorted by the
metric's distance d(p0, p1) (p0 as the reference; a similarity such as PSNR is negated, so that "smaller = more alike"
for every metric), and the score is the **average precision** of that ranking with ``same`` as the (fractional)
positives, as the LPIPS repository's ``score_jnd_dataset`` computes it: precision TP / (TP + FP) and recall TP / P at
each rank, the precision made non-increasing from the right, summed over the recall steps (VOC AP, not its 11-point
form). Higher = better, 1 = every "same" pair ranked before every "different" one. Reported per subset (``cnn``,
``traditional``) with a 95 % interval that resamples pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data import read_bapps_jnd
from ..errors import DataError
from ..images import DEFAULT_MAX_PIXELS
from ..ioutil import write_csv
from ..protocol import EVAL_OUTPUTS, ProtocolRun
from ..report.html import Report
from ..stats.bootstrap import percentile_interval
from ..stats.intervals import LEVEL, N_BOOT, SEED, ci95, with_ci
from ..store import DEFAULT_STORE, ScoreStore


def jnd_average_precision(distance, same) -> np.ndarray | float:
    """Average precision of ranking pairs by ``distance`` (ascending: most alike first) against ``same`` in [0, 1].

    ``distance``, ``same``: (n,) -> a float, or (k, n) -> (k,) (one ranking per row, e.g. bootstrap resamples). The
    order of equal distances is the stable sort's, as in the LPIPS repository.
    """
    distance, same = np.asarray(distance, dtype=np.float64), np.asarray(same, dtype=np.float64)
    single = distance.ndim == 1
    distance, same = np.atleast_2d(distance), np.atleast_2d(same)
    same = np.take_along_axis(same, np.argsort(distance, axis=1, kind="stable"), axis=1)
    tp, fp = np.cumsum(same, axis=1), np.cumsum(1.0 - same, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / (tp + fp))
        recall = np.nan_to_num(tp / tp[:, -1:])
    rows = len(same)
    mrec = np.concatenate([np.zeros((rows, 1)), recall, np.ones((rows, 1))], axis=1)
    mpre = np.concatenate([np.zeros((rows, 1)), precision, np.zeros((rows, 1))], axis=1)
    mpre = np.maximum.accumulate(mpre[:, ::-1], axis=1)[:, ::-1]  # the envelope: non-increasing from the right
    ap = np.sum((mrec[:, 1:] - mrec[:, :-1]) * mpre[:, 1:], axis=1)  # a step of zero width adds nothing
    return float(ap[0]) if single else ap


def _interval(distance: np.ndarray, same: np.ndarray, chunk: int = 64) -> list[float] | None:
    """95 % percentile interval of the AP over :data:`N_BOOT` resamples of the pairs (drawn with replacement, a pair
    drawn twice ranked twice, as the statistic on a resampled list is)."""
    n = len(same)
    rng = np.random.default_rng(SEED)
    boot = np.concatenate([
        jnd_average_precision(distance[idx], same[idx])
        for idx in (rng.integers(0, n, size=(min(chunk, N_BOOT - start), n)) for start in range(0, N_BOOT, chunk))
    ])  # fmt: skip
    return ci95(percentile_interval(jnd_average_precision(distance, same), boot, LEVEL, n, n))


def evaluate_jnd(
    root: str | Path,
    metrics: Sequence = ("all",),
    model=None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    batch_size: int = 64,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    store: ScoreStore | str | Path | None = DEFAULT_STORE,
    workers: int = 0,
) -> dict:
    """JND average precision of each metric per BAPPS JND subset (``root``: ``jnd/val``, ``jnd`` or one subset).

    Returns ``{metric: {"subsets": {name: AP}, "subsets_ci95": {name: [low, high]}, "n_pairs": {name: count},
    "mean_of_subsets": unweighted mean of the subsets' AP}}`` (unavailable metrics: ``available: False`` and
    ``reason``). With ``out_dir``: ``results.json``, ``report.html`` and ``scores.csv`` (per pair: subset, p0, p1,
    same, each metric's raw value); ``store``, ``workers``, ``max_pixels``: as
    :func:`prfnet.evaluation.evaluate_bapps`.
    """
    run = ProtocolRun(out_dir, EVAL_OUTPUTS, store)  # an unwritable out_dir fails now, not after the scoring
    subsets = read_bapps_jnd(root)
    pairs = {name: [(p.p0, p.p1) for p in items] for name, items in subsets.items()}
    if not any(pairs.values()):
        raise DataError(f"{root}: no JND pairs")
    selection, scores = run.score(
        [pair for items in pairs.values() for pair in items], str(root), metrics, model=model, device=device,
        batch_size=batch_size, progress=progress, max_pixels=max_pixels, workers=workers,
    )  # fmt: skip

    columns: dict[str, list[np.ndarray]] = {}

    def entry(metric) -> dict:
        ap, ci = {}, {}
        for name, items in subsets.items():
            raw = np.asarray(scores.lookup(metric.name, pairs[name]), dtype=np.float64)
            columns.setdefault(metric.name, []).append(raw)
            distance = -raw if metric.higher_better else raw  # smaller = more alike, for every metric
            same = np.array([p.same for p in items])
            ap[name], ci[name] = jnd_average_precision(distance, same), _interval(distance, same)
        return {"subsets": ap, "subsets_ci95": ci, "n_pairs": {n: len(items) for n, items in subsets.items()},
                "mean_of_subsets": float(np.mean(list(ap.values())))}  # fmt: skip

    results = run.entries(selection, entry)
    if run.outputs is not None:
        report = jnd_report(results, Path(root), list(subsets))
        run.publish(results, report, lambda sink: _write_scores_csv(sink.path("scores.csv"), subsets, columns))
    return results


def _write_scores_csv(path: Path, subsets: dict, columns: dict[str, list[np.ndarray]]) -> None:
    """One row per pair: ``subset, p0, p1, same`` (the fraction of judges who saw no difference) and each scored
    metric's raw value (its own direction), as ``prfnet view`` and a user's own analysis read them."""
    rows = (
        [name, pair.p0, pair.p1, repr(float(pair.same)), *(f"{col[k][i]:.8g}" for col in columns.values())]
        for k, (name, items) in enumerate(subsets.items())
        for i, pair in enumerate(items)
    )
    write_csv(path, rows, ["subset", "p0", "p1", "same", *columns])


#: what the table and report say about the intervals of the JND figures
JND_METHOD = (
    f"Intervals: {LEVEL:.0%} percentile bootstrap over pairs ({N_BOOT} resamples, seed {SEED}). Pairs ranked by each "
    "metric's distance (similarities negated) against the fraction of judges who saw no difference; VOC average "
    "precision as the LPIPS repository computes it: higher = better."
)


def jnd_rows(results: dict, subsets: Sequence[str]) -> tuple[list[str], list[list]]:
    """Columns and rows (one per metric) of the JND table: its direction, AP [95 %] per subset, their mean, and the
    status ("ok" or "unavailable")."""
    columns = ["metric", "closer when", *(f"{name} AP" for name in subsets), "mean", "status"]
    rows = []
    for name, entry in results.items():
        if not entry.get("available", True):
            rows.append([name, "", *(["-"] * len(subsets)), "-", "unavailable"])
            continue
        way = "higher" if entry.get("higher_better") else "lower"
        cells = [with_ci(entry["subsets"][s], entry["subsets_ci95"][s]) for s in subsets]
        rows.append([name, way, *cells, entry["mean_of_subsets"], "ok"])
    return columns, rows


def jnd_report(results: dict, root: Path, subsets: Sequence[str]) -> Report:
    report = Report("BAPPS JND: average precision of each metric")
    counts = next((e["n_pairs"] for e in results.values() if e.get("available", True)), {})
    report.add_text(f"Data: {root}; pairs: " + ", ".join(f"{s} {counts.get(s, '?')}" for s in subsets))
    columns, rows = jnd_rows(results, subsets)
    report.add_table(columns, rows)
    report.add_text(JND_METHOD, note=True)
    for name, entry in results.items():
        if not entry.get("available", True):
            report.add_text(f"{name}: {entry.get('reason', '')}", note=True)
    return report
