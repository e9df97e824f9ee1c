"""Per-epoch training metrics (``prfnet.training.curves``): the logs of a resumed step merged (the later version
wins), ``metrics.csv`` read back with the same numbers, and the best validation row (earliest on ties)."""

from __future__ import annotations

from prfnet.training.curves import (
    COLUMNS,
    best_validation,
    merge_step_metrics,
    read_metrics_csv,
    write_metrics_csv,
)


def _log(step_dir, version: int, lines: list[str]) -> None:
    folder = step_dir / "logs" / f"version_{version}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,train/loss_epoch,val/acc\n" + "\n".join(lines) + "\n")


def test_resumed_logs_merge_and_the_csv_reads_back_the_same_numbers(tmp_path):
    step = tmp_path / "step1_classification"
    _log(step, 0, ["0,0.9,0.5", "1,0.8,0.25"])  # epoch 1 was cut short and trained again in version 1
    _log(step, 1, ["1,0.7,0.75", "2,0.1,0.75", ",,"])  # a row without an epoch is skipped
    rows = merge_step_metrics({"classification": step})
    assert [(r["epoch"], r["train_loss"], r["val_acc"]) for r in rows] == [
        (0, 0.9, 0.5),
        (1, 0.7, 0.75),
        (2, 0.1, 0.75),
    ]
    assert all(r["step"] == "classification" and r["val_mse"] is None for r in rows)
    rows[0]["lr"] = 1 / 3  # needs every digit to read back equal
    write_metrics_csv(tmp_path / "metrics.csv", rows)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert read_metrics_csv(tmp_path / "metrics.csv") == [{c: r.get(c) for c in COLUMNS} for r in rows]
    best = best_validation(rows)
    assert (best["epoch"], best["val_acc"]) == (1, 0.75)  # the earlier of the two equal accuracies
    assert best_validation([{**rows[0], "val_acc": None}]) == {}
