"""Metrics by name for the protocols: PRFNet as a metric, selection of the requested metrics, JSON helpers.

Every protocol (CLIC, BAPPS, MOS) and ``prfnet rd`` reduce to the same work: a set of (reference, distorted)
file pairs, each scored by every metric, which :func:`prfnet.scoring.engine.score_pairs` does (each pair
once per metric, each reference encoded once, resumably with a score store). Scores keep each metric's own
direction (``metric.higher_better``); nothing is flipped here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..api import finite_outputs, load_model, model_identity, resolve_device
from ..baselines import BASELINE_NAMES, MetricUnavailable, canonical_metric_name, get_metric
from ..errors import ConfigError
from .plan import PairScores

__all__ = [
    "ALL",
    "BASELINES",
    "PRFNET",
    "MetricSelection",
    "PRFNetMetric",
    "canonical_metric_names",
    "drop_failed",
    "metric_info",
    "parse_metric_names",
    "select_metrics",
    "unavailable_info",
]

log = logging.getLogger(__name__)

#: Metric names that expand to several metrics in ``metrics=`` / ``--metrics``.
ALL = "all"
BASELINES = "baselines"
PRFNET = "prfnet"


class PRFNetMetric:
    """PRFNet as a :class:`prfnet.baselines.Metric`: ``__call__(ref, dist)`` = ``model.score(ref, dist)``.

    Inputs (N, 3, H, W) float RGB in [0, 1]; output (N,) float32 on the CPU, a distance >= 0
    (lower = closer, hence ``higher_better = False``). A reference batch that is one image expanded
    N times (stride 0) goes through the backbone once. A NaN or infinite score (diverged weights) is a
    :class:`~prfnet.errors.ModelOutputError` naming the checkpoint, never a score.
    """

    name = PRFNET
    higher_better = False
    accepts_uint8 = True  # 8-bit images stay uint8 until the model converts one tile / batch

    def __init__(self, model):
        self.model = model
        self._encoded: tuple[str, object] | None = None  # (reference key, its ReferenceFeatures)

    @property
    def about(self) -> str:
        return f"PRFNet distance ({getattr(self.model, 'source', None) or 'in-memory model'})"

    @property
    def identity(self) -> str:
        """What a score store keys this metric's scores on: :func:`prfnet.api.model_identity` of the model as it is
        now. The checkpoint file the model was loaded from (``model.checkpoint_file``) is hashed on the first call
        only, and never when no store asks; a model built in memory (or trained since loading) hashes its weights
        at every call."""
        return model_identity(self.model)

    def forget_reference(self) -> None:
        """Drop the features of the reference :meth:`score_reference` keeps (freeing their memory): the next call
        encodes its reference again (the model or the files may have changed since)."""
        self._encoded = None

    def score_reference(self, key: str, ref: Tensor, dist: Tensor) -> Tensor:
        """``self(ref, dist)`` for one reference (1, 3, H, W) named ``key`` (e.g. its path): consecutive calls with
        the same key reuse its backbone features (unless the model tiles images of this size)."""
        model = self.model
        if model.will_tile(*ref.shape[-2:]):
            return self(ref, dist)
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                if self._encoded is None or self._encoded[0] != key:
                    self._encoded = None  # the previous reference's features are freed first
                    self._encoded = (key, model.encode(ref))
                scores = model.score(self._encoded[1], dist).float().cpu()
        finally:
            model.train(was_training)
        finite_outputs(model, scores, f"{dist.shape[0]} images against {key}")
        return scores

    def __call__(self, ref: Tensor, dist: Tensor) -> Tensor:
        was_training = self.model.training
        self.model.eval()  # scores must not depend on the batch; the caller's mode is restored
        try:
            with torch.inference_mode():
                if ref.ndim == 4 and ref.shape[0] > 1 and ref.stride(0) == 0:
                    ref = ref[:1]  # the same reference for every row: encode it once
                scores = self.model.score(ref, dist).float().cpu()
        finally:
            self.model.train(was_training)
        finite_outputs(self.model, scores, f"a batch of {scores.numel()} image pairs")
        return scores

    @staticmethod
    def probability_a(score_a: Tensor, score_b: Tensor) -> Tensor:
        """P(A closer) in (0, 1) from the two distances: sigmoid(score_b - score_a) (= ``model.compare``)."""
        return torch.sigmoid(torch.as_tensor(score_b, dtype=torch.float64) - torch.as_tensor(score_a))


@dataclass
class MetricSelection:
    """Metrics to run and the requested ones that cannot run here (name -> reason); ``names``: request order."""

    metrics: list = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


def parse_metric_names(text: str | Sequence[str]) -> list[str]:
    """``"prfnet,psnr"`` or a list -> names in order, ``all`` / ``baselines`` expanded, duplicates dropped."""
    raw = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in raw:
        name = item.strip().lower()
        if not name:
            continue
        expanded = [PRFNET, *BASELINE_NAMES] if name == ALL else list(BASELINE_NAMES) if name == BASELINES else [name]
        names.extend(n for n in expanded if n not in names)
    if not names:
        raise ConfigError("no metric requested: pass e.g. --metrics prfnet,psnr,ssim (or 'all')")
    return names


def canonical_metric_names(text: str | Sequence[str]) -> list[str]:
    """:func:`parse_metric_names`, each name canonical (``prfnet``, or the registry's: ``MS-SSIM`` -> ``ms_ssim``,
    ``cvvdp:<display>``), duplicates dropped. :class:`ConfigError` (one line, loading nothing) for an unknown name,
    or the registry's own for an option a metric does not take."""
    names = []
    for name in parse_metric_names(text):
        try:
            names.append(PRFNET if name == PRFNET else canonical_metric_name(name))
        except ConfigError:
            if ":" in name:  # a known metric with an option it does not take (the registry says which)
                raise
            raise ConfigError(f"unknown metric {name!r}; choose among {PRFNET}, {', '.join(BASELINE_NAMES)}") from None
    return list(dict.fromkeys(names))


def _prfnet_model(model, device):
    """``model`` (a PRFNet), ``model()`` (a loader function), or with ``None`` :func:`prfnet.api.load_model` on
    ``device`` (``$PRFNET_CHECKPOINT``)."""
    if model is None:
        return load_model(None, device)
    return model if isinstance(model, torch.nn.Module) else model()


def select_metrics(metrics: Sequence, model=None, device: str | None = "cpu") -> MetricSelection:
    """Resolve names (or ready metric objects with ``name``/``higher_better``) to metric callables, in order.

    ``"prfnet"`` uses ``model`` (a PRFNet, or a function of no argument returning one, called only
    then), else :func:`prfnet.api.load_model` (``$PRFNET_CHECKPOINT``, or the same
    :class:`CheckpointError` as ``prfnet compare``). A baseline that cannot run here
    (:class:`MetricUnavailable`, e.g. LPIPS without weights) is listed with its reason; an unknown
    name is a :class:`ConfigError`; a device torch cannot use here is an :class:`InputError`.
    """
    if device is not None:
        resolve_device(device)
    selection = MetricSelection()
    for item in [metrics] if isinstance(metrics, str) else metrics:
        entries = [(n, None) for n in parse_metric_names(item)] if isinstance(item, str) else [(item.name, item)]
        for name, ready in entries:
            if name in selection.names:
                continue
            selection.names.append(name)
            if ready is not None:
                selection.metrics.append(ready)
            elif name == PRFNET:
                selection.metrics.append(PRFNetMetric(_prfnet_model(model, device)))
            else:
                try:
                    selection.metrics.append(get_metric(name, device=device))
                except MetricUnavailable as exc:
                    log.info("metric %s unavailable: %s", name, exc)
                    selection.unavailable[name] = str(exc)
    return selection


def drop_failed(selection: MetricSelection, scores: PairScores) -> None:
    """Move the metrics that failed in :func:`score_pairs` to ``selection.unavailable`` (in place)."""
    selection.unavailable.update(scores.failed)
    selection.metrics = [m for m in selection.metrics if m.name not in scores.failed]


def metric_info(metric) -> dict:
    """The JSON fields every protocol reports for an available metric."""
    return {"available": True, "higher_better": bool(metric.higher_better)}


def unavailable_info(reason: str) -> dict:
    return {"available": False, "reason": reason}
