"""The scoring engine: every unique (reference, distorted) pair scored once per metric, resumably.

Used by every protocol (``prfnet eval``) and by ``prfnet rd``. Files are decoded in ``DataLoader`` workers
(:mod:`.pair_loader`) beside the model, chunks hold one reference and up to ``batch_size`` distorted images of it
(so PRFNet encodes each reference once: N + 1 backbone passes for N distorted images), and with a
:class:`~prfnet.store.ScoreStore` every chunk's scores are committed in one transaction, so a re-run, or a run
killed mid-way, scores only what is not stored yet. With Lightning ``trainer`` settings for several processes the
chunks are split across them (:mod:`.distributed`). Scores keep each metric's own direction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..baselines import MetricUnavailable
from ..errors import DataError, InputError
from ..images import DEFAULT_MAX_PIXELS
from ..store import ScoreStore
from .pair_loader import PairChunk, PairChunkDataset, chunk_loader, plan_chunks

log = logging.getLogger(__name__)


@dataclass
class PairScores:
    """Scores of unique (reference, distorted) path pairs: ``scores[metric][index[(ref, dist)]]`` (float64).

    ``failed``: metric -> why it could not score these images; ``from_store`` / ``computed``: metric -> how many
    scores were read from the score store / computed in this run; ``partial``: see
    :func:`prfnet.scoring.distributed.score_pairs_distributed`."""

    index: dict[tuple[str, str], int]
    scores: dict[str, np.ndarray]
    failed: dict[str, str] = field(default_factory=dict)
    from_store: dict[str, int] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    partial: bool = False  # a non-zero rank of a multi-process run: only global rank 0 holds every score

    def lookup(self, metric: str, pairs: Iterable[tuple[str | Path, str | Path]]) -> np.ndarray:
        """Scores of ``pairs`` (in that order) for ``metric``, shape (len(pairs),)."""
        rows = [self.index[(str(r), str(d))] for r, d in pairs]
        return self.scores[metric][rows]


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


def metric_identity(metric) -> str:
    """What the score store keys ``metric``'s scores on. PRFNet: :func:`prfnet.api.model_identity` of the model as
    it is now (its checkpoint's SHA-256, else its weights', with its tiling and precision); a baseline: its name
    and a digest of its description and of the versions of prfnet and piq that compute it."""
    model = getattr(metric, "model", None)
    if model is not None:
        from ..api import model_identity

        return model_identity(model)
    import piq

    from .. import __version__

    about = f"{getattr(metric, 'about', '')}|prfnet {__version__}|piq {piq.__version__}"
    return f"{metric.name}/{hashlib.sha256(about.encode()).hexdigest()[:16]}"


class ChunkScorer:
    """Scores chunks with every metric still needed; remembers the metrics that refused the images."""

    def __init__(self, metrics: Sequence, todo: dict[str, np.ndarray], source: str, device: torch.device):
        self.metrics = list(metrics)
        self.todo = todo  # metric -> (n_pairs,) bool: still to score
        self.source = source
        self.device = device
        self.failed: dict[str, str] = {}

    def __call__(self, chunk: PairChunk, ref: torch.Tensor, dists: torch.Tensor) -> dict[str, tuple[list, np.ndarray]]:
        """metric -> (rows, scores) of the chunk's pairs this metric still needed."""
        out = {}
        ref = ref.to(self.device, non_blocking=True)
        dists = dists.to(self.device, non_blocking=True)
        for metric in (m for m in self.metrics if m.name not in self.failed):
            need = [k for k, row in enumerate(chunk.rows) if self.todo[metric.name][row]]
            if not need:
                continue
            batch = dists if len(need) == len(chunk.rows) else dists[need]
            r = ref
            if not getattr(metric, "accepts_uint8", False):  # the Metric protocol: float RGB in [0, 1]
                r, batch = (x.float() / 255.0 if x.dtype == torch.uint8 else x for x in (ref, batch))
            try:
                with torch.inference_mode():
                    if hasattr(metric, "score_reference"):
                        values = metric.score_reference(chunk.ref, r, batch)
                    else:
                        values = metric(r.expand(len(need), -1, -1, -1), batch)
            except (InputError, MetricUnavailable) as exc:
                log.info("metric %s cannot score %s: %s", metric.name, self.source, exc)
                height, width = dists.shape[-2:]
                self.failed[metric.name] = (
                    f"cannot score these images ({exc}); first refused: {chunk.dists[need[0]]} against {chunk.ref}, "
                    f"{width}x{height}"
                )
                continue
            values = torch.as_tensor(values).detach().reshape(-1).to("cpu", torch.float64).numpy()
            if values.shape[0] != len(need):
                raise RuntimeError(f"metric {metric.name} returned {values.shape[0]} scores for {len(need)} pairs")
            out[metric.name] = ([chunk.rows[k] for k in need], values)
        return out


def store_rows(out, ids, keys) -> list[tuple[str, str, str, float]]:
    """Store rows ``(metric_id, ref_digest, dist_digest, score)`` of a chunk's scores."""
    rows = []
    for name, (indices, values) in out.items():
        rows.extend((ids[name], *keys[i], float(v)) for i, v in zip(indices, values, strict=True))
    return rows


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
        from .distributed import score_pairs_distributed

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


@dataclass
class ScoringPlan:
    """What a run must do: ``result`` holds the scores found in the store, ``todo`` (metric -> (n_pairs,) bool) what
    is left, ``chunks`` the work; ``keys`` (per pair: the two content digests) and ``ids`` (metric -> identity) are
    the store's keys (``None`` without a store)."""

    result: PairScores
    todo: dict[str, np.ndarray]
    chunks: list[PairChunk]
    keys: list[tuple[str, str]] | None = None
    ids: dict[str, str] | None = None


def stored_rows(found: dict[tuple[str, str], float], keys: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose key ``found`` holds, their scores) for a :meth:`~prfnet.store.ScoreStore.lookup` result; two
    pairs of identical files share one stored key, so both rows get it."""
    rows = np.array([i for i, key in enumerate(keys) if key in found], dtype=np.int64)
    return rows, np.array([found[keys[i]] for i in rows], dtype=np.float64)


def plan_scoring(unique: list[tuple[str, str]], metrics: Sequence, store: ScoreStore | None, batch_size: int):
    """The :class:`ScoringPlan` of the unique pairs: what ``store`` holds is read, the rest cut into chunks."""
    index = {pair: i for i, pair in enumerate(unique)}
    scores = {m.name: np.full(len(unique), np.nan) for m in metrics}
    todo = {m.name: np.ones(len(unique), dtype=bool) for m in metrics}
    result = PairScores(index, scores, from_store={m.name: 0 for m in metrics}, computed={m.name: 0 for m in metrics})
    keys = ids = None
    if store is not None:
        digest = store.digests(p for pair in unique for p in pair)
        keys = [(digest[r], digest[d]) for r, d in unique]
        ids = {m.name: metric_identity(m) for m in metrics}
        for m in metrics:
            store.register_metric(ids[m.name], getattr(m, "about", None) or m.name)
            rows, values = stored_rows(store.lookup(ids[m.name], keys), keys)
            scores[m.name][rows] = values
            todo[m.name][rows] = False
            result.from_store[m.name] = len(rows)
    rows = [i for i in range(len(unique)) if any(t[i] for t in todo.values())]
    return ScoringPlan(result, todo, plan_chunks(unique, rows, batch_size), keys, ids)


def _forget_references(metrics) -> None:
    """Drop the reference features a metric (:class:`~prfnet.scoring.metrics.PRFNetMetric`) keeps between
    chunks: a later run must encode its references again (the model or the files may have changed since), and
    the features of the last reference are freed (device memory)."""
    for metric in metrics:
        if getattr(metric, "_encoded", None) is not None:
            metric._encoded = None


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
