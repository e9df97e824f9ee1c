"""Shared fixtures: a tiny untrained model and small random images (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from prfnet import PRFNet

TINY = "test_resnet"  # timm's 0.37M-parameter ResNet for tests


@pytest.fixture(scope="session")
def tiny_model() -> PRFNet:
    torch.manual_seed(0)
    model = PRFNet(TINY).eval()
    # give the head non-trivial weights so that scores differ between images
    with torch.no_grad():
        model.head.weight.normal_()
    return model


@pytest.fixture()
def images():
    g = torch.Generator().manual_seed(1)

    def make(n: int = 1, h: int = 64, w: int = 64) -> torch.Tensor:
        return torch.rand(n, 3, h, w, generator=g)

    return make
