"""The torchmetrics Metric (prfnet.integrations.torchmetrics): PRFNet's distance, reduced over batches of any size."""

from __future__ import annotations

import pytest
import torch

from prfnet import InputError
from prfnet.integrations.torchmetrics import PRFNetDistance

pytestmark = pytest.mark.usefixtures("one_thread")


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
