"""PRFNet as a scoring metric (``prfnet.scoring.metrics.PRFNetMetric``): reference features are cached within a run
only. CPU, timm's ``test_resnet``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prfnet import PRFNet
from prfnet.images import load_image
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from tests.conftest import TINY, make_pairs

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


def test_reference_features_are_not_reused_by_a_later_run(tmp_path):
    """The metric caches one reference's features within a run; a later run (the model changed) encodes again."""
    pairs = make_pairs(tmp_path / "images", refs=1, dists=2)
    torch.manual_seed(0)
    model = PRFNet(TINY).eval()
    metric = PRFNetMetric(model)
    score_pairs(pairs, [metric], progress=False)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.backbone.parameters():  # e.g. trained further between two evaluations
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    again = score_pairs(pairs, [metric], progress=False)
    with torch.no_grad():
        expected = [model.score(load_image(r), load_image(d)).item() for r, d in pairs]
    np.testing.assert_allclose(again.lookup("prfnet", pairs), expected, rtol=1e-5)
