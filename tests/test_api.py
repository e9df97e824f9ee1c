"""The file-level functions of ``prfnet.api`` and the model identity of the score store: the checkpoint hashed only
when a store asks, read once per metric, and the weights hashed once they may differ from the file. The loader it
re-exports: ``tests/model/test_loading.py``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import prfnet.api
import prfnet.model.checkpoint
from prfnet import PRFNet
from prfnet.api import compare_files, load_model, model_identity
from prfnet.scoring.metrics import PRFNetMetric, select_metrics
from prfnet.scoring.plan import metric_identity
from tests.conftest import save_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", 3)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    paths = {}
    for name, noise in (("ref", 0), ("a", 5), ("b", 60)):
        image = np.clip(ref.astype(int) + rng.integers(-noise, noise + 1, ref.shape), 0, 255).astype(np.uint8)
        paths[name] = str(folder / f"{name}.png")
        Image.fromarray(image).save(paths[name])
    return paths


def test_compare_never_hashes_the_checkpoint(checkpoint, files, monkeypatch):
    def refuse(path):
        raise AssertionError(f"the checkpoint was hashed: {path}")

    monkeypatch.setattr(prfnet.model.checkpoint, "file_sha256", refuse)
    model = load_model(checkpoint)
    result = compare_files(model, files["ref"], files["a"], files["b"])
    assert result.closer in ("A", "B") and 0 < result.prob_a < 1
    assert not hasattr(model, "checkpoint_digest")  # nothing bolted onto the model
    with pytest.raises(AssertionError, match="hashed"):  # the patch is where the digest would be computed
        model_identity(model)


def test_identity_is_the_checkpoint_sha256_read_once_per_metric(checkpoint, monkeypatch):
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    reads = []
    real = prfnet.model.checkpoint.file_sha256
    monkeypatch.setattr(prfnet.model.checkpoint, "file_sha256", lambda path: reads.append(path) or real(path))
    (metric,) = select_metrics(["prfnet"], model=lambda: load_model(checkpoint)).metrics
    assert reads == []  # selecting the metric (loading the model) reads no digest
    assert metric_identity(metric) == f"prfnet/{digest[:16]}/whole/fp32"
    assert metric_identity(metric) == metric.identity == f"prfnet/{digest[:16]}/whole/fp32"
    assert reads == [str(checkpoint)]  # one read for three identities
    assert model_identity(PRFNet.from_pretrained(checkpoint)) == metric.identity  # however it was loaded


def test_the_onnxruntime_cache_key_and_the_store_identity_share_one_read(checkpoint, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    reads = []
    real = prfnet.model.checkpoint.file_sha256
    monkeypatch.setattr(prfnet.model.checkpoint, "file_sha256", lambda path: reads.append(path) or real(path))
    model = load_model(checkpoint, runtime="onnxruntime")  # the graph cache is keyed by the file's SHA-256
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert model_identity(model) == PRFNetMetric(model).identity == f"prfnet/{digest[:16]}/whole/fp32/onnxruntime"
    assert reads == [str(checkpoint)]


def test_identity_falls_back_to_the_weights_once_they_may_differ_from_the_file(checkpoint, tmp_path):
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(checkpoint.read_bytes())
    metric = PRFNetMetric(load_model(copy))
    from_file = metric.identity
    os.utime(copy, ns=(0, 0))  # the file changed on disk after loading: its bytes may no longer be these weights
    from_weights = metric.identity
    assert from_weights != from_file and from_weights == model_identity(metric.model)
    trained = load_model(checkpoint)
    trained.train()  # weights may change from here on
    assert trained.checkpoint_file is None and model_identity(trained.eval()) == from_weights
