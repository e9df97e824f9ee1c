"""BAPPS 2AFC evaluation (LPIPS paper): the expected agreement of a metric with the human judges.

Per triplet, with ``judge`` the fraction of humans who preferred p1 and d0, d1 the distances of
p0, p1 to the reference::

    score = (d0 < d1) * (1 - judge) + (d1 < d0) * judge + 0.5 * (d0 == d1)

averaged over the triplets of a subset (as in the LPIPS repository's ``score_2afc_dataset``), and
summarised per split (``train``, ``val``): subsets of different splits are never pooled. A
higher-better metric (PSNR, SSIM) decides in its own direction, so "d0 < d1" reads "p0 is judged
closer" for every metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..baselines import prefers_a
from ..data import read_bapps
from ..errors import DataError
from ..images import DEFAULT_MAX_PIXELS
from ..protocol import EVAL_OUTPUTS, ProtocolRun
from ..stats.intervals import bapps_uncertainty
from ..store import DEFAULT_STORE, ScoreStore
from .pages import bapps_report

SUBSET_FOLDERS = ("ref", "p0", "p1", "judge")


def bapps_2afc_score(score_p0, score_p1, judge, higher_better: bool = False) -> np.ndarray:
    """Per-triplet 2AFC score in [0, 1]: the fraction of judges agreeing with the metric (0.5 on a tie).

    ``score_p0``, ``score_p1``: the metric's scores of p0 and p1 against the reference (its own
    direction given by ``higher_better``); ``judge``: fraction of humans who preferred p1, in [0, 1].
    """
    pref_p0 = prefers_a(torch.as_tensor(score_p0), torch.as_tensor(score_p1), higher_better)
    pref_p0 = np.asarray(pref_p0.cpu(), dtype=float)
    judge = np.asarray(judge, dtype=float)
    return pref_p0 * (1.0 - judge) + (1.0 - pref_p0) * judge


def find_subsets(root: str | Path) -> dict[str, Path]:
    """BAPPS subset folders under ``root`` (``root`` itself, ``2afc/val``, or ``2afc``): name -> folder.

    A subset folder holds ``ref/``, ``p0/``, ``p1/`` and ``judge/``; its name is its path relative to
    ``root`` (``"traditional"``, ``"val/cnn"``), or the folder's own name when ``root`` is one. Subsets of
    different splits keep their split in the name (``"train/cnn"``, ``"val/cnn"``): see :func:`find_splits`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: BAPPS folder not found")
    if (root / "ref").is_dir():
        return {root.name: root}
    found = {
        d.relative_to(root).as_posix(): d
        for depth in ("*", "*/*", "*/*/*")
        for d in sorted(root.glob(depth))
        if d.is_dir() and (d / "ref").is_dir()
    }
    if not found:
        raise DataError(f"{root}: no BAPPS 2AFC subset folder (with {', '.join(SUBSET_FOLDERS)}/) found below it")
    return dict(sorted(found.items()))


def split_of(name: str, folder: Path) -> str:
    """The split a subset of :func:`find_subsets` belongs to: its name without the last part (``"train/cnn"``
    -> ``"train"``), or the name of the folder holding it when the name has one part (``2afc/val/cnn`` -> ``"val"``)."""
    return name.rsplit("/", 1)[0] if "/" in name else folder.resolve().parent.name


def find_splits(root: str | Path) -> dict[str, dict[str, Path]]:
    """:func:`find_subsets` grouped by split (:func:`split_of`): ``{"train": {"train/cnn": ...}, "val": {...}}``.

    A ``2afc`` root gives its ``train`` and ``val`` splits; ``2afc/val`` or a subset folder gives one split.
    """
    splits: dict[str, dict[str, Path]] = {}
    for name, folder in find_subsets(root).items():
        splits.setdefault(split_of(name, folder), {})[name] = folder
    return dict(sorted(splits.items()))


def evaluate_bapps(
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
    """2AFC score of each metric per BAPPS subset and per split; splits are never pooled.

    Returns ``{metric: {"subsets": {name: score}, "n_triplets": {name: count}, "splits": {split: {"score":
    mean over the split's triplets, "mean_of_subsets": unweighted mean of its subset scores, "n_triplets":
    count, "subsets": [names]}}, ...}}``. With one split (``root`` = ``2afc/val`` or a subset folder) the
    entry also has that split's ``score`` and ``mean_of_subsets`` at the top level; with several (``root`` =
    ``2afc``: ``train/*`` and ``val/*``) there is no figure over all of them, since train and val triplets
    differ in judges per triplet and in purpose. Intervals (resampling triplets): ``subsets_ci95``
    ``{name: [low, high]}``, ``splits_ci95`` ``{split: {"score": ..., "mean_of_subsets": ...}}`` and with one
    split ``score_ci95``, ``mean_of_subsets_ci95``; per baseline with PRFNet, ``splits_paired_difference``
    ``{split: {"mean", "ci95", ...}}`` (and ``paired_difference`` with one split) on ``score``, PRFNet minus the
    baseline. Unavailable metrics have ``available: False`` and ``reason``. With ``out_dir``: ``results.json``
    and ``report.html``. ``max_pixels``: see :func:`prfnet.load_image`. ``store`` (default ``out_dir/scores.sqlite``,
    ``None``: none, or a :class:`~prfnet.store.ScoreStore` or its path: stored scores are read, new ones added;
    :func:`prfnet.store.resolve_store`) and ``workers`` (image decoding processes): see
    :func:`prfnet.scoring.engine.score_pairs`.
    """
    run = ProtocolRun(out_dir, EVAL_OUTPUTS, store)  # an unwritable out_dir fails now, not after the scoring
    splits = find_splits(root)
    subsets = {name: read_bapps(folder) for names in splits.values() for name, folder in names.items()}
    for name, items in subsets.items():
        if not items:
            raise DataError(f"{root}: BAPPS subset {name!r} has no triplets")

    def pairs_of(items, which: str) -> list[tuple[str, str]]:
        return [(str(Path(t.ref)), str(Path(getattr(t, which)))) for t in items]

    everything = [t for items in subsets.values() for t in items]
    selection, scores = run.score(
        pairs_of(everything, "a") + pairs_of(everything, "b"), str(root), metrics, model=model, device=device,
        batch_size=batch_size, progress=progress, max_pixels=max_pixels, workers=workers,
    )  # fmt: skip
    all_scores: dict[str, dict[str, np.ndarray]] = {}

    def entry(metric) -> dict:
        per_triplet = all_scores[metric.name] = {
            name: bapps_2afc_score(
                scores.lookup(metric.name, pairs_of(items, "a")),
                scores.lookup(metric.name, pairs_of(items, "b")),
                [1.0 - t.p_a for t in items],  # judge = fraction preferring p1 = b
                metric.higher_better,
            )
            for name, items in subsets.items()
        }
        per_split = {
            split: {
                "score": float(np.concatenate([per_triplet[n] for n in names]).mean()),
                "mean_of_subsets": float(np.mean([per_triplet[n].mean() for n in names])),
                "n_triplets": sum(len(subsets[n]) for n in names),
                "subsets": list(names),
            }
            for split, names in splits.items()
        }
        fields = {
            "subsets": {name: float(s.mean()) for name, s in per_triplet.items()},
            "n_triplets": {name: len(items) for name, items in subsets.items()},
            "splits": per_split,
        }
        if len(per_split) == 1:
            (only,) = per_split.values()
            fields.update(score=only["score"], mean_of_subsets=only["mean_of_subsets"])
        return fields

    results = run.entries(selection, entry, lambda results: bapps_uncertainty(results, all_scores, splits))
    if run.outputs is not None:  # staged, then moved into place with manifest.json last (prfnet.outputs)
        run.publish(results, bapps_report(results, root=Path(root), subsets=list(subsets)))
    return results
