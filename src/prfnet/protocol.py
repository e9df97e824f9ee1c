"""The template of every run that scores metrics on image pairs and writes one set of outputs: ``prfnet eval
clic|bapps|mos`` (:mod:`prfnet.evaluation`) and ``prfnet rd`` (:mod:`prfnet.rd`)::

    run = ProtocolRun(out_dir, OWN, store)  # output folder checked (once) and score store resolved, before any reading
    ...                                     # the protocol reads and checks its own data
    selection, scores = run.score(pairs, source, metrics, model=...)  # files checked before the model loads, metrics
                                            # selected, pairs scored through the store, failed metrics dropped
    results = run.entries(selection, entry, intervals)  # per-metric entries, then intervals, in request order
    run.publish(results, report, write_more)            # results.json, report.html, ...: one set, manifest.json last

The protocols supply the hooks (their pairs, ``entry(metric)``, ``intervals(results)``, their report and files).
``evaluation`` and ``rd`` are one layer (neither imports the other), so the template they share lies one layer below
both and above :mod:`prfnet.scoring`, whose engine it drives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import ConfigError
from .images import DEFAULT_MAX_PIXELS
from .ioutil import write_json
from .outputs import OutputSet, OutputView
from .scoring.engine import PairScores, check_files_exist, score_pairs
from .scoring.metrics import MetricSelection, drop_failed, metric_info, select_metrics, unavailable_info
from .store import DEFAULT_STORE, ScoreStore, resolve_store

#: the files ``prfnet eval clic|bapps|mos`` writes to its output folder (besides the manifest): one kind for all
#: three, so that a folder reused for another protocol keeps no file of the previous one
EVAL_OUTPUTS = ("results.json", "report.html", "scores.csv", "submission_*.csv")


class ProtocolRun:
    """One run of a protocol into ``out_dir``: ``None`` (nothing written, no default store), a folder (checked now:
    an :class:`~prfnet.errors.OutputError` before anything is read or any model loads), or an :class:`OutputSet` /
    :class:`OutputView` given by a caller (the demo's ``eval/``; a view is published by its owner).

    ``own``: the top-level names of this kind of run (:class:`OutputSet`). ``store``: :func:`prfnet.store.resolve_store`
    against the output folder (a view's store lies at its owner's root); ``check_store=False`` leaves an existing store
    file unopened (ranks of a multi-process run other than 0 never open it).
    """

    def __init__(self, out_dir, own: Sequence[str], store=DEFAULT_STORE, *, check_store: bool = True):
        if out_dir is None or isinstance(out_dir, OutputView):
            self.outputs = out_dir
            folder = out_dir.owner.root if out_dir is not None else None
        else:
            self.outputs = out_dir if isinstance(out_dir, OutputSet) else OutputSet(out_dir, own)
            if not self.outputs.checked:
                self.outputs.check()
            folder = self.outputs.root
        self.store: ScoreStore | Path | None = resolve_store(store, folder, check=check_store)

    @property
    def store_path(self) -> Path | None:
        """Where the score store is (``None``: no store)."""
        return getattr(self.store, "path", self.store)

    def final(self, name: str) -> Path | None:
        """Where the output ``name`` will be once published (``None`` when the run writes no outputs)."""
        return self.outputs.final(name) if self.outputs is not None else None

    def score(
        self,
        pairs: Sequence[tuple[str, str]],
        source: str,
        metrics: Sequence,
        *,
        model=None,
        device: str = "cpu",
        batch_size: int = 8,
        progress: bool = True,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        workers: int = 0,
        trainer: dict | None = None,
        require: bool = False,
    ) -> tuple[MetricSelection, PairScores]:
        """Check that every file of ``pairs`` exists (before the model loads), select the metrics
        (:func:`~prfnet.scoring.metrics.select_metrics`; ``model`` may be a function, called only for ``prfnet``),
        score the pairs (:func:`~prfnet.scoring.engine.score_pairs`, through the store) and move the metrics that
        failed to ``selection.unavailable``. ``require``: a :class:`ConfigError` when no metric is left. On a rank
        other than 0 of a multi-process run (``scores.partial``) nothing is dropped."""
        check_files_exist((p for pair in pairs for p in pair), source)
        selection = select_metrics(metrics, model=model, device=device)
        if require and not selection.metrics:
            raise ConfigError(f"none of the metrics can run here ({_reasons(selection)})")
        scores = score_pairs(
            pairs, selection.metrics, source, device, batch_size, progress, max_pixels,
            store=self.store, workers=workers, trainer=trainer,
        )  # fmt: skip
        if scores.partial:
            return selection, scores
        drop_failed(selection, scores)
        if require and not selection.metrics:
            raise ConfigError(f"no metric can score these images ({_reasons(selection)})")
        return selection, scores

    @staticmethod
    def entries(
        selection: MetricSelection, entry: Callable, intervals: Callable[[dict], None] | None = None
    ) -> dict[str, dict]:
        """``{metric: {"available": True, "higher_better", **entry(metric)}}`` for the scored metrics and
        ``{"available": False, "reason"}`` for the others; ``intervals(results)`` then adds the intervals in place;
        in the order the metrics were asked for."""
        results = {name: unavailable_info(reason) for name, reason in selection.unavailable.items()}
        for metric in selection.metrics:
            results[metric.name] = {**metric_info(metric), **entry(metric)}
        if intervals is not None:
            intervals(results)
        return {name: results[name] for name in selection.names}

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputSet | OutputView]:
        """The sink to write the outputs to (``sink.path(name)``): staged, then published as one set on success."""
        if self.outputs is None:
            raise ValueError("this run writes no outputs (out_dir=None)")
        with self.outputs.writing() as sink:
            yield sink

    def publish(self, results: dict, report=None, write_more: Callable | None = None) -> None:
        """Write ``results.json`` (strict JSON), ``report.html`` (a :class:`~prfnet.report.html.Report`, unless
        ``None``) and what ``write_more(sink)`` writes, as one set. Nothing without an output folder."""
        if self.outputs is None:
            return
        with self.writing() as sink:
            if write_more is not None:
                write_more(sink)
            write_json(sink.path("results.json"), results)
            if report is not None:
                report.write(sink.path("report.html"))


def _reasons(selection: MetricSelection) -> str:
    return "; ".join(f"{name}: {why}" for name, why in selection.unavailable.items())


__all__ = ["EVAL_OUTPUTS", "ProtocolRun"]
