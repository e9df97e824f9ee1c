"""What a scoring run must do and how one chunk of it is scored, for the one-process loop (:mod:`.engine`) and the
processes of a distributed run (:mod:`.distributed`) alike: the plan (what the score store already holds, the rest
cut into chunks), the metric identities the store keys scores on, the chunk scorer and the store rows it yields."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import piq
import torch

from .._version import __version__
from ..api import model_identity
from ..baselines import MetricUnavailable
from ..errors import InputError
from ..images import unit_float
from ..store import ScoreStore
from .pair_loader import PairChunk, plan_chunks

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


def metric_identity(metric) -> str:
    """What the score store keys ``metric``'s scores on. PRFNet: :func:`prfnet.api.model_identity` of the model as
    it is now (its checkpoint's SHA-256, else its weights', with its tiling and precision), from the metric's own
    ``identity`` when it has one (:class:`~prfnet.scoring.metrics.PRFNetMetric` hashes its checkpoint once); a
    baseline: its name and a digest of its description and of the versions of prfnet and piq that compute it."""
    identity = getattr(metric, "identity", None)
    if identity is not None:
        return identity
    model = getattr(metric, "model", None)
    if model is not None:
        return model_identity(model)
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
            _check_memory(metric, chunk, len(need), tuple(dists.shape[-2:]))
            r = ref
            if not getattr(metric, "accepts_uint8", False):  # the Metric protocol: float RGB in [0, 1]
                r, batch = unit_float(ref), unit_float(batch)
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


def _check_memory(metric, chunk: PairChunk, images: int, size: tuple[int, int]) -> None:
    """PRFNet: :class:`~prfnet.memory.NotEnoughMemory` (one line suggesting ``--tile``) before a chunk whose backbone
    pass needs more memory than is available on the model's device (:meth:`prfnet.model.PRFNet.check_memory`)."""
    check = getattr(getattr(metric, "model", None), "check_memory", None)
    if check is None:
        return
    height, width = size
    model = metric.model
    how = f"in {model.config.tile_size} px tiles" if model.will_tile(height, width) else "as whole images"
    check(
        height,
        width,
        images,
        f"{metric.name}: scoring against {chunk.ref} ({width}x{height} px) {images} at a time {how}",
    )


def store_rows(out, ids, keys) -> list[tuple[str, str, str, float]]:
    """Store rows ``(metric_id, ref_digest, dist_digest, score)`` of a chunk's scores."""
    rows = []
    for name, (indices, values) in out.items():
        rows.extend((ids[name], *keys[i], float(v)) for i, v in zip(indices, values, strict=True))
    return rows


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
