"""The scoring engine: every unique (reference, distorted) pair scored once per metric, resumably.

Used by every protocol (``prfnet eval``) and by ``prfnet rd``. Files are decoded in ``DataLoader`` workers
(:mod:`.pair_loader`) beside the model, chunks hold one reference and up to ``batch_size`` distorted images of it
(so PRFNet encodes each reference once: N + 1 backbone passes for N distorted images), and with a
:class:`~prfnet.store.ScoreStore` every chunk's scores are committed in one transaction, so a re-run, or a run
killed mid-way, scores only what is not stored yet. With Lightning ``trainer`` settings for several processes the
chunks are split across them (:mod:`.distributed`). Scores keep each metric's own direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch

from ..errors import DataError
from ..images import DEFAULT_MAX_PIXELS
from ..store import ScoreStore
from .distributed import score_pairs_distributed
from .pair_loader import PairChunkDataset, chunk_loader
from .plan import ChunkScorer, PairScores, ScoringPlan, plan_scoring, store_rows


def check_files_exist(paths: Iterable[str], source: str) -> None:
    """Fail fast, before any scoring, with a :class:`DataError` naming the first missing image."""
    missing = [p for p in dict.fromkeys(paths) if not Path(p).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        what = "is a directory, not an image file" if Path(missing[0]).is_dir() else "image not found"
        raise DataError(f"{missing[0]}: {what}{more} (listed in {source})")


def progress_bar(enabled: bool, what: str):
    """A rich progress bar on stderr (``None`` in a null context when disabled)."""
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)


def score_pairs(
    pairs: Iterable[tuple[str | Path, str | Path]],
    metrics: Sequence,
    source: str = "the data set",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    store: ScoreStore | str | Path | None = None,
    workers: int = 0,
    trainer: dict | None = None,
) -> PairScores:
    """Score every unique (reference, distorted) pair with every metric.

    Args:
        pairs: file pairs; repeats are scored once (the key is the pair of path strings).
        metrics: callables ``metric(ref, dist) -> (N,)`` with ``name`` (see :class:`prfnet.baselines.Metric`);
            one with ``score_reference(key, ref, dist)`` (PRFNet) encodes each reference once.
        source: the data file the paths come from, named in error messages.
        batch_size: distorted images per chunk (one reference each); pairs of one reference share its decode.
        progress: rich progress bar on stderr.
        max_pixels: the largest image decoded (:func:`prfnet.load_image`; ``None``: no limit).
        store: a :class:`~prfnet.store.ScoreStore` (or its path): scores already stored for the same file contents
            and metric identity (:func:`metric_identity`) are read, not computed; new ones are committed per chunk.
        workers: ``DataLoader`` worker processes decoding images beside the model (0: in this process).
        trainer: Lightning ``Trainer`` settings (``accelerator``, ``devices``, ``num_nodes``, ``strategy``) to split
            the chunks across processes (:func:`prfnet.scoring.distributed.score_pairs_distributed`); needs a
            ``store``, into which the processes' scores are gathered; only global rank 0 gets every score.

    A metric that rejects the images (:class:`InputError`, e.g. MS-SSIM below 176 pixels, PRFNet below 32) is not
    called again and is listed in ``failed`` with the reason and the first pair it refused.

    Raises :class:`DataError` for a missing/unreadable image, an image above ``max_pixels``, or a distorted image
    whose size differs from its reference's; :class:`~prfnet.errors.ModelOutputError` when PRFNet's scores are
    not finite.
    """
    unique = sorted(dict.fromkeys((str(r), str(d)) for r, d in pairs))
    check_files_exist((p for pair in unique for p in pair), source)
    if trainer:
        if store is None:
            raise DataError("scoring across several processes needs a score store (--store) to gather into")
        path = store.path if isinstance(store, ScoreStore) else Path(store)
        return score_pairs_distributed(unique, metrics, path, source, batch_size, max_pixels, workers, trainer)
    _forget_references(metrics)
    own_store = store is not None and not isinstance(store, ScoreStore)
    if own_store:
        store = ScoreStore(store)
    try:
        if store is not None:
            store.absorb_shards()  # the scores of a killed multi-process run count too
        plan = plan_scoring(unique, metrics, store, batch_size)
        scorer = ChunkScorer(metrics, plan.todo, source, torch.device(device))
        _score_here(plan, scorer, store, source, max_pixels, workers, progress)
        plan.result.failed = scorer.failed
    finally:
        _forget_references(metrics)
        if own_store:
            store.close()
    return plan.result


def _forget_references(metrics) -> None:
    """Drop the reference features a metric (:class:`~prfnet.scoring.metrics.PRFNetMetric`) keeps between
    chunks: a later run must encode its references again (the model or the files may have changed since), and
    the features of the last reference are freed (device memory)."""
    for metric in metrics:
        forget = getattr(metric, "forget_reference", None)
        if forget is not None:
            forget()


def _score_here(plan: ScoringPlan, scorer, store, source, max_pixels, workers, progress) -> None:
    chunks, result = plan.chunks, plan.result
    dataset = PairChunkDataset(chunks, source, max_pixels)
    loader = chunk_loader(dataset, workers, pin_memory=scorer.device.type == "cuda")
    total = sum(len(c.rows) for c in chunks)
    what = f"scoring {total} pairs x {len(scorer.metrics)} metrics"
    with progress_bar(progress and total > 0, what) as bar:
        task = bar.add_task("score", total=total) if bar is not None else None
        for item in loader:
            if item["error"]:
                raise DataError(item["error"])
            chunk = chunks[item["index"]]
            out = scorer(chunk, item["ref"], item["dists"])
            for name, (rows, values) in out.items():
                result.scores[name][rows] = values
                scorer.todo[name][rows] = False
                result.computed[name] += len(rows)
            if store is not None and out:
                store.add(store_rows(out, plan.ids, plan.keys))
            if bar is not None:
                bar.advance(task, len(chunk.rows))
