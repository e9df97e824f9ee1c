"""The scoring plan (``prfnet.scoring.plan``): metric identities (checkpoint, tiling, precision, the weights as they
are now) and a metric refusing the images listed while the others score. CPU, timm's ``test_resnet``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prfnet import PRFNet
from prfnet.api import load_model
from prfnet.baselines import get_metric
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.scoring.plan import metric_identity
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


def test_metric_identities(checkpoints):
    one, again, two = (PRFNetMetric(load_model(c)) for c in (checkpoints[0], checkpoints[0], checkpoints[1]))
    assert metric_identity(one) == metric_identity(again) != metric_identity(two)
    assert metric_identity(one).startswith("prfnet/") and metric_identity(one).endswith("/whole/fp32")
    tiled = PRFNetMetric(load_model(checkpoints[0], tile_size=32))
    assert metric_identity(tiled) != metric_identity(one)
    assert metric_identity(get_metric("psnr")) == metric_identity(get_metric("psnr"))  # stable, not per object
    assert metric_identity(get_metric("psnr")).startswith("psnr/")
    assert metric_identity(get_metric("psnr")) != metric_identity(get_metric("ssim"))


def test_identity_follows_the_model_as_it_is_now(checkpoints):
    """Precision and tiling set after loading, and an in-memory model's weights, are part of the identity."""
    loaded = load_model(checkpoints[0])
    before = metric_identity(PRFNetMetric(loaded))
    loaded.set_tiling(32)
    assert metric_identity(PRFNetMetric(loaded)) == before.replace("/whole/", "/tile-32x32/")
    bf16 = PRFNet(TINY).optimize_for_inference("bf16")
    assert metric_identity(PRFNetMetric(bf16)).endswith("/bf16")
    torch.manual_seed(0)
    model = PRFNet(TINY)
    metric = PRFNetMetric(model)
    first = metric_identity(metric)
    with torch.no_grad():
        model.head.weight.add_(1.0)  # e.g. trained further between two evaluations
    assert metric_identity(metric) != first


def test_a_metric_refusing_the_images_is_listed_and_the_others_score(data):
    result = score_pairs(data, [get_metric("ms_ssim"), get_metric("psnr")], batch_size=2, progress=False)
    assert set(result.failed) == {"ms_ssim"}
    assert "first refused" in result.failed["ms_ssim"] and "64x64" in result.failed["ms_ssim"]
    assert np.isfinite(result.scores["psnr"]).all() and result.computed["psnr"] == 10
