"""MOS correlation evaluation (KADID-10k, PIPAL, TID2013, generic CSV): SRCC, KRCC and PLCC.

Direction: a metric's scores are first oriented so that larger means the same as larger
subjective scores (a distance is negated against MOS, not against DMOS), hence a good metric has
positive correlations whatever its own direction.

PLCC is computed after the VQEG four-parameter logistic mapping of the oriented scores x to the
subjective scores y, fitted by least squares (``scipy.optimize.curve_fit``)::

    f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2

x is standardised before the fit (zero mean, unit variance), and the initial guess is
b1 = max(y), b2 = min(y), b3 = median(x), b4 = 1, which converges for any monotone relation. SRCC
(Spearman) and KRCC (Kendall's tau-b) use the oriented scores directly (scipy.stats).

Small or degenerate data: correlations need at least :data:`MIN_ITEMS` (3) scored items, and the fit, with
four parameters, at least :data:`MIN_FIT_POINTS` (4); a figure that is undefined (too few points, a constant
metric) is NaN here (``null`` in JSON) and its reason is in ``undefined[figure]``. A data set of fewer than
3 items is refused.
"""

from __future__ import annotations

import csv as csv_module
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import data
from ..errors import ConfigError, DataError
from ..images import DEFAULT_MAX_PIXELS
from ..ioutil import atomic_write
from ..protocol import EVAL_OUTPUTS, ProtocolRun
from ..stats.correlation import MIN_FIT_POINTS, MIN_ITEMS, correlations
from ..stats.intervals import mos_uncertainty
from ..store import DEFAULT_STORE, ScoreStore
from .pages import mos_report

log = logging.getLogger(__name__)

DATASETS = ("kadid", "pipal", "tid2013", "csv")


def load_mos(dataset: str, root: str | Path | None = None, csv: str | Path | None = None, higher_better=True):
    """A :class:`prfnet.data.MosSet` for ``dataset`` in :data:`DATASETS`: the folder ``root`` of a
    public set, or for ``dataset="csv"`` the file ``csv`` (header ``ref,dist,score``, image paths
    relative to the CSV's folder or absolute; ``higher_better`` gives the score direction)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown MOS dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if dataset == "csv":
        if csv is None or root is not None:
            raise ConfigError("--dataset csv takes --csv FILE (ref,dist,score; image paths relative to it), not --root")
        return data.read_mos_csv(csv, higher_better=higher_better)
    if root is None or csv is not None:
        raise ConfigError(f"--dataset {dataset} takes --root DIR (the data set folder), not --csv")
    return {"kadid": data.read_kadid, "pipal": data.read_pipal, "tid2013": data.read_tid2013}[dataset](root)


def _write_scores_csv(path: Path, mos, columns: dict[str, np.ndarray]) -> None:
    with atomic_write(path, newline="", encoding="utf-8") as f:
        writer = csv_module.writer(f)
        writer.writerow(["ref", "dist", "mos", *columns])
        for i, item in enumerate(mos.items):
            writer.writerow([item.ref, item.dist, item.score, *(f"{col[i]:.8g}" for col in columns.values())])


def evaluate_mos(
    dataset,
    root: str | Path | None = None,
    csv: str | Path | None = None,
    metrics: Sequence = ("all",),
    model=None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    batch_size: int = 8,
    higher_better: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    store: ScoreStore | str | Path | None = DEFAULT_STORE,
    workers: int = 0,
) -> dict:
    """Correlation of each metric with subjective scores.

    ``dataset``: ``"kadid"``, ``"pipal"``, ``"tid2013"``, ``"csv"`` (with ``csv``; ``higher_better``
    tells the direction of its scores) or a ready :class:`prfnet.data.MosSet`. Returns ``{metric:
    {"srcc", "plcc", "krcc", "n", "n_excluded", "fit", ...}}``, each correlation with its interval
    ``<figure>_ci95`` (resampling reference images with all their distorted images; ``n_references``) and per
    baseline with PRFNet the ``paired_difference`` of SRCC (PRFNet minus the baseline). With ``out_dir``: ``scores.csv``
    (every item's scores), ``results.json`` and ``report.html``. Fewer than 3 items is a :class:`DataError`
    (every correlation would be meaningless); with 3, SRCC and KRCC are reported and PLCC is ``null`` with its
    reason in ``undefined`` (see :func:`correlations`). ``max_pixels``: see :func:`prfnet.load_image`. ``store``
    (default ``out_dir/scores.sqlite``, ``None``: none, or a :class:`~prfnet.store.ScoreStore` or its path: stored
    scores are read, new ones added; :func:`prfnet.store.resolve_store`) and ``workers`` (image decoding processes):
    see :func:`prfnet.scoring.engine.score_pairs`.
    """
    run = ProtocolRun(out_dir, EVAL_OUTPUTS, store)  # an unwritable out_dir fails now, not after the scoring
    mos = load_mos(dataset, root, csv, higher_better) if isinstance(dataset, str) else dataset
    source = str(csv or root or mos.root)
    if len(mos.items) < MIN_ITEMS:
        raise DataError(
            f"{source}: {len(mos.items)} MOS item{'s' if len(mos.items) != 1 else ''}; correlations need at least "
            f"{MIN_ITEMS} (the fitted PLCC at least {MIN_FIT_POINTS})"
        )
    pairs = [(str(Path(mos.root) / it.ref), str(Path(mos.root) / it.dist)) for it in mos.items]
    selection, scores = run.score(
        pairs, source, metrics, model=model, device=device, batch_size=batch_size, progress=progress,
        max_pixels=max_pixels, workers=workers,
    )  # fmt: skip
    subjective = np.array([it.score for it in mos.items], dtype=float)
    columns: dict[str, np.ndarray] = {}
    oriented: dict[str, np.ndarray] = {}

    def entry(metric) -> dict:
        columns[metric.name] = scores.lookup(metric.name, pairs)
        same = bool(metric.higher_better) == bool(mos.higher_better)
        oriented[metric.name] = np.asarray(columns[metric.name], dtype=float) * (1.0 if same else -1.0)
        return correlations(columns[metric.name], subjective, same)

    def intervals(results: dict) -> None:
        mos_uncertainty(results, oriented, subjective, [it.ref for it in mos.items])

    results = run.entries(selection, entry, intervals)
    if run.outputs is not None:  # staged, then moved into place with manifest.json last (prfnet.outputs)
        report = mos_report(results, source=source, mos=mos, columns=columns, subjective=subjective)
        run.publish(results, report, lambda sink: _write_scores_csv(sink.path("scores.csv"), mos, columns))
    return results
