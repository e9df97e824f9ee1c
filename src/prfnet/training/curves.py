"""Per-epoch metrics of both steps (merged from Lightning's CSVLogger files), ``metrics.csv`` and ``report.html``.

Columns of ``metrics.csv``: ``step`` (classification | regression), ``epoch`` (0-based, per step),
``train_loss`` (mean over the epoch; BCE in step 1, MSE in step 2), ``val_loss`` (the step's loss on the
validation set), ``val_acc`` (agreement with the majority label, ties 0.5), ``val_agreement`` (expected
agreement with a random judge), ``val_bce``, ``val_mse`` (sigmoid(logit) vs p_a) and ``lr`` (mean LR of the
non-backbone parameters). Empty cells: not measured that epoch.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from ..ioutil import write_csv
from ..report.html import Report
from .config import TrainConfig

COLUMNS = ("step", "epoch", "train_loss", "val_loss", "val_acc", "val_agreement", "val_bce", "val_mse", "lr")
_LOGGED = {
    "train/loss_epoch": "train_loss",
    "val/loss": "val_loss",
    "val/acc": "val_acc",
    "val/agreement": "val_agreement",
    "val/bce": "val_bce",
    "val/mse": "val_mse",
    "lr": "lr",
}
STEP_TITLES = {"classification": "step 1: classification (BCE)", "regression": "step 2: regression (MSE)"}


def _version(path: Path) -> int:
    match = re.search(r"version_(\d+)", str(path))
    return int(match.group(1)) if match else -1


def read_step_log(step_dir: Path) -> dict[int, dict[str, float]]:
    """epoch -> {column: value} from every ``logs/version_*/metrics.csv`` of a step (later versions, i.e.
    resumed runs, override earlier ones for the same epoch)."""
    per_epoch: dict[int, dict[str, float]] = {}
    files = sorted((step_dir / "logs").glob("version_*/metrics.csv"), key=_version)
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if not row.get("epoch"):
                    continue
                record = per_epoch.setdefault(int(float(row["epoch"])), {})
                for logged, column in _LOGGED.items():
                    if row.get(logged) not in (None, ""):
                        record[column] = float(row[logged])
    return per_epoch


def merge_step_metrics(step_dirs: dict[str, Path]) -> list[dict]:
    """Rows (one per step and epoch, in training order) with the :data:`COLUMNS` keys (None if not measured)."""
    rows = []
    for step, directory in step_dirs.items():
        for epoch, values in sorted(read_step_log(directory).items()):
            rows.append({"step": step, "epoch": epoch, **{c: values.get(c) for c in COLUMNS[2:]}})
    return rows


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    write_csv(path, ([_csv_cell(c, row.get(c)) for c in COLUMNS] for row in rows), COLUMNS)


def _csv_cell(column: str, value) -> str:
    """Blank for None; floats with repr() so that reading the file back gives the same numbers."""
    if value is None:
        return ""
    return repr(float(value)) if column not in ("step", "epoch") else str(value)


def read_metrics_csv(path: Path) -> list[dict]:
    """Rows of a ``metrics.csv`` written by :func:`write_metrics_csv` (numbers as float/int, blanks as None)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        parsed: dict = {"step": row.get("step"), "epoch": int(row["epoch"]) if row.get("epoch") else None}
        parsed.update({c: float(row[c]) if row.get(c) else None for c in COLUMNS[2:]})
        out.append(parsed)
    return out


def best_validation(rows: list[dict]) -> dict:
    """The row with the highest ``val_acc`` (earliest on ties) as ``{"step", "epoch", "val_*"}``; {} if none."""
    measured = [r for r in rows if r.get("val_acc") is not None and not math.isnan(r["val_acc"])]
    if not measured:
        return {}
    best = max(measured, key=lambda r: r["val_acc"])  # max keeps the first of equal values
    return {k: best[k] for k in ("step", "epoch", "val_acc", "val_agreement", "val_loss", "val_bce", "val_mse")}


def plot_training_curves(rows: list[dict]):
    """Figure of the loss per step and the validation accuracy over both steps, from :func:`read_metrics_csv`
    rows (a matplotlib ``Figure``; pyplot and its backend are left alone)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    steps = [s for s in STEP_TITLES if any(r["step"] == s for r in rows)]
    fig = Figure(figsize=(4.2 * (len(steps) + 1), 3.4))
    axes = fig.subplots(1, len(steps) + 1, squeeze=False)
    for ax, step in zip(axes[0], steps, strict=False):
        part = [r for r in rows if r["step"] == step]
        for column, style in (("train_loss", "-o"), ("val_loss", "--s")):
            points = [(r["epoch"] + 1, r[column]) for r in part if r[column] is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=column.replace("_", " "), markersize=3)
        ax.set_title(STEP_TITLES[step], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    ax = axes[0][-1]
    for column, style in (("val_acc", "-o"), ("val_agreement", "--s")):
        points = [(i + 1, r[column]) for i, r in enumerate(rows) if r[column] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=column.replace("_", " "), markersize=3)
    boundary = sum(1 for r in rows if r["step"] == "classification")
    if 0 < boundary < len(rows):
        ax.axvline(boundary + 0.5, color="grey", linestyle=":", label="step 1 | step 2")
    measured = [r[c] for r in rows for c in ("val_acc", "val_agreement") if r[c] is not None]
    if measured:
        ax.set_ylim(min(0.5, min(measured) - 0.02), 1.01)
    ax.set_title("validation (both steps)", fontsize=10)
    ax.set_xlabel("epoch, both steps in a row")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def _flatten(prefix: str, value) -> list[list]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(f"{prefix}{k}.", v)]
    return [[prefix[:-1], str(value)]]


def write_training_report(path: Path, rows: list[dict], config: TrainConfig, description: str) -> dict:
    """Write ``report.html`` (curves of both steps, per-epoch table, best epoch, config); returns the best epoch."""
    report = Report("PRFNet training run")
    report.add_text(description)
    report.add_text(
        "Step 1 (classification) minimises BCE-with-logits against the majority label; step 2 (regression) "
        "minimises the MSE between sigmoid(logit) and the vote fraction p_a, starting from the step-1 weights. "
        "val acc: agreement with the majority label (ties count 0.5); val agreement: expected agreement with "
        "a random judge (the BAPPS 2AFC score).",
        note=True,
    )
    best = best_validation(rows)
    if rows:
        report.add_heading("Training curves")
        report.add_figure(
            plot_training_curves(rows), "loss per step (left), validation accuracy over both steps (right)"
        )
    if best:
        report.add_heading("Best validation epoch")
        report.add_table(list(best), [list(best.values())], floatfmt=".4f")
    report.add_heading("Per-epoch metrics")
    if rows:
        table = [[("" if r[c] is None else r[c]) for c in COLUMNS] for r in rows]
        report.add_table(list(COLUMNS), table, floatfmt=".4f")
    else:
        report.add_text("no epoch was logged")
    report.add_heading("Configuration")
    report.add_table(["key", "value"], _flatten("", config.to_dict()))
    report.write(path)
    return best
