"""Training configuration (``prfnet.training.config``): the shipped configs, typed ``--set`` overrides, and bad
configs, YAML files and overrides as configuration errors naming the key and the file."""

from __future__ import annotations

import pytest

from prfnet import ConfigError
from prfnet.training import load_train_config, parse_override, shipped_configs


def test_shipped_configs_load_and_are_consistent():
    assert {"demo", "clic2022"} <= set(shipped_configs())
    paper = load_train_config("clic2022")
    assert paper.model.backbone == "seres2net50" and paper.model.pretrained_backbone
    assert paper.steps.classification.epochs > 0 and paper.steps.regression.epochs > 0
    assert paper.steps.regression.lr < paper.steps.classification.lr
    demo = load_train_config("demo")
    assert demo.model.backbone in ("test_resnet", "resnet10t") and not demo.model.pretrained_backbone
    assert demo.trainer.accelerator == "cpu" and demo.data.format == "clic"


def test_overrides_are_applied_and_typed():
    assert parse_override("data.crop=64") == ("data.crop", 64)
    assert parse_override("data.val.crop=null") == ("data.val.crop", None)
    config = load_train_config("demo", dict([parse_override("steps.regression.lr=1e-5"), ("data.crop", 96)]))
    assert config.steps.regression.lr == pytest.approx(1e-5) and isinstance(config.steps.regression.lr, float)
    assert config.data.crop == 96


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"data": {"fromat": "clic"}}, ["data.fromat", "data.format"]),
        ({"stepz": {}}, ["stepz"]),
        ({"data": {"crop": "big"}}, ["data.crop", "big"]),
        ({"data": {"format": "jpeg"}}, ["data.format", "jpeg"]),
        ({"steps": {"classification": {"epochs": -1}}}, ["steps.classification.epochs"]),
        ({"steps": {"classification": {"epochs": 0}, "regression": {"epochs": 0}}}, ["nothing to train"]),
        ({"trainer": {"devices": True}}, ["trainer.devices"]),
        ({"trainer": {"checkpoint_every_n_steps": 0}}, ["trainer.checkpoint_every_n_steps", ">= 1"]),
    ],
)
def test_bad_configs_name_the_key(change, words):
    with pytest.raises(ConfigError) as info:
        load_train_config(change)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_bad_yaml_file_and_unknown_override_name_the_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("data:\n  batch_szie: 4\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*data\.batch_szie.*data\.batch_size"):
        load_train_config(path)
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml, line \d+: not valid YAML"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="model.backbon"):
        load_train_config("demo", {"model.backbon": "resnet10t"})
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
