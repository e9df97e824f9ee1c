"""Adapters: the torchmetrics Metric, the pyiqa-compatible object (and pyiqa registration when pyiqa is installed),
and keyword arguments (``ref=``, ``dist=``, ``a=``, ``b=``) on every entry point."""

from __future__ import annotations

import pytest
import torch

from prfnet import InputError, PRFNet, save_image
from prfnet.api import compare_files, score_files
from prfnet.integrations.pyiqa import PyIQAMetric, register_pyiqa
from prfnet.integrations.torchmetrics import PRFNetDistance
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> PRFNet:
    torch.manual_seed(0)
    m = PRFNet(TINY)
    with torch.no_grad():
        m.head.weight.copy_(torch.linspace(-1.0, 2.0, m.head.weight.numel()))
    return m


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(5)
    ref = torch.rand(6, 3, 64, 64, generator=g)
    dist = (ref + 0.2 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return ref, dist


@pytest.fixture()
def files(tmp_path, data):
    ref, dist = data
    paths = {}
    for name, img in (("ref", ref[:1]), ("a", dist[:1]), ("b", dist[1:2])):
        paths[name] = tmp_path / f"{name}.png"
        save_image(img, paths[name])
    return paths


# -- torchmetrics -----------------------------------------------------------------------------------------------------


def test_torchmetrics_attributes(model):
    metric = PRFNetDistance(model)
    assert metric.higher_is_better is False and metric.is_differentiable is False
    assert metric.full_state_update is False
    assert not any(p.requires_grad for p in metric.parameters()) and not metric.model.training
    with pytest.raises(ValueError, match="reduction"):
        PRFNetDistance(model, reduction="max")


def test_torchmetrics_matches_score_and_reductions(model, data):
    ref, dist = data
    expected = model.score(ref, dist).double()
    means = PRFNetDistance(model)
    means.update(dist[:4], ref[:4])  # (preds, target) = (distorted, reference), as torchmetrics' LPIPS
    means.update(dist=dist[4:], ref=ref[4:])
    torch.testing.assert_close(means.compute(), expected.mean(), rtol=1e-5, atol=1e-8)
    sums = PRFNetDistance(model, reduction="sum")
    sums.update(dist=dist, ref=ref)
    torch.testing.assert_close(sums.compute(), expected.sum(), rtol=1e-5, atol=1e-8)
    each = PRFNetDistance(model, reduction="none")
    each.update(dist=dist[:2], ref=ref[:2])
    each.update(dist=dist[2:], ref=ref[2:])
    torch.testing.assert_close(each.compute().double(), expected, rtol=1e-5, atol=1e-8)


def test_torchmetrics_batch_size_does_not_change_the_result(model, data):
    ref, dist = data
    results = []
    for bs in (1, 2, 6):
        metric = PRFNetDistance(model)
        for i in range(0, len(ref), bs):
            metric.update(dist=dist[i : i + bs], ref=ref[i : i + bs])
        results.append(metric.compute())
    for r in results[1:]:
        torch.testing.assert_close(r, results[0], rtol=1e-6, atol=1e-9)


def test_torchmetrics_reset_and_forward(model, data):
    ref, dist = data
    metric = PRFNetDistance(model, reduction="none")
    metric.update(dist=dist, ref=ref)
    metric.reset()
    with pytest.warns(UserWarning, match="called before"):
        assert metric.compute().numel() == 0
    batch = metric(dist[:2], ref[:2])  # forward: this batch's value, and accumulated
    torch.testing.assert_close(batch, model.score(ref[:2], dist[:2]), rtol=1e-5, atol=1e-8)
    assert metric.compute().shape == (2,)
    mean = PRFNetDistance(model)
    mean.update(dist=dist, ref=ref)
    mean.reset()
    mean.update(dist=dist[:1], ref=ref[:1])
    torch.testing.assert_close(mean.compute(), model.score(ref[:1], dist[:1]).double()[0], rtol=1e-5, atol=1e-8)


def test_torchmetrics_argument_errors(model, data):
    ref, dist = data
    metric = PRFNetDistance(model)
    with pytest.raises(InputError):
        metric.update(dist[:1], dist=dist[:1], ref=ref[:1])
    with pytest.raises(InputError):
        metric.update(dist=dist[:1])


# -- pyiqa ------------------------------------------------------------------------------------------------------------


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


# -- keyword arguments ------------------------------------------------------------------------------------------------


def test_keyword_calls_equal_positional(model, data, files):
    ref, dist = data
    torch.testing.assert_close(model.score(ref=ref, dist=dist), model.score(ref, dist))
    a, b = dist[:1], ref[:1].flip(-1)
    torch.testing.assert_close(model.compare(ref=ref[:1], a=a, b=b), model.compare(ref[:1], a, b))
    torch.testing.assert_close(model(ref=ref[:1], a=a, b=b), model(ref[:1], a, b))
    kw = model.rank(ref=ref[:1], candidates=[a, b])
    pos = model.rank(ref[:1], [a, b])
    assert kw.order.tolist() == pos.order.tolist()
    torch.testing.assert_close(kw.scores, pos.scores)
    feats = model.encode(ref=ref)
    torch.testing.assert_close(model.score(ref=feats, dist=dist), model.score(ref, dist))
    assert compare_files(model, ref=files["ref"], a=files["a"], b=files["b"]) == compare_files(
        model, files["ref"], files["a"], files["b"]
    )
    assert score_files(model, ref=files["ref"], dists=[files["a"], files["b"]]) == score_files(
        model, files["ref"], [files["a"], files["b"]]
    )


def test_what_a_swap_by_position_does(model, data):
    """``score`` is symmetric (|F_R - F_X| of features computed alike), so swapping ref and dist is harmless there;
    in ``compare`` the reference's position matters, which is why the docs call it with ``ref=``, ``a=``, ``b=``."""
    ref, dist = data
    torch.testing.assert_close(model.score(ref=dist, dist=ref), model.score(ref=ref, dist=dist))
    r, a, b = ref[:1], dist[:1], ref[1:2]
    right = model.compare(ref=r, a=a, b=b).item()
    swapped = model.compare(a, r, b).item()  # the reference given as A by position
    assert right > 0.5 and swapped > right  # R itself is closest to R: a different (and wrong-question) answer
