"""Shared fixtures: a tiny untrained model, small random images and a tiny CLIC data set (CPU, seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet

TINY = "test_resnet"  # timm's 0.37M-parameter ResNet for tests

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: N processes share the cores, one thread each
    torch.set_num_threads(1)


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


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread (modules that train use it: ``pytestmark = pytest.mark.usefixtures("one_thread")``):
    tiny models gain nothing from more, and on a busy 2-core machine OpenMP threads waiting for each other make
    the runs several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_clic_dir(root: Path) -> Path:
    """4 references (64x64) with a mild and a strong noisy version each; CLIC oracle with 3 votes per
    triplet (one swapped row, one dissenting vote) so that p_a is a vote fraction, not only 0/1."""
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for r in range(4):
        ref = rng.random((64, 64, 3))
        Image.fromarray((ref * 255).astype(np.uint8)).save(root / "images" / f"r{r}.png")
        for k, sigma in enumerate((0.03, 0.25)):
            dist = np.clip(ref + rng.normal(0, sigma, ref.shape), 0, 1)
            Image.fromarray((dist * 255).astype(np.uint8)).save(root / "images" / f"r{r}_d{k}.png")
        rows += [f"r{r}.png,r{r}_d0.png,r{r}_d1.png,0", f"r{r}.png,r{r}_d1.png,r{r}_d0.png,1"]
        rows.append(f"r{r}.png,r{r}_d0.png,r{r}_d1.png,{r % 2}")  # a dissenting vote for half of them
    (root / "oracle.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def clic_dir(tmp_path_factory) -> Path:
    return make_clic_dir(tmp_path_factory.mktemp("clic"))


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never download weights (LPIPS/DISTS fetch VGG16 on first use): offline unless a test says otherwise
    (tests/baselines/test_learned.py serves files from a local HTTP server and lifts this)."""
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
