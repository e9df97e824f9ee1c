"""The embedded demo: a simulated CLIC task (real codecs on real photos, simulated votes) -> two-step training ->
evaluation against the baselines on held-out references, with intervals and the ceiling -> report -> one
comparison. Runs on CPU in minutes with no download.

Layout of the demo folder ``out/``::

    data/        the simulated codec set (prfnet synth --kind codecs) and its split:
                 train_oracle.csv (training references), test_validation.csv, test_oracle.csv, test_kinds.csv
    train/       the training run (prfnet train layout: checkpoints, metrics.csv, report.html, ...)
    eval/        submission_<metric>.csv and the full results.json of the evaluation
    model.safetensors   the trained model
    results.json        {metric: {"accuracy", "accuracy_ci95", "accuracy_by_kind": {"psnr_close", "psnr_apart"}, ...},
                         "ceiling": {...}}: see :func:`summarise` and docs/synthetic.md
    report.html         training curves, accuracy table and charts, reliability diagram, example triplets
    manifest.json       written last: run id, UTC time, command, every file above with its size and SHA-256
    scores.sqlite       the evaluation's score store (outside the set: kept between runs; ``store=None``: none)

Everything is written into ``out/.run-<id>/`` first and moved into place when the demo has finished (the data first,
before training, since the training run records its absolute path); see :mod:`prfnet.outputs`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .api import Comparison, compare_files, load_model
from .baselines import learned
from .data import Triplet, read_clic_oracle, read_clic_triplets, split_by_reference, write_clic_csv
from .data.clic import read_kinds
from .errors import ConfigError, Terminated
from .evaluation import evaluate_clic
from .ioutil import json_safe, write_csv, write_json
from .model import PRFNet
from .model.runtime import check_runtime, check_threads
from .outputs import MANIFEST, OutputSet
from .report.html import Report
from .scoring.metrics import PRFNET, PRFNetMetric, canonical_metric_names
from .stats.bootstrap import accuracy_ci
from .stats.ceilings import clic_correct, clic_noise_ceiling
from .store import DEFAULT_STORE, ScoreStore, resolve_store
from .synth.codec_set import MIN_SIZE, synthesize_codec_clic
from .training import TrainConfig, load_train_config, train
from .training.curves import plot_training_curves, read_metrics_csv
from .training.preflight import check_trainer_settings
from .training.run import STEP_DIRS, STEP_MODEL

log = logging.getLogger(__name__)

#: What a demo writes into its folder (stale entries of these kinds are removed when a new demo is published).
DEMO_OUTPUTS = ("data", "train", "eval", "model.safetensors", "results.json", "report.html")
#: Baselines the demo compares against: every classic metric that runs offline, LPIPS/DISTS when present.
DEMO_METRICS = ("prfnet", "psnr", "ssim", "ms_ssim", "fsim", "vif", "gmsd", "haarpsi", "mdsi", "lpips", "dists")
KINDS = ("psnr_close", "psnr_apart")
#: the simulated panel of the demo set: a steeper psychometric function than `prfnet synth`'s default (slope 4), so
#: that the votes separate metrics on a few dozen references; 12 triplets per reference, 9 of them within 2 dB PSNR
DEMO_SLOPE = 8.0
DEMO_TRIPLETS_PER_REF = 12


@dataclass
class DemoResult:
    """Paths written by the demo, the per-metric results (:func:`summarise`), the hidden judge's ceiling
    (:func:`judge_ceiling_on`) and the example comparison."""

    out_dir: Path
    model_path: Path
    report_path: Path
    results_path: Path
    results: dict[str, dict]
    unavailable: dict[str, str]
    comparison: Comparison
    compared: Triplet
    ceiling: dict


def split_demo_data(data_dir: Path, holdout: float, seed: int) -> tuple[set[str], set[str]]:
    """Split the synthetic set by reference; write the training oracle and the held-out test files.
    Returns (training references, held-out references)."""
    oracle = read_clic_oracle(data_dir / "oracle.csv")
    train_items, test_items = split_by_reference(oracle.triplets, holdout, seed)
    train_refs, test_refs = {t.ref for t in train_items}, {t.ref for t in test_items}
    write_clic_csv(data_dir / "train_oracle.csv", [(t, v) for t, v in oracle.rows if t.ref in train_refs])
    write_clic_csv(data_dir / "test_oracle.csv", [(t, v) for t, v in oracle.rows if t.ref in test_refs])
    validation = read_clic_triplets(data_dir / "validation.csv")
    write_csv(data_dir / "test_validation.csv", [(t.ref, t.a, t.b) for t in validation if t.ref in test_refs])
    kinds = read_kinds(data_dir / "kinds.csv")
    write_csv(
        data_dir / "test_kinds.csv",
        [(*key, kind) for key, kind in kinds.items() if key[0] in test_refs],
    )
    return train_refs, test_refs


#: what results.json keeps of each metric's evaluation entry (where present)
SUMMARY_KEYS = ("accuracy", "accuracy_ci95", "accuracy_by_kind", "paired_difference", "brier", "ece", "n_references")


def summarise(results: dict[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """(the demo's results.json mapping, {unavailable metric: reason}).

    Per metric: ``accuracy`` (official scorer) with ``accuracy_ci95``, ``accuracy_by_kind`` (``psnr_close``,
    ``psnr_apart``), ``n_references``; per baseline ``paired_difference`` ({"mean", "ci95", ...}: PRFNet minus
    the baseline); for PRFNet ``brier`` and ``ece`` against the held-out vote fractions. Strict JSON values: an
    undefined figure is ``None``, never NaN."""
    summary, unavailable = {}, {}
    for name, entry in results.items():
        if not entry.get("available", True):
            unavailable[name] = entry.get("reason", "unavailable")
            continue
        kept = {key: entry[key] for key in SUMMARY_KEYS if key in entry}
        by_kind = entry.get("accuracy_by_kind") or {}
        kept["accuracy_by_kind"] = {k: by_kind.get(k) for k in KINDS}
        summary[name] = kept
    return json_safe(summary), unavailable


def judge_ceiling_on(data_dir: Path, oracle_csv: Path) -> dict:
    """The hidden judge's official accuracy (with its reference-bootstrap interval) on the votes of ``oracle_csv``,
    and the noise ceiling of those votes: what no metric can be expected to beat on this set."""
    with open(data_dir / "files.csv", newline="", encoding="utf-8") as f:
        distance = {(row["reference"], row["image"]): float(row["judge_distance"]) for row in csv.DictReader(f)}
    rows = [(*t.names(), int(v)) for t, v in read_clic_oracle(oracle_csv).rows]
    # the judge as a submission, ties to T = 0 as the devkit (stats.judge_ceiling's rule), scored key by key
    submission = {(o, a, b): int(distance[(o, a)] > distance[(o, b)]) for o, a, b, _ in rows}
    correct, refs = clic_correct(rows, submission)
    interval = accuracy_ci(correct, refs)  # its estimate is matches / keys, the official accuracy
    return {
        "judge_accuracy": interval.estimate,
        "judge_accuracy_ci95": [interval.low, interval.high],
        "n_keys": len(correct),
        "noise_ceiling": clic_noise_ceiling(rows)["ceiling"],
    }


def run_demo(
    out_dir: str | Path = "prfnet_demo",
    refs: int = 48,
    size: int = 256,
    seed: int = 0,
    holdout: float = 1 / 3,
    config: str | Path = "demo",
    metrics: Sequence[str] | None = None,
    progress: bool = True,
    stage: Callable[[str], None] = log.info,
    *,
    store: ScoreStore | str | Path | None = DEFAULT_STORE,
    runtime: str = "torch",
    threads: int | None = None,
) -> DemoResult:
    """Run the whole pipeline into ``out_dir`` (see the module docstring for what it writes).

    A previous demo in ``out_dir`` is replaced. ``metrics``: default :func:`default_demo_metrics`. ``stage``
    receives one line per stage. ``store``: the evaluation's score store (:func:`prfnet.store.resolve_store`;
    default ``out_dir/scores.sqlite``, outside the set, kept between runs; ``None``: none). The folder and the
    store are checked before anything is written or trained. ``runtime``, ``threads``: what scores the trained model
    in the evaluation and the comparison (:func:`prfnet.api.load_model`; training is PyTorch's), checked first.
    """
    check_runtime(runtime)
    check_threads(threads)
    metrics = tuple(metrics or default_demo_metrics())
    canonical_metric_names(metrics)  # an unknown name fails before the demo writes or trains anything
    if size < MIN_SIZE:
        raise ConfigError(f"--size {size}: the codec set needs images of at least {MIN_SIZE} px (codec rate floors)")
    out_dir = Path(out_dir)
    cfg = demo_config(config, size, seed)  # a bad --config or trainer setting fails here, before anything is written
    check_trainer_settings(cfg)
    outputs = OutputSet(out_dir, DEMO_OUTPUTS).check()  # the folder (once) and the store, before any work
    store = resolve_store(store, out_dir)
    data_dir = out_dir / "data"
    model_path, report_path, results_path = (out_dir / n for n in ("model.safetensors", "report.html", "results.json"))
    # every output is staged in out_dir/.run-<id>/ and moved into place at the end, manifest.json last
    stage_of = _Stage(outputs)  # what an interruption's message says
    with stage_of, outputs:  # stage_of exits last: it words an interruption once the set is discarded
        stage(f"1/5 encoding {refs} references of {size} px with 5 codecs, simulating the votes, into {data_dir}")
        synthesize_codec_clic(
            outputs.path("data"), refs, size, seed, slope=DEMO_SLOPE, triplets_per_ref=DEMO_TRIPLETS_PER_REF
        )
        train_refs, test_refs = split_demo_data(outputs.path("data"), holdout, seed)
        outputs.publish_now("data")  # in place before training: the run records the data folder's absolute path
        stage_of.doing, stage_of.kept = "training", data_dir

        stage(f"2/5 training both steps ({config} config) on {len(train_refs)} references; {len(test_refs)} held out")
        # resume_hint=None: the run folder is staged and goes with the rest on an interruption (no --resume)
        trained = train(cfg, data_dir, outputs.path("train"), progress=progress, resume_hint=None)
        model = load_model(trained.model_path, "cpu", runtime=runtime, threads=threads)
        model.save_pretrained(outputs.path("model.safetensors"), metadata={"trained_with": "prfnet demo"})

        ceiling = judge_ceiling_on(data_dir, data_dir / "test_oracle.csv")
        step1 = outputs.path("train") / STEP_DIRS["classification"] / STEP_MODEL
        brier_step1 = None
        if PRFNET in metrics and step1.is_file():
            brier_step1 = _held_out_brier(load_model(step1, "cpu", runtime=runtime, threads=threads), data_dir)

        stage_of.doing = "evaluating"
        stage(f"3/5 evaluating PRFNet and the baselines on the held-out references ({', '.join(metrics)})")
        results = evaluate_clic(
            data_dir / "test_validation.csv",
            root=data_dir / "images",
            oracle=data_dir / "test_oracle.csv",
            metrics=metrics,
            model=model,
            kinds=data_dir / "test_kinds.csv",
            out_dir=outputs.sub("eval"),
            store=store,
            progress=progress,
            report_path=outputs.path("report.html"),
            report_title="prfnet demo: simulated CLIC task, real codecs, simulated votes (NOT human judgments)",
            extend_report=lambda report: _add_training_section(
                report, trained.metrics_csv, train_refs, test_refs, ceiling, brier_step1
            ),
        )
        stage(f"4/5 report written to {report_path}")
        summary, unavailable = summarise(results)
        if PRFNET in summary:  # what step 2 (regression on the vote fractions) changed in step 1's calibration
            summary[PRFNET]["brier_step1"] = brier_step1
        write_json(outputs.path("results.json"), {**summary, "ceiling": ceiling})

        stage_of.doing = "comparing"
        compared = _first_of_kind(data_dir / "test_kinds.csv", "psnr_close")
        images = data_dir / "images"
        comparison = compare_files(model, images / compared.ref, images / compared.a, images / compared.b)
        stage(f"5/5 compare on a held-out triplet of two codecs within 1 dB PSNR: {compared.key()}")
        stage_of.doing = "publishing its outputs"
    return DemoResult(
        out_dir, model_path, report_path, results_path, summary, unavailable, comparison, compared, ceiling
    )


class _Stage:
    """What the demo is doing (``doing``) and which of its outputs are in place already (``kept``: the data folder,
    published before training). As the outermost context of the run, it turns a KeyboardInterrupt (Ctrl-C, or
    :class:`Terminated` where a SIGTERM handler raises it, as the CLI's) into one of the same type whose message says
    what is left once the staged outputs are discarded, its training run included: the demo has no resume."""

    def __init__(self, outputs: OutputSet) -> None:
        self.outputs = outputs
        self.doing: str = "encoding"
        self.kept: Path | None = None

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if not isinstance(exc, KeyboardInterrupt):
            return False
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        if self._published():  # the signal was held back while the set moved into place, and came after
            raise type(exc)(f"demo {what} once its outputs were in place: {self.outputs.root} holds them all") from exc
        left = (
            f"of this run only the simulated set {self.kept} was kept" if self.kept else "nothing of this run was kept"
        )
        raise type(exc)(f"demo {what} while {self.doing}: {left}; run prfnet demo again (it starts over)") from exc

    def _published(self) -> bool:
        """Whether the folder's manifest is this run's (the whole set is in place)."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            manifest = json.loads((self.outputs.root / MANIFEST).read_text(encoding="utf-8"))
            return manifest.get("run_id") == self.outputs.run_id
        return False


def _held_out_brier(model: PRFNet, data_dir: Path) -> float | None:
    """Brier score of a model's P(A closer) against the held-out vote fractions (step 1's model, for the record of
    what step 2 changed)."""
    results = evaluate_clic(
        data_dir / "test_validation.csv",
        root=data_dir / "images",
        oracle=data_dir / "test_oracle.csv",
        metrics=[PRFNetMetric(model)],
        progress=False,
    )
    return results[PRFNET].get("brier")


def default_demo_metrics() -> tuple[str, ...]:
    """:data:`DEMO_METRICS` without LPIPS and DISTS where their VGG16 trunk would have to be downloaded first (528 MB):
    the demo runs offline and in minutes; ``--metrics ...,lpips,dists`` asks for them (and the download)."""
    return tuple(m for m in DEMO_METRICS if m not in ("lpips", "dists") or not learned.needs_download(m))


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


def _first_of_kind(kinds_csv: Path, kind: str) -> Triplet:
    kinds = read_kinds(kinds_csv)
    return Triplet(*next((key for key, k in kinds.items() if k == kind), next(iter(kinds))))


def _add_training_section(
    report: Report,
    metrics_csv: Path,
    train_refs: set[str],
    test_refs: set[str],
    ceiling: dict,
    brier_step1: float | None,
) -> None:
    """Put the demo's set-up, the ceiling and both steps' training curves in front of the evaluation sections."""
    low, high = ceiling["judge_accuracy_ci95"]
    section = Report("")
    section.add_heading("Demo set-up")
    section.add_text(
        "A simulated CLIC task (docs/synthetic.md): real photos coded by five real codecs at matched bits per pixel, "
        "and votes drawn from a hidden judge through a psychometric function, so votes are often split. "
        f"{len(train_refs)} references for training, {len(test_refs)} held out; every figure below is on the "
        "held-out references only, with 95 % intervals that resample references. Simulated data: it shows that the "
        "training and evaluation work, not how well PRFNet agrees with people."
    )
    step1 = "n/a" if brier_step1 is None else f"{brier_step1:.4f}"
    section.add_text(
        f"Ceiling: the hidden judge itself scores {ceiling['judge_accuracy']:.3f} [{low:.3f}, {high:.3f}] on the "
        f"{ceiling['n_keys']} held-out keys (noise ceiling of the votes: {ceiling['noise_ceiling']:.3f}). "
        f"PRFNet's Brier score against the vote fractions after step 1 (classification): {step1}; after step 2 "
        "(regression): in the calibration section below."
    )
    section.add_heading("Training curves (both steps)")
    section.add_figure(plot_training_curves(read_metrics_csv(metrics_csv)), "Loss and validation accuracy per epoch.")
    report.merge(section, first=True)
