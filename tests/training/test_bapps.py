"""The shipped ``bapps`` config trains on a BAPPS 2AFC tree of 64 px patches, and a crop larger than the
images stops the run before training starts (instead of at the first item, inside the fit)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet import ConfigError
from prfnet.cli import main
from prfnet.training import load_train_config, train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "--set", "model.backbone=test_resnet", "--set", "model.pretrained_backbone=false",
    "--set", "model.pair_channels=8", "--set", "model.fusion_channels=8",
    "--set", "steps.classification.epochs=1", "--set", "steps.regression.epochs=1",
    "--set", "data.batch_size=4", "--set", "data.num_workers=0", "--set", "trainer.cpu_threads=1",
    "--accelerator", "cpu",
]  # fmt: skip


def write_bapps(root: Path, splits: dict[str, dict[str, list[float]]], size: int = 64) -> Path:
    """``root/2afc/<split>/<subset>/{ref,p0,p1}/NNNNNN.png`` (p0 mildly, p1 strongly noisy) and
    ``judge/NNNNNN.npy`` holding the given fraction of judges preferring p1."""
    rng = np.random.default_rng(0)
    for split, subsets in splits.items():
        for subset, judges in subsets.items():
            folder = root / "2afc" / split / subset
            for i, judge in enumerate(judges):
                ref = rng.random((size, size, 3))
                for name, sigma in (("ref", 0.0), ("p0", 0.03), ("p1", 0.3)):
                    image = np.clip(ref + rng.normal(0, sigma, ref.shape), 0, 1) if sigma else ref
                    (folder / name).mkdir(parents=True, exist_ok=True)
                    Image.fromarray((image * 255).astype(np.uint8)).save(folder / name / f"{i:06d}.png")
                (folder / "judge").mkdir(exist_ok=True)
                np.save(folder / "judge" / f"{i:06d}.npy", np.array([judge], dtype=np.float32))
    return root


@pytest.fixture(scope="module")
def bapps_dir(tmp_path_factory) -> Path:
    train_judges = {"traditional": [0.0, 0.5, 0.0, 1.0], "cnn": [0.0, 0.0, 0.5]}  # 2 judges: ties happen
    val_judges = {"traditional": [0.2, 0.0], "cnn": [0.4]}
    return write_bapps(tmp_path_factory.mktemp("bapps"), {"train": train_judges, "val": val_judges})


def test_the_bapps_config_suits_64px_patches():
    config = load_train_config("bapps")
    assert config.data.format == "bapps" and config.data.crop in (64, None) and config.data.val.crop is None
    assert config.data.train == "2afc/train" and config.data.val.path == "2afc/val"
    assert load_train_config("clic2022").model == config.model  # the paper's architecture


def test_documented_bapps_command_trains_to_completion(bapps_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "-c", "bapps", "--data", str(bapps_dir), "--out", str(out), *TINY]) == 0
    assert (out / "model.safetensors").is_file() and (out / "report.html").is_file()
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["epoch"]) for r in rows] == [("classification", "0"), ("regression", "0")]
    assert all(0.0 <= float(r["val_agreement"]) <= 1.0 for r in rows)
    with open(out / "val_triplets.csv", newline="") as f:
        val = list(csv.DictReader(f))
    assert sorted(r["kind"] for r in val) == ["cnn", "traditional", "traditional"]  # all of 2afc/val
    assert [float(r["p_a"]) for r in val if r["kind"] == "cnn"] == pytest.approx([0.6])  # p_a = 1 - judge


@pytest.mark.parametrize(
    ("overrides", "key"),
    [({"data.crop": 96}, "data.crop"), ({"data.val.crop": 128}, "data.val.crop"), ({"data.crop": 256}, "data.crop")],
)
def test_a_crop_larger_than_the_patches_stops_before_training(bapps_dir, tmp_path, overrides, key):
    config = load_train_config("bapps", {"model.backbone": "test_resnet", "model.pretrained_backbone": False})
    config = load_train_config(config.to_dict(), overrides)
    with pytest.raises(ConfigError) as info:
        train(config, data_dir=bapps_dir, out_dir=tmp_path / "run", progress=False)
    message = str(info.value)
    assert key in message and "64x64" in message and "2afc" in message, message
    assert not (tmp_path / "run").exists()  # nothing written, nothing trained


def test_cli_crop_error_is_one_line_exit_2(bapps_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "-c", "bapps", "--data", str(bapps_dir), "--out", str(out), *TINY, "--set", "data.crop=80"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.crop = 80" in err and "at most 64" in err, err
    assert not out.exists()
