"""Score (reference, distorted) image pairs with several metrics at once, each pair once per metric.

Every protocol (CLIC, BAPPS, MOS) reduces to the same work: a set of (reference, distorted) file
pairs, each scored by every metric. :func:`score_pairs` de-duplicates the pairs (a pair that occurs
in several triplets is scored once per metric), decodes each image once per batch of pairs for all
metrics, and batches pairs of equal image size. Scores keep each metric's own direction
(``metric.higher_better``); nothing is flipped here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..baselines import BASELINE_NAMES, MetricUnavailable, get_metric
from ..errors import ConfigError, DataError, ImageReadError, InputError
from ..images import DEFAULT_MAX_PIXELS, load_image

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

    def __init__(self, model):
        self.model = model

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
        from ..api import finite_outputs

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


def _prfnet_model(model, device):
    if model is None:
        from ..api import load_model

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
        from ..api import resolve_device

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


@dataclass
class PairScores:
    """Scores of unique (reference, distorted) path pairs: ``scores[metric][index[(ref, dist)]]`` (float64)."""

    index: dict[tuple[str, str], int]
    scores: dict[str, np.ndarray]
    failed: dict[str, str] = field(default_factory=dict)  # metric -> why it could not score these images

    def lookup(self, metric: str, pairs: Iterable[tuple[str | Path, str | Path]]) -> np.ndarray:
        """Scores of ``pairs`` (in that order) for ``metric``, shape (len(pairs),)."""
        rows = [self.index[(str(r), str(d))] for r, d in pairs]
        return self.scores[metric][rows]


class _ImageCache:
    """Least-recently-used decoded images; missing/unreadable files become :class:`DataError`."""

    def __init__(self, capacity: int, source: str, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.capacity = max(2, capacity)
        self.source = source
        self.max_pixels = max_pixels
        self._items: OrderedDict[str, Tensor] = OrderedDict()

    def get(self, path: str) -> Tensor:
        if path in self._items:
            self._items.move_to_end(path)
            return self._items[path]
        try:
            img = load_image(path, max_pixels=self.max_pixels)
        except ImageReadError as exc:
            raise DataError(f"{exc} (listed in {self.source})") from None
        self._items[path] = img
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return img


def check_files_exist(paths: Iterable[str], source: str) -> None:
    """Fail fast, before any scoring, with a :class:`DataError` naming the first missing image."""
    missing = [p for p in dict.fromkeys(paths) if not Path(p).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        what = "is a directory, not an image file" if Path(missing[0]).is_dir() else "image not found"
        raise DataError(f"{missing[0]}: {what}{more} (listed in {source})")


def _progress_bar(enabled: bool, total: int, what: str):
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _batches(pairs: list[tuple[str, str]], batch_size: int):
    """Consecutive chunks of pairs (already sorted by reference, so chunks share references)."""
    for start in range(0, len(pairs), batch_size):
        yield start, pairs[start : start + batch_size]


def _score_group(metric, ref_paths, refs: list[Tensor], dists: Tensor, device: torch.device) -> np.ndarray:
    shared = len(set(ref_paths)) == 1
    dist_dev = dists.to(device)
    if shared and isinstance(metric, PRFNetMetric):
        ref_dev = refs[0].to(device).expand(len(ref_paths), -1, -1, -1)
    else:
        ref_dev = torch.cat(refs).to(device)
    with torch.inference_mode():
        out = metric(ref_dev, dist_dev)
    out = torch.as_tensor(out).detach().reshape(-1).to("cpu", torch.float64).numpy()
    if out.shape[0] != dists.shape[0]:
        raise RuntimeError(f"metric {metric.name} returned {out.shape[0]} scores for {dists.shape[0]} pairs")
    return out


def score_pairs(
    pairs: Iterable[tuple[str | Path, str | Path]],
    metrics: Sequence,
    source: str = "the data set",
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> PairScores:
    """Score every unique (reference, distorted) pair with every metric.

    Args:
        pairs: file pairs; repeats are scored once (the cache key is the pair of path strings).
        metrics: callables ``metric(ref, dist) -> (N,)`` with ``name`` (see :class:`prfnet.baselines.Metric`).
        source: the data file the paths come from, named in error messages.
        batch_size: pairs decoded per batch; each image is decoded once per batch for all metrics
            and pairs of the same image size go through a metric together.
        progress: rich progress bar on stderr.
        max_pixels: the largest image decoded (:func:`prfnet.load_image`; ``None``: no limit).

    A metric that rejects the images (:class:`InputError`, e.g. MS-SSIM on images smaller than
    176 pixels, PRFNet below 32) is not called again and is listed in ``failed`` with the reason and the
    first pair it refused.

    Raises :class:`DataError` for a missing/unreadable image, an image above ``max_pixels``, or a distorted
    image whose size differs from its reference's; :class:`~prfnet.errors.ModelOutputError` when PRFNet's
    scores are not finite.
    """
    unique = sorted(dict.fromkeys((str(r), str(d)) for r, d in pairs))
    check_files_exist((p for pair in unique for p in pair), source)
    device = torch.device(device)
    index = {pair: i for i, pair in enumerate(unique)}
    scores = {m.name: np.full(len(unique), np.nan) for m in metrics}
    failed: dict[str, str] = {}
    cache = _ImageCache(2 * batch_size + 2, source, max_pixels)
    what = f"scoring {len(unique)} pairs x {len(metrics)} metrics"
    with _progress_bar(progress and len(unique) > 0, len(unique), what) as bar:
        task = bar.add_task("score", total=len(unique)) if bar is not None else None
        for start, chunk in _batches(unique, batch_size):
            groups: dict[tuple[int, int], list[int]] = {}
            for offset, (ref_path, dist_path) in enumerate(chunk):
                ref, dist = cache.get(ref_path), cache.get(dist_path)
                if ref.shape != dist.shape:
                    raise DataError(
                        f"{dist_path}: size {dist.shape[-1]}x{dist.shape[-2]} differs from its reference "
                        f"{ref_path} ({ref.shape[-1]}x{ref.shape[-2]}) (listed in {source})"
                    )
                groups.setdefault(tuple(ref.shape[-2:]), []).append(offset)
            for offsets in groups.values():
                ref_paths = [chunk[o][0] for o in offsets]
                refs = [cache.get(p) for p in ref_paths]
                dists = torch.cat([cache.get(chunk[o][1]) for o in offsets])
                rows = [start + o for o in offsets]
                for metric in (m for m in metrics if m.name not in failed):
                    try:
                        scores[metric.name][rows] = _score_group(metric, ref_paths, refs, dists, device)
                    except (InputError, MetricUnavailable) as exc:
                        log.info("metric %s cannot score %s: %s", metric.name, source, exc)
                        ref_path, dist_path = chunk[offsets[0]]
                        height, width = dists.shape[-2:]
                        failed[metric.name] = (
                            f"cannot score these images ({exc}); first refused: {dist_path} against {ref_path}, "
                            f"{width}x{height}"
                        )
            if bar is not None:
                bar.advance(task, len(chunk))
    return PairScores(index=index, scores=scores, failed=failed)


def drop_failed(selection: MetricSelection, scores: PairScores) -> None:
    """Move the metrics that failed in :func:`score_pairs` to ``selection.unavailable`` (in place)."""
    selection.unavailable.update(scores.failed)
    selection.metrics = [m for m in selection.metrics if m.name not in scores.failed]


def metric_info(metric) -> dict:
    """The JSON fields every protocol reports for an available metric."""
    return {"available": True, "higher_better": bool(metric.higher_better)}


def unavailable_info(reason: str) -> dict:
    return {"available": False, "reason": reason}


def json_safe(value):
    """Recursively replace NaN/inf floats by ``None`` (strict JSON) and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(path: str | Path, results: dict) -> Path:
    """``results`` as indented strict JSON, written atomically."""
    import json

    from ..ioutil import atomic_write

    with atomic_write(path, encoding="utf-8") as f:
        json.dump(json_safe(results), f, indent=2, allow_nan=False)
        f.write("\n")
    return Path(path)
