"""Fixtures of the scoring tests: small (reference, distorted) PNG pairs and two tiny checkpoints."""

from __future__ import annotations

import pytest

from tests.conftest import make_pairs, save_tiny_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs") / "images")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return [save_tiny_checkpoint(folder / f"m{seed}.safetensors", seed) for seed in (0, 1)]
