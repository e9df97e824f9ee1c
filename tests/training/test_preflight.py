"""Checks before a training run writes anything (prfnet.training.preflight): trainer settings named by their config
key and option, and the Trainer arguments taken from the config."""

from __future__ import annotations

import pytest

from prfnet.errors import ConfigError
from prfnet.trainer_settings import LAUNCHER_VARIABLES
from prfnet.training import load_train_config
from prfnet.training.preflight import check_trainer_settings, hardware_arguments


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"trainer.devices": 0}, "trainer.devices (--devices) is 0"),
        ({"trainer.num_nodes": 2}, "trainer.num_nodes (--num-nodes) is 2"),
        ({"trainer.precision": "17-mixed"}, "trainer.precision (--precision)"),
    ],
)
def test_a_setting_this_machine_cannot_run_names_its_key_and_option(monkeypatch, overrides, fragment):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = load_train_config("demo", {"trainer.accelerator": "cpu", **overrides})
    with pytest.raises(ConfigError) as info:
        check_trainer_settings(config)
    assert fragment in str(info.value)


def test_hardware_arguments_come_from_the_config():
    config = load_train_config("demo", {"trainer.accelerator": "cpu", "trainer.devices": "2", "trainer.num_nodes": 1})
    arguments = hardware_arguments(config)
    assert arguments["accelerator"] == "cpu" and arguments["devices"] == 2 and arguments["num_nodes"] == 1
    assert set(arguments) == {"accelerator", "devices", "num_nodes", "strategy", "precision"}
    check_trainer_settings(load_train_config("demo", {"trainer.accelerator": "cpu", "trainer.devices": 1}))
