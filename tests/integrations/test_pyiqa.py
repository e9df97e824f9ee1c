"""The pyiqa-compatible object (prfnet.integrations.pyiqa) on tensors, paths and keywords, as a loss, from a
checkpoint; pyiqa registration when pyiqa is installed (and False without it)."""

from __future__ import annotations

import pytest
import torch

from prfnet import InputError
from prfnet.integrations.pyiqa import PyIQAMetric, register_pyiqa

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pyiqa_object_tensors_paths_keywords(model, data, files):
    ref, dist = data
    metric = PyIQAMetric(model)
    assert metric.lower_better is True and metric.metric_mode == "FR" and metric.score_range == "0, +inf"
    expected = model.score(ref, dist)
    torch.testing.assert_close(metric(dist, ref), expected)  # distorted FIRST, as pyiqa
    torch.testing.assert_close(metric(ref=ref, dist=dist), expected)
    from_files = metric(str(files["a"]), files["ref"])
    from prfnet import load_image

    torch.testing.assert_close(from_files, model.score(load_image(files["ref"]), load_image(files["a"])))
    assert metric.to("cpu") is metric and metric.device == torch.device("cpu")
    with pytest.raises(InputError, match="full-reference"):
        metric(dist)


def test_pyiqa_object_as_loss(model, data):
    ref, dist = data
    metric = PyIQAMetric(model, as_loss=True)
    x = dist[:2].clone().requires_grad_(True)
    value = metric(x, ref[:2])
    value.backward()
    assert value.ndim == 0 and torch.isfinite(x.grad).all()


def test_pyiqa_object_from_checkpoint(model, data, tmp_path):
    ref, dist = data
    path = model.save_pretrained(tmp_path / "m.safetensors")
    torch.testing.assert_close(PyIQAMetric(str(path))(dist, ref), model.score(ref, dist))


def test_pyiqa_registration(model, data, tmp_path):
    pyiqa = pytest.importorskip("pyiqa")
    ref, dist = data
    path = model.save_pretrained(tmp_path / "m.safetensors")
    assert register_pyiqa() is True and register_pyiqa() is True
    metric = pyiqa.create_metric("prfnet", checkpoint=str(path), device="cpu")
    assert metric.lower_better is True and metric.metric_mode == "FR"
    torch.testing.assert_close(metric(dist, ref).reshape(-1), model.score(ref, dist))
    assert "prfnet" in pyiqa.list_models(metric_mode="FR")


def test_register_pyiqa_without_pyiqa(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import pyiqa raises ImportError
    monkeypatch.setitem(sys.modules, "pyiqa.default_model_configs", None)
    assert register_pyiqa() is False
