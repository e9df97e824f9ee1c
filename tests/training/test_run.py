"""Two-step training (``prfnet.training.run``): a tiny end-to-end run, step 2 from step 1, resume after Ctrl-C, DDP
on CPU. The configs: ``test_config.py``; the data: ``test_datamodule.py``.

Everything runs on CPU with timm's ``test_resnet`` backbone, 64 px images and a handful of triplets.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from safetensors import safe_open
from safetensors.torch import load_file

from prfnet import ConfigError, PRFNet, load_image
from prfnet.cli import main
from prfnet.training import load_train_config, train
from prfnet.training.curves import read_metrics_csv

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "seed": 0,
    "model": {"backbone": "test_resnet", "pair_channels": 8, "fusion_channels": 8},
    "data": {
        "format": "clic",
        "crop": 64,
        "batch_size": 4,
        "num_workers": 0,
        "val": {"holdout_fraction": 0.25, "crop": 64},
    },
    "steps": {"classification": {"epochs": 2, "lr": 0.01}, "regression": {"epochs": 1, "lr": 0.001}},
    "trainer": {"accelerator": "cpu", "devices": 1},
}


def tiny_config(overrides: dict | None = None):
    return load_train_config(TINY, overrides)


def test_cli_bad_config_or_data_is_one_line_exit_2(clic_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--config", "demo", "--set", "data.format=jpeg", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.format" in err and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["train", "--config", "demo", "--data", str(tmp_path / "empty"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "images" in err and len(err.splitlines()) == 1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "images").symlink_to(clic_dir / "images")
    (tmp_path / "bad" / "oracle.csv").write_text("r0.png,r0_d0.png,r0_missing.png,0\n")
    assert main(["train", "--config", "demo", "--data", str(tmp_path / "bad"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "r0_missing.png" in err and len(err.splitlines()) == 1
    assert not out.exists()  # nothing written for a run that could not start


def test_cli_offline_hub_is_one_fast_line_naming_the_config_key(clic_dir, tmp_path, capsys, monkeypatch):
    """Offline, a config asking for hub weights fails after one connection attempt (no huggingface_hub retries),
    naming model.backbone_weights and its --set form, not Python's keyword; nothing is written."""
    from prfnet.model import backbone as backbone_mod

    attempts = []

    def refuse(address, timeout=None):
        attempts.append(address)
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(backbone_mod.socket, "create_connection", refuse)
    monkeypatch.setattr(backbone_mod, "try_to_load_from_cache", lambda repo, name: None)
    monkeypatch.setattr(backbone_mod.hub_constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "hub.yaml"
    config.write_text(yaml.safe_dump({**TINY, "model": {**TINY["model"], "pretrained_backbone": True}}))
    out = tmp_path / "r"
    assert main(["train", "--config", str(config), "--data", str(clic_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(attempts) == 1
    assert "model.pretrained_backbone: cannot fetch the ImageNet weights of test_resnet" in err
    assert "set model.backbone_weights to a local .safetensors file" in err
    assert "(--set model.backbone_weights=PATH)" in err and "pass backbone_weights=PATH" not in err
    assert not out.exists()


# -- training ------------------------------------------------------------------------------------
class RecordStart(Callback):
    """Keeps a copy of the weights each step starts from."""

    def __init__(self):
        self.start: dict[str, dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer, pl_module):
        state = pl_module.model.state_dict()
        self.start[pl_module.step_name] = {k: v.detach().clone() for k, v in state.items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


class RecordValidation(Callback):
    """The training and validation triplets of each step, and the weights each validation pass evaluates."""

    def __init__(self):
        self.items: dict[str, tuple[list, list]] = {}
        self.weights: dict[tuple[str, int], dict[str, torch.Tensor]] = {}

    def on_train_start(self, trainer, pl_module):
        data = trainer.datamodule
        self.items[pl_module.step_name] = (list(data.train_set.items), list(data.val_set.items))

    def on_validation_epoch_start(self, trainer, pl_module):
        state = pl_module.model.state_dict()
        self.weights[(pl_module.step_name, trainer.current_epoch)] = {k: v.detach().clone() for k, v in state.items()}


def validation_metrics(weights: dict, val_csv: Path) -> tuple[float, float]:
    """(accuracy against the majority label, mean squared error of sigmoid(logit) against p_a) of ``weights`` on
    the triplets of ``val_triplets.csv`` (whole 64 px images = the centre crop), computed here from the files."""
    model = PRFNet(TINY["model"]["backbone"], pair_channels=8, fusion_channels=8)
    model.load_state_dict(weights)
    model.eval()
    with open(val_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    hits, errors = [], []
    with torch.no_grad():
        for row in rows:
            logit = float(model(*(load_image(row[k]) for k in ("ref", "a", "b"))))
            p_a = float(row["p_a"])
            label = 1.0 if p_a > 0.5 else 0.0 if p_a < 0.5 else 0.5
            hits.append(1 - abs((logit > 0) - label) if logit != 0 else 0.5)
            errors.append((1 / (1 + math.exp(-logit)) - p_a) ** 2)
    return sum(hits) / len(hits), sum(errors) / len(errors)


def test_two_steps_end_to_end(clic_dir, tmp_path):
    out = tmp_path / "run"
    recorder, seen = RecordStart(), RecordValidation()
    result = train(tiny_config(), clic_dir, out, progress=False, callbacks=[recorder, seen])

    model = PRFNet.from_pretrained(result.model_path)
    assert model.config.backbone == "test_resnet" and model.config.pair_channels == 8
    x = torch.rand(1, 3, 64, 64)
    assert model(x, x, x.flip(-1)).shape == (1,)

    step1 = load_file(out / "step1_classification" / "model.safetensors")
    final = load_file(result.model_path)
    # step 2 started from the step-1 weights, and both steps changed the weights
    assert _same(recorder.start["regression"], step1)
    assert not _same(recorder.start["classification"], step1)
    assert not _same(step1, final)
    # the final model is the last epoch's (not the best one's)
    assert _same(final, seen.weights[("regression", 0)])

    # held-out references: one of the four, in val_triplets.csv, validated on, and never trained on
    val_csv = out / "val_triplets.csv"
    with open(val_csv, newline="") as f:
        val = [(r["ref"], r["a"], r["b"], float(r["p_a"])) for r in csv.DictReader(f)]
    for step in ("classification", "regression"):
        train_items, val_items = seen.items[step]
        assert [(t.ref, t.a, t.b, pytest.approx(t.p_a)) for t in val_items] == val
        train_refs, val_refs = {t.ref for t in train_items}, {t.ref for t in val_items}
        assert len(val_refs) == 1 and not train_refs & val_refs
        assert train_refs | val_refs == {str((clic_dir / "images" / f"r{r}.png").resolve()) for r in range(4)}
        assert len(train_items) == 3  # one triplet per reference

    # every epoch's metrics are those of the weights it ended with; the best epoch is the first highest val_acc
    rows = read_metrics_csv(result.metrics_csv)
    assert [(r["step"], r["epoch"]) for r in rows] == [("classification", 0), ("classification", 1), ("regression", 0)]
    measured = {}
    for r in rows:
        acc, mse = validation_metrics(seen.weights[(r["step"], r["epoch"])], val_csv)
        assert r["val_acc"] == pytest.approx(acc) and r["val_mse"] == pytest.approx(mse, rel=1e-4, abs=1e-7)
        assert math.isfinite(r["train_loss"]) and r["train_loss"] >= 0
        measured[(r["step"], r["epoch"])] = acc
    best = max(measured, key=lambda k: (measured[k], -list(measured).index(k)))
    assert (result.best_val["step"], result.best_val["epoch"]) == best
    assert result.best_val["val_acc"] == pytest.approx(measured[best])
    with safe_open(str(result.model_path), framework="pt") as f:
        assert float(f.metadata()["best_val_acc"]) == pytest.approx(measured[best])
    html = result.report_path.read_text()
    assert "data:image/png;base64" in html and "Step 1" in html and "Per-epoch metrics" in html

    # last.ckpt: the newest step checkpoint, holding the step's final weights and optimizer step count
    for step_dir, epochs in (("step1_classification", 2), ("step2_regression", 1)):
        folder = out / step_dir / "checkpoints"
        newest = max(folder.glob("step=*.ckpt"), key=lambda p: int(p.stem.split("=")[1]))
        assert (folder / "last.ckpt").resolve() == newest.resolve()
        last = torch.load(folder / "last.ckpt", weights_only=False)  # our own file
        assert last["global_step"] == epochs * 1 == int(newest.stem.split("=")[1])  # 3 triplets, batch size 4
        assert last["epoch"] == epochs - 1
        weights = {k.removeprefix("model."): v for k, v in last["state_dict"].items() if k.startswith("model.")}
        assert _same(weights, load_file(out / step_dir / "model.safetensors"))
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert load_train_config(saved).to_dict() == result_config_dict(clic_dir)

    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(), clic_dir, out, progress=False)
    again = train(tiny_config(), clic_dir, out, resume=True, progress=False)
    assert again.already_finished and again.best_val == result.best_val


def result_config_dict(clic_dir: Path) -> dict:
    config = tiny_config()
    config.data.root = str(clic_dir)
    return config.to_dict()


def test_same_seed_same_weights(clic_dir, tmp_path):
    config = tiny_config({"steps.regression.epochs": 0, "data.batch_size": 1})
    first = train(config, clic_dir, tmp_path / "a", progress=False)
    second = train(config, clic_dir, tmp_path / "b", progress=False)
    assert _same(load_file(first.model_path), load_file(second.model_path))


class InterruptAt(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C does) before batch ``batch`` of ``epoch`` of ``step``."""

    def __init__(self, step: str, epoch: int, batch: int):
        self.step, self.epoch, self.batch = step, epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (pl_module.step_name, trainer.current_epoch, batch_idx) == (self.step, self.epoch, self.batch):
            raise KeyboardInterrupt


def test_resume_after_interruption_continues_the_epochs(clic_dir, tmp_path):
    out = tmp_path / "run"
    # 3 training triplets, batch size 1: 3 optimizer steps per epoch
    config = tiny_config({"steps.classification.epochs": 2, "steps.regression.epochs": 3, "data.batch_size": 1})
    with pytest.raises(KeyboardInterrupt):
        train(config, clic_dir, out, progress=False, callbacks=[InterruptAt("regression", 1, 1)])
    assert (out / "step2_regression" / "checkpoints" / "interrupted.ckpt").is_file()
    assert (out / "step1_classification" / "model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()
    step1 = load_file(out / "step1_classification" / "model.safetensors")

    recorder = RecordStart()
    result = train(config, clic_dir, out, resume=True, progress=False, callbacks=[recorder])
    assert "classification" not in recorder.start  # step 1 had finished: not trained again
    assert not _same(recorder.start["regression"], step1)  # step 2 continued from its interruption checkpoint
    with open(out / "step2_regression" / "logs" / "version_1" / "metrics.csv", newline="") as f:
        epochs_after_resume = {int(float(row["epoch"])) for row in csv.DictReader(f)}
    assert epochs_after_resume == {1, 2}  # epoch 0 was not trained again
    last = torch.load(out / "step2_regression" / "checkpoints" / "last.ckpt", weights_only=False)  # our own file
    assert last["epoch"] == 2 and last["global_step"] == 3 * 3  # saved at the end of the last epoch; none ran twice
    rows = read_metrics_csv(result.metrics_csv)
    assert [(r["step"], r["epoch"]) for r in rows] == [("classification", e) for e in range(2)] + [
        ("regression", e) for e in range(3)
    ]
    assert PRFNet.from_pretrained(result.model_path).config.backbone == "test_resnet"


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(clic_dir, tmp_path):
    config = tmp_path / "ddp.yaml"
    tiny = TINY | {"trainer": TINY["trainer"] | {"save_rank_weights": True}}
    tiny["steps"] = {"classification": {"epochs": 1, "lr": 0.01}, "regression": {"epochs": 1, "lr": 0.001}}
    config.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "prfnet", "train", "-c", str(config), "--data", str(clic_dir), "--out", str(out)]
    command += ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--no-progress", "--json", "-v"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)  # only rank 0 prints, exactly one JSON document
    assert Path(document["model"]) == out / "model.safetensors"
    assert "distributed_backend=gloo" in done.stderr
    rank0, rank1 = (load_file(out / f"rank{k}.safetensors") for k in (0, 1))
    assert _same(rank0, rank1)
    assert _same(rank0, load_file(out / "model.safetensors"))
    assert not torch.equal(rank0["head.weight"], torch.zeros_like(rank0["head.weight"]))  # it trained
