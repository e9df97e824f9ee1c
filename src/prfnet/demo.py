"""The embedded demo: synthetic data -> two-step training -> evaluation against the baselines on
held-out references -> report -> one comparison. Runs on CPU in minutes with no download.

Layout of the demo folder ``out/``::

    data/        the synthetic CLIC-format set (prfnet synth) and its split:
                 train_oracle.csv (training references), test_validation.csv, test_oracle.csv, test_kinds.csv
    train/       the training run (prfnet train layout: checkpoints, metrics.csv, report.html, ...)
    eval/        submission_<metric>.csv and the full results.json of the evaluation
    model.safetensors   the trained model
    results.json        {metric: {"accuracy": x, "accuracy_by_kind": {"within_family": y, "matched_mse": z}}}
    report.html         training curves, accuracy table and charts, reliability diagram, example triplets
    manifest.json       written last: run id, UTC time, command, every file above with its size and SHA-256

Everything is written into ``out/.run-<id>/`` first and moved into place when the demo has finished (the data first,
before training, since the training run records its absolute path); see :mod:`prfnet.outputs`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .api import Comparison, compare_files
from .data import Triplet, read_clic_oracle, read_clic_triplets, split_by_reference, write_clic_csv
from .data.synth import read_kinds, synthesize_clic
from .errors import ConfigError
from .evaluation import Report, evaluate_clic
from .evaluation.scoring import json_safe
from .ioutil import atomic_write
from .model import PRFNet
from .outputs import OutputSet
from .training import TrainConfig, load_train_config, train
from .training.preflight import check_trainer_settings

log = logging.getLogger(__name__)

#: What a demo writes into its folder (stale entries of these kinds are removed when a new demo is published).
DEMO_OUTPUTS = ("data", "train", "eval", "model.safetensors", "results.json", "report.html")
#: Baselines the demo compares against: every classic metric that runs offline, LPIPS/DISTS when present.
DEMO_METRICS = ("prfnet", "psnr", "ssim", "ms_ssim", "fsim", "vif", "gmsd", "haarpsi", "mdsi", "lpips", "dists")
KINDS = ("within_family", "matched_mse")


@dataclass
class DemoResult:
    """Paths written by the demo, the per-metric accuracies and the example comparison."""

    out_dir: Path
    model_path: Path
    report_path: Path
    results_path: Path
    results: dict[str, dict]
    unavailable: dict[str, str]
    comparison: Comparison
    compared: Triplet


def _write_rows(path: Path, rows: Sequence[Sequence[str]]) -> None:
    with atomic_write(path, newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def split_demo_data(data_dir: Path, holdout: float, seed: int) -> tuple[set[str], set[str]]:
    """Split the synthetic set by reference; write the training oracle and the held-out test files.
    Returns (training references, held-out references)."""
    oracle = read_clic_oracle(data_dir / "oracle.csv")
    train_items, test_items = split_by_reference(oracle.triplets, holdout, seed)
    train_refs, test_refs = {t.ref for t in train_items}, {t.ref for t in test_items}
    write_clic_csv(data_dir / "train_oracle.csv", [(t, v) for t, v in oracle.rows if t.ref in train_refs])
    write_clic_csv(data_dir / "test_oracle.csv", [(t, v) for t, v in oracle.rows if t.ref in test_refs])
    validation = read_clic_triplets(data_dir / "validation.csv")
    _write_rows(data_dir / "test_validation.csv", [(t.ref, t.a, t.b) for t in validation if t.ref in test_refs])
    kinds = read_kinds(data_dir / "kinds.csv")
    _write_rows(
        data_dir / "test_kinds.csv",
        [(*key, kind) for key, kind in kinds.items() if key[0] in test_refs],
    )
    return train_refs, test_refs


def summarise(results: dict[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """(the demo's results.json mapping, {unavailable metric: reason}); strict JSON values: an undefined
    accuracy (no triplet of a kind) is ``None``, never NaN."""
    summary, unavailable = {}, {}
    for name, entry in results.items():
        if not entry.get("available", True):
            unavailable[name] = entry.get("reason", "unavailable")
            continue
        by_kind = entry.get("accuracy_by_kind") or {}
        summary[name] = {"accuracy": entry["accuracy"], "accuracy_by_kind": {k: by_kind.get(k) for k in KINDS}}
    return json_safe(summary), unavailable


def run_demo(
    out_dir: str | Path = "prfnet_demo",
    refs: int = 12,
    size: int = 256,
    seed: int = 0,
    holdout: float = 0.25,
    config: str | Path = "demo",
    metrics: Sequence[str] | None = None,
    progress: bool = True,
    stage: Callable[[str], None] = log.info,
) -> DemoResult:
    """Run the whole pipeline into ``out_dir`` (see the module docstring for what it writes).

    A previous demo in ``out_dir`` is replaced. ``metrics``: default :data:`DEMO_METRICS`. ``stage``
    receives one line per stage.
    """
    metrics = tuple(metrics or DEMO_METRICS)
    _check_metric_names(metrics)
    out_dir = Path(out_dir)
    cfg = demo_config(config, size, seed)  # a bad --config or trainer setting fails here, before anything is written
    check_trainer_settings(cfg)
    data_dir = out_dir / "data"
    model_path, report_path, results_path = (out_dir / n for n in ("model.safetensors", "report.html", "results.json"))
    # every output is staged in out_dir/.run-<id>/ and moved into place at the end, manifest.json last
    with OutputSet(out_dir, DEMO_OUTPUTS) as outputs:
        stage(f"1/5 synthesising {refs} references of {size} px into {data_dir}")
        synthesize_clic(outputs.path("data"), refs=refs, size=size, seed=seed)
        train_refs, test_refs = split_demo_data(outputs.path("data"), holdout, seed)
        outputs.publish_now("data")  # in place before training: the run records the data folder's absolute path

        stage(f"2/5 training both steps ({config} config) on {len(train_refs)} references; {len(test_refs)} held out")
        trained = train(cfg, data_dir, outputs.path("train"), progress=progress)
        model = PRFNet.from_pretrained(trained.model_path)
        model.save_pretrained(outputs.path("model.safetensors"), metadata={"trained_with": "prfnet demo"})

        stage(f"3/5 evaluating PRFNet and the baselines on the held-out references ({', '.join(metrics)})")
        results = evaluate_clic(
            data_dir / "test_validation.csv",
            root=data_dir / "images",
            oracle=data_dir / "test_oracle.csv",
            metrics=metrics,
            model=model,
            kinds=data_dir / "test_kinds.csv",
            out_dir=outputs.sub("eval"),
            progress=progress,
            report_path=outputs.path("report.html"),
            report_title="prfnet demo: synthetic CLIC-format data (NOT human judgments)",
            extend_report=lambda report: _add_training_section(report, trained.metrics_csv, train_refs, test_refs),
        )
        stage(f"4/5 report written to {report_path}")
        summary, unavailable = summarise(results)
        with atomic_write(outputs.path("results.json"), encoding="utf-8") as f:
            json.dump(summary, f, indent=2, allow_nan=False)

        compared = _first_matched_mse(data_dir / "test_kinds.csv")
        images = data_dir / "images"
        comparison = compare_files(model, images / compared.ref, images / compared.a, images / compared.b)
        stage(f"5/5 compare on a held-out matched-MSE triplet: {compared.key()}")
    return DemoResult(out_dir, model_path, report_path, results_path, summary, unavailable, comparison, compared)


def _check_metric_names(metrics: Sequence[str]) -> None:
    """An unknown metric name fails before the demo writes or trains anything (not after the training)."""
    from .baselines import BASELINE_NAMES
    from .evaluation.scoring import PRFNET, parse_metric_names

    known = (PRFNET, *BASELINE_NAMES)
    unknown = [name for name in parse_metric_names(metrics) if name not in known]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r} in --metrics; known: {', '.join(known)}")


def demo_config(config: str | Path | dict, size: int, seed: int | None = None) -> TrainConfig:
    """The training config of the demo: ``config`` reading the split files, with its crops no larger than ``size``
    (the shipped demo config crops 128 px, which ``--size 64`` images cannot give) and, unless ``None``, ``seed``
    as its training seed (``prfnet demo --seed`` seeds the data, the split and the training)."""
    overrides = {"data.train": "train_oracle.csv", "data.val.path": "test_oracle.csv"}
    if seed is not None:
        overrides["seed"] = seed
    cfg = load_train_config(config, overrides)
    crops = {"data.crop": cfg.data.crop, "data.val.crop": cfg.data.val.crop}
    smaller = {key: size for key, crop in crops.items() if crop is not None and crop > size}
    return load_train_config(config, {**overrides, **smaller}) if smaller else cfg


def _first_matched_mse(kinds_csv: Path) -> Triplet:
    kinds = read_kinds(kinds_csv)
    key = next((k for k, kind in kinds.items() if kind == "matched_mse"), next(iter(kinds)))
    return Triplet(*key)


def _add_training_section(report: Report, metrics_csv: Path, train_refs: set[str], test_refs: set[str]) -> None:
    """Put the demo's set-up and both steps' training curves in front of the evaluation sections."""
    from .training.curves import plot_training_curves, read_metrics_csv

    section = Report("")
    section.add_heading("Demo set-up")
    section.add_text(
        f"Synthetic CLIC-format triplets with labels known by construction (docs/synthetic.md): "
        f"{len(train_refs)} references for training, {len(test_refs)} held out; every accuracy below is on the "
        "held-out references only. A demonstration of the pipeline, not a measure of agreement with humans."
    )
    section.add_heading("Training curves (both steps)")
    section.add_figure(plot_training_curves(read_metrics_csv(metrics_csv)), "Loss and validation accuracy per epoch.")
    report.merge(section, first=True)
