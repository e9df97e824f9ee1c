"""``prfnet rd``'s work: check the RD items, score every decoded image against its original with every metric
(through the persistent score store), build the curves, compute the BD-rate and write the outputs as one set.

Outputs (``docs/rd.md``), staged and published together with ``OUT/manifest.json`` (:class:`prfnet.outputs.OutputSet`)::

    OUT/results/<codec>.json   CompressAI results, one per codec (codec names sanitised for file names)
    OUT/bd_rate.json           BD-rate against the anchor, keyed by CompressAI result key (not with bd_rate=False)
    OUT/rd_<metric>.png        one RD figure per available metric
    OUT/report.html            the self-contained report
    OUT/rd.json                the summary that ``prfnet rd --json`` prints

The score store (default ``OUT/scores.sqlite``) lies outside the set: it persists between runs and is never deleted.
The run follows the protocol template (:class:`prfnet.protocol.ProtocolRun`) that ``prfnet eval`` uses too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..images import DEFAULT_MAX_PIXELS
from ..ioutil import atomic_write, json_safe, write_json
from ..protocol import ProtocolRun
from ..report.html import figure_png
from ..scoring.metrics import canonical_metric_names
from ..store import DEFAULT_STORE
from ..trainer_settings import check_trainer_arguments
from .bdrate import METHODS, bd_rate_table
from .curves import MIN_BD_RATE_POINTS, RDCurves, build_curves, check_rd_items, compressai_results, result_key
from .figures import percent_cell, plot_rd, rd_report
from .inputs import RDItem

#: top-level names of ``OUT`` a run of ``prfnet rd`` owns (stale ones of an earlier run are removed on publishing)
RD_OUTPUTS = ("results", "bd_rate.json", "rd_*.png", "report.html", "rd.json")
DEFAULT_TITLE = "Rate-distortion evaluation"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def codec_file_names(codecs: Sequence[str]) -> dict[str, str]:
    """codec -> the stem of its ``results/<stem>.json``: runs of characters other than letters, digits and
    ``._+-`` become ``_``, leading dots are dropped. :class:`ConfigError` when two codecs map to one name (compared
    case-insensitively, for case-insensitive file systems)."""
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for codec in codecs:
        stem = _UNSAFE.sub("_", codec).lstrip(".") or "_"
        other = taken.get(stem.lower())
        if other is not None:
            raise ConfigError(
                f"codecs {other!r} and {codec!r} both give the results file name results/{stem}.json; rename one"
            )
        names[codec] = taken[stem.lower()] = stem
    return names


def figure_stem(metric: str) -> str:
    """The metric's part of its figure's file name: ``cvvdp:standard_fhd`` -> ``cvvdp-standard_fhd``."""
    return metric.replace(":", "-")


def metric_names(metrics: str | Sequence[str]) -> list[str]:
    """``"prfnet,psnr"`` (or a list of names) -> canonical names in order (``-`` = ``_``, ``all``/``baselines``
    expanded, duplicates dropped). :class:`ConfigError` for an unknown name, before any model is loaded."""
    raw = [metrics] if isinstance(metrics, str) else list(metrics)
    return canonical_metric_names(",".join(raw))


def _counts(pairs, selection, scores) -> dict:
    """How many scores the run needed, read from the store and computed, in all and per metric."""
    names = [m.name for m in selection.metrics]
    by_metric = {n: {"from_store": int(scores.from_store[n]), "computed": int(scores.computed[n])} for n in names}
    return {
        "scores": len(set(pairs)) * len(names),
        "from_store": sum(c["from_store"] for c in by_metric.values()),
        "computed": sum(c["computed"] for c in by_metric.values()),
        "by_metric": by_metric,
    }


def _keyed_bd(table: dict) -> dict:
    """The BD-rate table with its per-metric fields keyed by CompressAI result key (``psnr`` -> ``psnr-rgb``)."""
    out = dict(table)
    for field in ("bd_rate", "bd_rate_ci95", "direction", "notes"):
        out[field] = {result_key(m): v for m, v in table[field].items()}
    out["metrics"] = {result_key(m): m for m in table["direction"]}
    return out


def _rate_points(curves: RDCurves) -> dict[str, list[dict]]:
    return {
        codec: [
            {"label": label, "mean_bpp": float(bpp)}
            for label, bpp in zip(curves.rate_points[codec], curves.mean_bpp(codec), strict=True)
        ]
        for codec in curves.codecs
    }


def _metric_fields(metric) -> dict:
    """The per-metric entry of the summary, beside ``available`` and ``higher_better``."""
    return {"direction": "higher" if metric.higher_better else "lower", "key": result_key(metric.name)}


def _write(sink, curves, bd, summary, file_names, *, ms_ssim_db: bool, title: str, notes: list[str]) -> None:
    """Write every output of the set into the staging folder of ``sink`` (an :class:`OutputSet`)."""
    for codec in curves.codecs:
        results = compressai_results(curves, codec, ms_ssim_db=ms_ssim_db)
        write_json(sink.path(f"results/{file_names[codec]}.json"), results)
    if bd is not None:
        write_json(sink.path("bd_rate.json"), _keyed_bd(bd))
    for metric in curves.metrics:
        with atomic_write(sink.path(f"rd_{figure_stem(metric)}.png"), "wb") as f:
            f.write(figure_png(plot_rd(curves, metric)))  # 110 dpi
    rd_report(curves, bd, title, notes).write(sink.path("report.html"))
    write_json(sink.path("rd.json"), summary)


def run_rd(
    items: Sequence[RDItem],
    metrics: str | Sequence[str],
    out_dir: str | Path,
    *,
    anchor: str | None = None,
    model: object | Callable | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
    store=DEFAULT_STORE,
    bd_rate: bool = True,
    bd_method: str = "akima",
    bootstrap: int = 1000,
    seed: int = 0,
    ms_ssim_db: bool = False,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    trainer: dict | None = None,
    title: str = DEFAULT_TITLE,
    inputs: dict | None = None,
) -> dict:
    """Score the RD items with every metric, then write the curves, BD-rate and report to ``out_dir``.

    Args:
        items: one :class:`RDItem` per decoded image (:func:`read_rd_csv`, :func:`scan_rd_folders`).
        metrics: ``"prfnet,psnr,ms_ssim_rgb"`` or a list of names; an unknown name is a :class:`ConfigError`
            before anything is scored, one that cannot run here (LPIPS without weights) or refuses the images
            (MS-SSIM below 161 px) is listed in the summary with its reason; none left is a :class:`ConfigError`.
        anchor: the codec BD-rate is measured against (default: the first codec of ``items``).
        model: PRFNet, or a function of no argument returning it (called only if ``prfnet`` is asked for);
            ``None``: :func:`prfnet.api.load_model` (``$PRFNET_CHECKPOINT``).
        store: the score store (:func:`prfnet.store.resolve_store`): by default ``out_dir/scores.sqlite``, ``None``
            for none, a path, or an open :class:`prfnet.store.ScoreStore`. It lies outside the output set and
            persists between runs.
        workers, trainer: image-decoding workers and Lightning Trainer settings (``accelerator``, ``devices``,
            ``num_nodes``, ``strategy``) for :func:`prfnet.scoring.engine.score_pairs`; under DDP only global rank 0
            writes outputs.
        bd_rate: ``False``: no BD-rate (and no minimum of 4 rate points per codec).
        bd_method, bootstrap, seed: :func:`prfnet.rd.bd_rate_table` (``bootstrap=0``: no interval).
        ms_ssim_db: also ``ms-ssim-rgb-db`` in the CompressAI results.
        inputs: what the items were read from, recorded in the summary (``{"csv": path}``, ...).

    Every input problem (:func:`check_rd_items`) is raised before any model is loaded or image scored, and then
    nothing is written. Returns the summary written to ``out_dir/rd.json``: ``inputs``, ``n_images``, ``images``,
    ``codecs``, ``anchor``, ``rate_points`` ``{codec: [{"label", "mean_bpp"}]}`` (ascending bpp), ``metrics``
    ``{name: {"available", "higher_better", "direction", "key"} | {"available": False, "reason"}}``, ``store``
    ``{"path" (``None`` without a store), "scores", "from_store", "computed", "by_metric": {name: {"from_store",
    "computed"}}}`` (counts of scores), ``bd_rate`` (the ``bd_rate.json`` table or ``None``), ``outputs`` (paths),
    ``notes``.
    """
    items = list(items)
    codecs = list(dict.fromkeys(it.codec for it in items))
    anchor = anchor if anchor is not None else (codecs[0] if codecs else None)
    check_rd_items(items, anchor=anchor, min_rate_points=MIN_BD_RATE_POINTS if bd_rate else None)
    if bd_method not in METHODS:
        raise ConfigError(f"BD-rate method must be one of {', '.join(METHODS)}, got {bd_method!r}")
    if bootstrap < 0:
        raise ConfigError(f"bootstrap must be >= 0 resamples, got {bootstrap}")
    if trainer:  # --accelerator, --devices, --num-nodes, --strategy: checked as train checks them, before any work
        check_trainer_arguments(trainer)
    file_names = codec_file_names(codecs)
    names = metric_names(metrics)
    # every process of a multi-process run scores a share; only global rank 0 opens the store and writes outputs
    run = ProtocolRun(out_dir, RD_OUTPUTS, store, check_store=not trainer)
    out_dir = run.outputs.root
    source = (inputs or {}).get("csv") or (inputs or {}).get("decoded") or "the RD inputs"
    pairs = [(str(it.original), str(it.decoded)) for it in items]
    selection, scores = run.score(
        pairs, str(source), names, model=model, device=device, batch_size=batch_size, progress=progress,
        max_pixels=max_pixels, workers=workers, trainer=trainer, require=True,
    )  # fmt: skip
    if scores.partial:  # not global rank 0 of a multi-process run: rank 0 has every score and writes
        return {}
    per_item = {m.name: scores.lookup(m.name, pairs) for m in selection.metrics}
    curves = build_curves(items, per_item, {m.name: bool(m.higher_better) for m in selection.metrics})
    bd = bd_rate_table(curves, anchor, method=bd_method, bootstrap=bootstrap, seed=seed) if bd_rate else None
    notes = [f"{name} not scored: {why}" for name, why in selection.unavailable.items()]
    outputs = {
        "results": {c: str(out_dir / "results" / f"{file_names[c]}.json") for c in codecs},
        "bd_rate": str(out_dir / "bd_rate.json") if bd is not None else None,
        "figures": {m: str(out_dir / f"rd_{figure_stem(m)}.png") for m in curves.metrics},
        "report": str(out_dir / "report.html"),
        "summary": str(out_dir / "rd.json"),
        "manifest": str(out_dir / "manifest.json"),
    }
    store_path = run.store_path
    summary = json_safe(
        {
            "inputs": inputs or {},
            "n_items": len(items),
            "n_images": len(curves.images),
            "images": curves.images,
            "codecs": curves.codecs,
            "anchor": anchor,
            "rate_points": _rate_points(curves),
            "metrics": run.entries(selection, _metric_fields),
            "store": {"path": str(store_path) if store_path is not None else None, **_counts(pairs, selection, scores)},
            "bd_rate": _keyed_bd(bd) if bd is not None else None,
            "outputs": outputs,
            "notes": notes,
        }
    )
    with run.writing() as sink:
        _write(sink, curves, bd, summary, file_names, ms_ssim_db=ms_ssim_db, title=title, notes=notes)
    return summary


def bd_rate_cells(summary: dict) -> tuple[list[str], list[list[str]], list[str]]:
    """The BD-rate table of a summary for a console: columns (codec, one per metric key), one row per codec with
    ``"est [lo, hi] %"`` cells (``anchor`` on the anchor's row, ``n/a`` where undefined), and one note line per
    (metric, codec) note of the table (those of an undefined value start with ``n/a:``)."""
    bd = summary["bd_rate"]
    keys = list(bd["bd_rate"])
    rows, lines = [], []
    for codec in summary["codecs"]:
        if codec == bd["anchor"]:
            rows.append([codec, *(["anchor"] * len(keys))])
            continue
        cells = []
        for key in keys:
            value, ci = bd["bd_rate"][key].get(codec), bd["bd_rate_ci95"][key].get(codec)
            cell = percent_cell(value, ci)
            cells.append(cell if cell == "n/a" else f"{cell} %")
        rows.append([codec, *cells])
    for key in keys:
        for codec, note in bd["notes"][key].items():
            undefined = bd["bd_rate"][key].get(codec) is None or not np.isfinite(bd["bd_rate"][key][codec])
            lines.append(f"{key}, {codec}: {'n/a: ' if undefined else ''}{note}")
    return ["codec", *(f"{key} BD-rate" for key in keys)], rows, lines
