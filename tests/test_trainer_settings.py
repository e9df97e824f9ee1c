"""One check of Lightning's hardware settings for train, ablate, the demo and rd (prfnet.trainer_settings): each
mistake is one ConfigError naming the option, before any work; a setting this machine can run passes."""

from __future__ import annotations

import pytest
import torch

from prfnet.errors import ConfigError
from prfnet.trainer_settings import LAUNCHER_VARIABLES, check_trainer_arguments, devices_of, option


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_settings_this_machine_runs_pass():
    check_trainer_arguments({"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto"})
    check_trainer_arguments({"accelerator": None, "devices": None})  # None: Lightning's defaults


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ({"devices": 0}, "--devices is 0"),
        ({"devices": "0"}, "--devices is 0"),
        ({"num_nodes": 2}, "--num-nodes is 2, but no multi-node launcher"),
        ({"strategy": "bogus"}, "strategy='bogus'"),
        ({"precision": "17-mixed"}, "--precision '17-mixed' is not a Lightning precision"),
        ({"accelerator": "cpu", "devices": "abc"}, "cannot be used on this machine"),
    ],
)
def test_each_mistake_is_one_line_naming_the_option(arguments, fragment):
    with pytest.raises(ConfigError) as info:
        check_trainer_arguments(arguments)
    message = str(info.value)
    assert fragment in message and "\n" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_where_torch_sees_none_names_the_config_key_when_asked_to():
    with pytest.raises(ConfigError, match=r"trainer\.accelerator \(--accelerator\) is 'gpu', but torch sees no CUDA"):
        check_trainer_arguments({"accelerator": "gpu"}, lambda key: f"trainer.{key} ({option(key)})")


def test_several_nodes_pass_the_launcher_check_under_a_launcher(monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    try:
        check_trainer_arguments({"accelerator": "cpu", "num_nodes": 2, "devices": 1})
    except ConfigError as exc:  # Lightning itself may still refuse it here, but not for the missing launcher
        assert "no multi-node launcher" not in str(exc)


def test_devices_of_reads_numbers_and_keeps_the_rest():
    assert devices_of("2") == 2 and devices_of(" 3 ") == 3
    assert devices_of("auto") == "auto" and devices_of("0,1") == "0,1" and devices_of([0, 1]) == [0, 1]
    assert option("num_nodes") == "--num-nodes"
