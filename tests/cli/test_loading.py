"""The one model loader of the command line (``prfnet.cli.loading``): options checked when the command starts, the
model loaded only when the library asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

import prfnet.api
from prfnet.cli.loading import model_loader
from prfnet.errors import ConfigError
from tests.cli.test_options import (
    Recorder,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
)


def test_model_loader_checks_options_now_and_loads_when_called(monkeypatch, capsys):
    load = Recorder("the model")
    monkeypatch.setattr(prfnet.api, "load_model", load)
    loader = model_loader(None, "cpu", True, "test_resnet", 64, 32, "bf16", True)
    assert load.calls == [] and "WARNING" not in capsys.readouterr().err  # nothing loaded yet
    assert loader() == "the model"
    assert load.calls[-1] == (
        (None, "cpu", True, "test_resnet", 64, 32),
        {"warn": False, "precision": "bf16", "compile": True, "runtime": "torch", "threads": None},
    )  # no seed here: load_model seeds a --random-init model the same way for every command
    assert "--random-init: untrained weights" in capsys.readouterr().err
    model_loader(Path("w.safetensors"), "cpu", True, "test_resnet")()
    assert "WARNING" not in capsys.readouterr().err  # a checkpoint is not an untrained model


@pytest.mark.parametrize(
    "args, message",
    [
        ((16, None, "fp32", "cpu"), "--tile must be >= 32"),
        ((None, 8, "fp32", "cpu"), "--tile-stride 8 needs --tile"),
        ((64, 0, "fp32", "cpu"), "--tile-stride must be positive"),
        ((64, 65, "fp32", "cpu"), "must not exceed --tile"),
        ((None, None, "fp16", "cpu"), "fp16 needs a GPU"),
        ((None, None, "fp8", "cpu"), "fp8"),
    ],
)
def test_model_loader_refuses_bad_options_before_loading(monkeypatch, args, message):
    load = Recorder("the model")
    monkeypatch.setattr(prfnet.api, "load_model", load)
    tile, stride, precision, device = args
    with pytest.raises(ConfigError, match=message):
        model_loader(None, device, True, "test_resnet", tile, stride, precision)
    assert load.calls == []
