"""Fixtures of the adapter tests: a frozen tiny model with a ramp head, a noisy batch and its files."""

from __future__ import annotations

import pytest

from prfnet import PRFNet
from tests.conftest import noisy_batch, ramp_model, save_triplet_files


@pytest.fixture(scope="module")
def model() -> PRFNet:
    return ramp_model()


@pytest.fixture(scope="module")
def data():
    return noisy_batch(6, 64, 0.2, seed=5)


@pytest.fixture()
def files(tmp_path, data):
    ref, dist = data
    return save_triplet_files(tmp_path, ref[:1], dist[:1], dist[1:2])
