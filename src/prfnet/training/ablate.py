"""``ablate``: train the variants the paper never ablated from one config, then compare them on held-out triplets.

Each variant (and seed) is an ordinary, resumable run folder made by :func:`prfnet.training.train`. Layout of
``out/`` (see ``docs/ablations.md``)::

    <variant>/seed<k>/     a run folder of ``prfnet train`` (config.yaml, val_triplets.csv, model.safetensors, ...)
    ablation.json          per variant and seed: accuracy on the run's val_triplets.csv with a 95 % interval that
                           resamples references, val agreement, the mean over seeds, the paired difference to paper
    ablation.png           accuracy with its interval per variant and seed
    report.html            a table of the above and the plot, self-contained
    manifest.json          written last: the three files above with their sizes and SHA-256 (:mod:`prfnet.outputs`);
                           the run folders are resumable work beside the set, not part of it

Variants are config overrides (:data:`VARIANTS`, plus ``backbone=<timm name>``); seed ``k`` sets ``seed: k``.
The validation hold-out of ``train`` is drawn from ``seed`` (``load_training_data``), so every variant of one seed is
evaluated on the same triplets, and paired differences only pair runs of the same seed (checked triplet by triplet).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ..data import LabeledTriplet, TripletDataset
from ..errors import ConfigError, DataError
from ..ioutil import atomic_write, json_safe, write_json
from ..model import PRFNet
from ..model.backbone import _timm_kwargs
from ..outputs import OutputSet
from ..stats.bootstrap import accuracy_ci, paired_difference
from .ablation_report import plot_ablation, write_report
from .config import TrainConfig, load_train_config
from .preflight import check_trainer_settings
from .run import env_global_rank_is_zero, train
from .run_folder import FINAL_MODEL, holds_a_run

log = logging.getLogger(__name__)

#: variant name -> config overrides ({"key.sub": value}, as ``--set``)
VARIANTS: dict[str, dict] = {
    "paper": {},
    "concat": {"model.pair_block": "concat"},
    "single_scale": {"model.fusion": "single_scale"},
    "no_attention": {"model.attention": False},
    "step1_only": {"steps.regression.epochs": 0},
    "step2_only": {"steps.classification.epochs": 0},
}
BACKBONE_PREFIX = "backbone="
REFERENCE = "paper"
ABLATION_JSON, ABLATION_PNG, REPORT_HTML = "ablation.json", "ablation.png", "report.html"
#: the sweep's own files, published together with ``manifest.json`` (the run folders beside them are resumable work)
ABLATION_OUTPUTS = (ABLATION_JSON, ABLATION_PNG, REPORT_HTML)
FORMAT, VERSION = "prfnet-ablation", 1
#: settings that may change between a sweep and its rerun (where and how fast it runs, where the data lie)
_HARDWARE_KEYS = {
    "trainer": ("accelerator", "devices", "num_nodes", "strategy", "process_group_backend", "cpu_threads"),
    "data": ("root", "num_workers"),
}


@dataclass
class AblationResult:
    """Where the sweep's outputs are, its ``ablation.json`` document, and which runs this call trained."""

    json_path: Path
    plot_path: Path
    report_path: Path
    document: dict = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)  # "<variant>/seed<k>" run by this call (not already finished)


def variant_overrides(name: str) -> dict:
    """The config overrides of a variant name; :class:`ConfigError` (one line) for an unknown name."""
    if name in VARIANTS:
        return dict(VARIANTS[name])
    if name.startswith(BACKBONE_PREFIX) and name[len(BACKBONE_PREFIX) :].strip():
        backbone = name[len(BACKBONE_PREFIX) :].strip()
        # the config's local backbone weights belong to its own backbone; the new one gets the hub's (or none)
        return {"model.backbone": backbone, "model.backbone_weights": None}
    known = ", ".join([*VARIANTS, BACKBONE_PREFIX + "<timm name>"])
    raise ConfigError(f"unknown ablation variant {name!r} (known: {known})")


def select_variants(variants: list[str] | None, alt_backbone: str | None) -> list[str]:
    """The variants to run, in order: ``variants`` (default: every one of :data:`VARIANTS`), plus
    ``backbone=<alt_backbone>`` when given; ``backbone`` alone in ``variants`` means that one."""
    alt = f"{BACKBONE_PREFIX}{alt_backbone.strip()}" if alt_backbone and alt_backbone.strip() else None
    names = []
    for name in [v.strip() for v in variants] if variants else list(VARIANTS):
        if name == "backbone":
            if alt is None:
                raise ConfigError("variant 'backbone' needs --alt-backbone NAME (a timm model name)")
            name = alt
        if name and name not in names:
            names.append(name)
    if alt is not None and not variants and alt not in names:
        names.append(alt)
    if not names:
        raise ConfigError("no ablation variant selected")
    for name in names:
        overrides = variant_overrides(name)
        backbone = overrides.get("model.backbone")
        if backbone is not None:
            import timm

            if not timm.is_model(_timm_kwargs(backbone, "identity")[0]):
                raise ConfigError(f"variant {name!r}: unknown backbone {backbone!r}: not a timm model name")
    return names


def folder_name(variant: str) -> str:
    """The run folder of a variant below ``out/`` (characters other than letters, digits, ``._=-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", variant)


def run_dir(out_dir: Path, variant: str, seed: int) -> Path:
    return Path(out_dir) / folder_name(variant) / f"seed{seed}"


def fingerprint(config: TrainConfig) -> dict:
    """The config as ``ablation.json`` stores it: everything but the hardware and data-folder settings."""
    data = config.to_dict()
    for section, keys in _HARDWARE_KEYS.items():
        for key in keys:
            data[section].pop(key, None)
    return data


def _differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(before) | set(now))
    out = []
    for key in keys:
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _check_previous(json_path: Path, config: TrainConfig) -> None:
    """:class:`ConfigError` when ``json_path`` holds the ablation of another config (or is not ours)."""
    if not json_path.exists():
        return
    try:
        previous = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{json_path} exists but is not a readable ablation.json ({exc}): choose another --out"
        ) from None
    ours = isinstance(previous, dict) and previous.get("format") == FORMAT
    if not ours or not isinstance(previous.get("config"), dict):
        raise ConfigError(f"{json_path} is not an ablation.json of prfnet ablate: choose another --out")
    changed = _differences(previous["config"], fingerprint(config))
    if changed:
        shown = ", ".join(changed[:5]) + (f" (and {len(changed) - 5} more)" if len(changed) > 5 else "")
        raise ConfigError(
            f"{json_path} holds the ablation of a different config (differs in {shown}): use the same config, "
            "or choose another --out"
        )


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class RunScores:
    """Per validation triplet of one run: ``keys`` (ref, a, b), ``refs`` (the bootstrap groups), ``correct``
    (1 / 0 / 0.5 against the majority label) and ``agreement`` (p_a * pred + (1 - p_a) * (1 - pred))."""

    keys: list[tuple[str, str, str, float]]
    refs: list[str]
    correct: np.ndarray
    agreement: np.ndarray


def read_val_triplets(path: Path) -> list[LabeledTriplet]:
    """The ``ref,a,b,p_a,votes,kind`` rows of a run's ``val_triplets.csv``."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [
            LabeledTriplet(r["ref"], r["a"], r["b"], float(r["p_a"]), int(r["votes"] or 1), r.get("kind") or "")
            for r in rows
        ]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot read the validation triplets ({exc})") from None


def _device(config: TrainConfig) -> torch.device:
    wants_gpu = config.trainer.accelerator in ("auto", "gpu", "cuda")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def evaluate_run(folder: Path, config: TrainConfig) -> RunScores:
    """Score the trained model of a run folder on its ``val_triplets.csv`` (the run's centre crop): predicted side =
    sign of the logit (a zero logit counts 0.5), truth = the majority label (a tie counts 0.5)."""
    val_csv = folder / "val_triplets.csv"
    if not val_csv.is_file():
        raise DataError(f"{val_csv}: missing; the ablation needs a validation set (data.val.holdout_fraction > 0)")
    items = read_val_triplets(val_csv)
    if not items:
        raise DataError(f"{val_csv}: no validation triplets")
    device = _device(config)
    model = PRFNet.from_pretrained(folder / FINAL_MODEL, map_location=device).eval()
    dataset = TripletDataset(items, None, crop=config.data.val.crop, train=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.data.val.batch_size or config.data.batch_size)
    correct, agreement = [], []
    for batch in loader:
        logit = model(batch["ref"].to(device), batch["a"].to(device), batch["b"].to(device)).float().cpu()
        pred = (torch.sign(logit) + 1) / 2
        correct.append(1 - (pred - batch["label"]).abs())
        agreement.append(batch["p_a"] * pred + (1 - batch["p_a"]) * (1 - pred))
    return RunScores(
        [(t.ref, t.a, t.b, t.p_a) for t in items],
        [t.ref for t in items],
        torch.cat(correct).double().numpy(),
        torch.cat(agreement).double().numpy(),
    )


# -- the sweep -------------------------------------------------------------------------------------
def variant_config(config: TrainConfig, variant: str, seed: int) -> TrainConfig:
    """``config`` with the variant's overrides and ``seed``; :class:`ConfigError` naming the variant when invalid."""
    overrides = {**variant_overrides(variant), "seed": seed}
    try:
        return load_train_config(config.to_dict(), overrides)
    except ConfigError as exc:
        raise ConfigError(f"variant {variant!r}, seed {seed}: {exc}") from None


def run_ablation(
    config: TrainConfig,
    data_dir: Path | None,
    out_dir: Path,
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
    alt_backbone: str | None = None,
    progress: bool = True,
    callbacks: list[Callback] | None = None,
    n_boot: int = 2000,
) -> AblationResult:
    """Train every variant and seed (resuming interrupted runs, skipping finished ones), then write
    ``ablation.json``, ``ablation.png`` and ``report.html`` to ``out_dir`` (layout in the module docstring).

    ``seeds``: default ``[config.seed]``. Checks before any training: the variant names, every variant's
    config, the output folder, and an ``ablation.json`` already in ``out_dir`` (it must be of the same config).
    Runs on every DDP rank as :func:`train` does; only global rank 0 evaluates and writes the sweep's files.
    """
    out_dir = Path(out_dir)
    names = select_variants(variants, alt_backbone)
    seeds = list(dict.fromkeys(seeds if seeds else [config.seed]))
    configs = {(v, s): variant_config(config, v, s) for v in names for s in seeds}
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    zero = env_global_rank_is_zero()
    json_path = out_dir / ABLATION_JSON
    outputs = OutputSet(out_dir, ABLATION_OUTPUTS).check("ablation folder") if zero else None  # before any training
    for cfg in configs.values():  # trainer settings too: a mistake is one line before the folder is marked
        check_trainer_settings(cfg)
    _check_previous(json_path, config)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "status": "running",
        "config": fingerprint(config),
        "variants": names,
        "seeds": seeds,
    }
    if zero and not json_path.exists():  # marks the folder as this config's sweep from the start (with a manifest,
        with OutputSet(out_dir, (ABLATION_JSON,)).check("ablation folder").writing() as sink:  # so it stays ours)
            write_json(sink.path(ABLATION_JSON), document)

    trained = []
    for (variant, seed), cfg in configs.items():
        folder = run_dir(out_dir, variant, seed)
        resume = holds_a_run(folder)
        if resume and (folder / FINAL_MODEL).is_file():
            log.info("%s: finished before, not trained again", folder)
        else:
            log.info("%s: %s", folder, "resuming" if resume else "training")
            trained.append(f"{folder_name(variant)}/seed{seed}")
        train(
            cfg, data_dir, folder, resume=resume, progress=progress, callbacks=callbacks,
            resume_hint="rerun the same prfnet ablate command to continue",
        )  # fmt: skip

    result = AblationResult(json_path, out_dir / ABLATION_PNG, out_dir / REPORT_HTML, trained=trained)
    if not zero:
        return result  # DDP worker processes: rank 0 evaluates and writes
    scores = {key: evaluate_run(run_dir(out_dir, *key), cfg) for key, cfg in configs.items()}
    document.update(summarise(scores, names, seeds, n_boot), status="complete")
    document = json_safe(document)
    result.document = document
    fig = plot_ablation(document)
    with outputs.writing() as sink:  # staged, then published as one set with manifest.json last
        write_json(sink.path(ABLATION_JSON), document)
        with atomic_write(sink.path(ABLATION_PNG), "wb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
        write_report(sink.path(REPORT_HTML), document, fig)
    return result


def summarise(scores: dict[tuple[str, int], RunScores], names: list[str], seeds: list[int], n_boot: int) -> dict:
    """The ``results`` of ``ablation.json``: per variant, per seed accuracy (reference-bootstrap interval) and
    agreement, their mean over seeds, and the paired difference to ``paper`` on the same triplets."""
    results = {}
    for variant in names:
        runs, diffs = {}, {}
        for seed in seeds:
            s = scores[(variant, seed)]
            interval = accuracy_ci(s.correct, s.refs, n_boot=n_boot, seed=0)
            runs[str(seed)] = {
                "run": f"{folder_name(variant)}/seed{seed}",
                "accuracy": interval.to_dict(),
                "agreement": float(s.agreement.mean()),
            }
            if (REFERENCE, seed) in scores:
                base = scores[(REFERENCE, seed)]
                if s.keys != base.keys:
                    raise DataError(
                        f"{variant}/seed{seed} and {REFERENCE}/seed{seed} were validated on different triplets "
                        "(their val_triplets.csv differ): were they trained on different data?"
                    )
                diffs[str(seed)] = paired_difference(s.correct, base.correct, s.refs, n_boot=n_boot, seed=0)
        accuracies = [r["accuracy"]["estimate"] for r in runs.values()]
        entry = {
            "overrides": variant_overrides(variant),
            "runs": runs,
            "mean": {
                "accuracy": float(np.mean(accuracies)),
                "agreement": float(np.mean([r["agreement"] for r in runs.values()])),
                "n_seeds": len(runs),
            },
            "difference_to_paper": None,
        }
        if diffs:
            entry["difference_to_paper"] = {
                "per_seed": diffs,
                "mean": float(np.mean([d["mean"] for d in diffs.values()])),
            }
        results[variant] = entry
    return {
        "reference_variant": REFERENCE,
        "holdout": "each seed's runs share the validation triplets of that seed (data split seeded by `seed`); "
        "paired differences pair runs of the same seed only",
        "bootstrap": {"groups": "reference", "n_boot": n_boot, "seed": 0, "level": 0.95},
        "results": results,
    }
