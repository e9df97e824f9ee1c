"""Crash safety of training: a run killed with SIGKILL resumes from its newest readable checkpoint and ends with
the weights of an uninterrupted run; a checkpoint cut short is skipped; step checkpoints resume mid-epoch with
the same batches; ``--resume`` reads the data folder back, refuses a folder without a run, takes new epochs and
optimizer settings, keeps finished work and refuses changes it cannot continue.

CPU only, timm's ``test_resnet`` backbone, 64 px images, 3 training triplets (batch size 1: 3 steps per epoch).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

from prfnet import ConfigError
from prfnet.cli import main
from prfnet.training import load_train_config, train
from prfnet.training.checkpoints import checkpoint_progress, newest_checkpoint
from prfnet.training.curves import read_metrics_csv
from tests.conftest import HELD_ENV, held_prfnet, wait_for_hold
from tests.training.test_datamodule import Record, tiny
from tests.training.test_run import TINY, InterruptAt

pytestmark = pytest.mark.usefixtures("one_thread")

STEP1 = "step1_classification"


def config_dict(**changes) -> dict:
    """TINY with batch size 1 (3 optimizer steps per epoch), one thread, and ``changes`` (dotted keys)."""
    config = yaml.safe_load(yaml.safe_dump(TINY))
    changes = {"data.batch_size": 1, "trainer.cpu_threads": 1, **changes}
    for dotted, value in changes.items():
        node = config
        *parents, key = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return config


def max_difference(a: Path, b: Path) -> float:
    first, second = load_file(a), load_file(b)
    assert first.keys() == second.keys()
    return max(float((first[k].double() - second[k].double()).abs().max()) for k in first)


def epochs_logged(step_dir: Path, version: int) -> set[int]:
    with open(step_dir / "logs" / f"version_{version}" / "metrics.csv", newline="") as f:
        return {int(float(row["epoch"])) for row in csv.DictReader(f) if row.get("epoch")}


def readable_rolling(step_dir: Path) -> list[Path]:
    return [p for p in sorted((step_dir / "checkpoints").glob("step=*.ckpt")) if checkpoint_progress(p) is not None]


class RecordBatches(Callback):
    """(step, epoch, batch index, dataset indices) of every training batch."""

    def __init__(self):
        self.batches: list[tuple] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append((pl_module.step_name, trainer.current_epoch, batch_idx, batch["index"].tolist()))


@pytest.mark.slow
def test_sigkill_after_an_epoch_then_resume_gives_the_uninterrupted_weights(clic_dir, tmp_path):
    epochs = 8
    config_path = tmp_path / "tiny.yaml"
    settings = config_dict(**{"steps.classification.epochs": epochs, "steps.regression.epochs": 2})
    config_path.write_text(yaml.safe_dump(settings))
    full = train(load_train_config(config_path), clic_dir, tmp_path / "full", progress=False)

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "prfnet", "train", "-c", str(config_path), "--out", str(out), "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    (tmp_path / "tmp").mkdir()
    env["TMPDIR"] = str(tmp_path / "tmp")  # where Lightning's checkpoint writes start: a kill may leave a file there
    held = tmp_path / "held"  # the run stops right after its first checkpoint is written, and is killed there
    first_rolling = "os.path.basename(str(args[1])).startswith('step=')"
    hold = held_prfnet("lightning.pytorch:Trainer.save_checkpoint", when=first_rolling)
    process = subprocess.Popen(
        [*hold, *command[3:], "--data", str(clic_dir)], env=env | {HELD_ENV: str(held)}, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_hold(process, held)
        assert readable_rolling(out / STEP1)  # the first epoch's checkpoint, completely written
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (out / STEP1 / "model.safetensors").exists()  # killed inside step 1
    assert not (out / STEP1 / "checkpoints" / "interrupted.ckpt").exists()  # SIGKILL: nothing written on the way out

    # the help's example: no --data, the run's config.yaml knows it
    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert max_difference(out / "model.safetensors", full.model_path) <= 1e-6
    resumed = epochs_logged(out / STEP1, 1)
    assert min(resumed) >= 1 and len(resumed) < epochs  # continued after the checkpointed epoch(s), not from 0
    assert epochs_logged(out / STEP1, 0) | resumed == set(range(epochs))
    every_epoch = [(r["step"], r["epoch"]) for r in read_metrics_csv(full.metrics_csv)]
    assert [(r["step"], r["epoch"]) for r in read_metrics_csv(out / "metrics.csv")] == every_epoch


def test_a_checkpoint_cut_short_is_skipped(clic_dir, tmp_path, caplog):
    config = load_train_config(config_dict(**{"steps.classification.epochs": 3, "steps.regression.epochs": 0}))
    full = train(config, clic_dir, tmp_path / "full", progress=False)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config, clic_dir, out, progress=False, callbacks=[InterruptAt("classification", 2, 1)])
    folder = out / STEP1 / "checkpoints"
    # what a SIGKILL while the epoch-2 checkpoint (global step 6) is written leaves: no interrupted.ckpt, a cut file
    (folder / "interrupted.ckpt").unlink()
    previous, newest = folder / "step=000000003.ckpt", folder / "step=000000006.ckpt"
    assert checkpoint_progress(previous) == (3, 0) and checkpoint_progress(newest) == (6, 1)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])

    assert checkpoint_progress(newest) is None
    with caplog.at_level(logging.WARNING, logger="prfnet"):
        assert newest_checkpoint(out / STEP1) == previous
        result = train(config, None, out, resume=True, progress=False)
    assert "step=000000006.ckpt cannot be read" in caplog.text
    assert epochs_logged(out / STEP1, 1) == {1, 2}  # resumed after epoch 0
    assert max_difference(result.model_path, full.model_path) <= 1e-6
    # the cut file was written again; the checkpoint the resume started from is gone once the step finished
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["last.ckpt", "step=000000006.ckpt", "step=000000009.ckpt"]
    assert checkpoint_progress(newest) == (6, 1) and (folder / "last.ckpt").resolve() == folder / "step=000000009.ckpt"


@pytest.mark.parametrize("workers", [0, 2])
def test_step_checkpoints_resume_mid_epoch_with_the_same_batches(clic_dir, tmp_path, workers):
    changes = {"steps.classification.epochs": 3, "steps.regression.epochs": 0, "data.num_workers": workers}
    config = load_train_config(config_dict(**changes, **{"trainer.checkpoint_every_n_steps": 2}))
    reference = RecordBatches()
    full = train(config, clic_dir, tmp_path / "full", progress=False, callbacks=[reference])
    out = tmp_path / "run"
    before = RecordBatches()
    with pytest.raises(KeyboardInterrupt):  # before batch 2 of epoch 2, i.e. after global step 8
        train(config, clic_dir, out, progress=False, callbacks=[before, InterruptAt("classification", 2, 2)])
    folder = out / STEP1 / "checkpoints"
    (folder / "interrupted.ckpt").unlink()  # as after a SIGKILL: the step checkpoints are all there is
    # steps 2 and 4 (inside epochs 0 and 1), 3 and 6 (epoch ends), 8 (inside epoch 2): the two newest are kept
    assert sorted(p.name for p in folder.glob("step=*.ckpt")) == ["step=000000006.ckpt", "step=000000008.ckpt"]
    assert newest_checkpoint(out / STEP1) == folder / "step=000000008.ckpt"

    after = RecordBatches()
    result = train(config, None, out, resume=True, progress=False, callbacks=[after])
    assert after.batches == reference.batches[len(reference.batches) - 1 :]  # epoch 2's last batch only
    assert before.batches[:8] == reference.batches[:8]
    assert max_difference(result.model_path, full.model_path) <= 1e-6


def test_resume_with_another_data_folder_warns_and_uses_it(clic_dir, tmp_path, caplog):
    config = load_train_config(config_dict(**{"steps.classification.epochs": 2, "steps.regression.epochs": 0}))
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config, clic_dir, out, progress=False, callbacks=[InterruptAt("classification", 1, 0)])
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["root"] == str(clic_dir)
    moved = tmp_path / "moved"
    moved.symlink_to(clic_dir)
    with caplog.at_level(logging.WARNING, logger="prfnet"):
        train(config, moved, out, resume=True, progress=False)
    assert f"--data {moved} differs from the run's data.root {clic_dir}" in caplog.text
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["root"] == str(moved)
    assert (out / "model.safetensors").is_file()


def test_resume_without_a_run_is_refused(tmp_path, capsys):
    for out in (tmp_path / "missing", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        assert main(["train", "-c", "demo", "--out", str(out), "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert f"nothing to resume in {out}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "empty").iterdir())


class SigtermAt(Callback):
    """Sends this process SIGTERM (what a cluster's pre-emption does) before batch ``batch`` of epoch 0."""

    def __init__(self, batch: int):
        self.batch = batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_while_training_checkpoints_and_the_cli_exits_143(clic_dir, tmp_path, monkeypatch, capsys):
    """Lightning handles SIGTERM inside a fit: it checkpoints, and the command exits with 143 (128 + SIGTERM),
    as docs/training.md and the README say, with the resume hint as its one line; Ctrl-C stays 130."""
    from prfnet.training import lightning_module

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(config_dict(**{"steps.classification.epochs": 1, "data.batch_size": 1})))
    out = tmp_path / "run"
    sigterm = SigtermAt(1)
    original = lightning_module.PRFNetModule.configure_callbacks

    def with_sigterm(self):  # the command line takes no callbacks: add ours where Lightning collects the module's
        return [*(original(self) or []), sigterm]

    monkeypatch.setattr(lightning_module.PRFNetModule, "configure_callbacks", with_sigterm)
    previous = signal.getsignal(signal.SIGTERM)
    code = main(["train", "-c", str(config), "--data", str(clic_dir), "--out", str(out), "--no-progress"])
    assert signal.getsignal(signal.SIGTERM) == previous  # Lightning put the handler back
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 143, err
    assert len(err) == 1 and "terminated (SIGTERM) in step classification" in err[0] and "--resume" in err[0]
    assert (out / "step1_classification" / "checkpoints" / "interrupted.ckpt").is_file()
    assert not (out / "model.safetensors").exists()


def test_resume_with_more_epochs_and_new_optimizer_settings_uses_the_new_values(clic_dir, tmp_path, caplog):
    out = tmp_path / "run"
    before = {"steps.regression.epochs": 0, "steps.classification.epochs": 2, "data.batch_size": 2}
    with pytest.raises(KeyboardInterrupt):  # after 3 of 4 optimizer steps
        train(tiny(**before), clic_dir, out, progress=False, callbacks=[InterruptAt("classification", 1, 1)])
    changes = {
        "steps.classification.epochs": 3,
        "steps.classification.lr": 0.004,
        "steps.classification.weight_decay": 0.05,
    }
    record = Record()
    with caplog.at_level(logging.WARNING, logger="prfnet"):
        result = train(tiny(**before | changes), clic_dir, out, resume=True, progress=False, callbacks=[record])
    assert "steps.classification.epochs" in caplog.text and "steps.classification.lr" in caplog.text
    assert "steps.classification.weight_decay" in caplog.text

    # the new cosine schedule over 3 epochs of 2 steps, from the new lr, continued at step 3
    assert [s["global_step"] for s in record.steps] == [3, 4, 5]
    expected = [0.004 * 0.5 * (1 + math.cos(math.pi * i / 6)) for i in (3, 4, 5)]
    assert [s["groups"]["heads"]["lr"] for s in record.steps] == pytest.approx(expected, rel=1e-9)
    assert [s["groups"]["backbone"]["lr"] for s in record.steps] == pytest.approx([0.1 * x for x in expected])
    assert all(g["weight_decay"] == 0.05 for s in record.steps for g in s["groups"].values())
    assert [(r["step"], r["epoch"]) for r in read_metrics_csv(result.metrics_csv)] == [
        ("classification", e) for e in range(3)
    ]
    saved = yaml.safe_load((out / "config.yaml").read_text())["steps"]["classification"]
    assert (saved["epochs"], saved["lr"], saved["weight_decay"]) == (3, 0.004, 0.05)
    last = torch.load(out / "step1_classification" / "checkpoints" / "last.ckpt", weights_only=False)  # our file
    assert last["global_step"] == 6


def test_resume_keeps_finished_work_and_refuses_changes_it_cannot_continue(clic_dir, tmp_path, caplog):
    out = tmp_path / "run"
    before = {"steps.classification.epochs": 1, "steps.regression.epochs": 2, "data.batch_size": 2}
    with pytest.raises(KeyboardInterrupt):
        train(tiny(**before), clic_dir, out, progress=False, callbacks=[InterruptAt("regression", 1, 0)])
    step1 = (out / "step1_classification" / "model.safetensors").read_bytes()
    saved = (out / "config.yaml").read_text()
    # the architecture of saved weights, and the optimizer of a step continued from its checkpoint
    for key, value in [("model.pair_channels", 16), ("steps.regression.optimizer", "sgd")]:
        with pytest.raises(ConfigError, match=rf"{key}.*--out"):
            train(tiny(**before | {key: value}), clic_dir, out, resume=True, progress=False)
        assert (out / "config.yaml").read_text() == saved  # refused before anything was written

    record = Record()
    with caplog.at_level(logging.WARNING, logger="prfnet"):
        result = train(
            tiny(**before | {"steps.classification.epochs": 3}),
            clic_dir,
            out,
            resume=True,
            progress=False,
            callbacks=[record],
        )
    assert "steps.classification.epochs" in caplog.text
    assert {s["step"] for s in record.steps} == {"regression"}  # the finished step 1 is not reopened
    assert (out / "step1_classification" / "model.safetensors").read_bytes() == step1
    rows = [(r["step"], r["epoch"]) for r in read_metrics_csv(result.metrics_csv)]
    assert rows == [("classification", 0), ("regression", 0), ("regression", 1)]

    final = result.model_path.read_bytes()
    again = train(tiny(**before | {"steps.regression.epochs": 5}), clic_dir, out, resume=True, progress=False)
    assert again.already_finished and result.model_path.read_bytes() == final  # a finished run is not reopened
