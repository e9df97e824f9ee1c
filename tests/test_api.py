"""The one model loader (prfnet.model.loading, re-exported by prfnet.api) and the model identity of the score store:
a seeded --random-init, $PRFNET_CHECKPOINT, devices, and the checkpoint hashed only when a store asks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import prfnet.api
import prfnet.model.checkpoint
from prfnet import PRFNet
from prfnet.api import CHECKPOINT_ENV, NO_CHECKPOINT_HELP, compare_files, load_model, model_identity
from prfnet.errors import CheckpointError, InputError
from prfnet.integrations._common import frozen_model
from prfnet.scoring.metrics import PRFNetMetric, select_metrics
from prfnet.scoring.plan import metric_identity

TINY = "test_resnet"
SRC = Path(prfnet.api.__file__).resolve().parent


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(3)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


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


def test_random_init_is_seeded_the_same_for_every_caller_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    one = load_model(None, random_init=True, backbone=TINY, warn=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random stream is untouched
    torch.manual_seed(7)  # whatever the caller seeded, the untrained weights are the same
    two = load_model(None, random_init=True, backbone=TINY, warn=False)
    assert _same_weights(one, two)
    other = load_model(None, random_init=True, backbone=TINY, warn=False, seed=1)
    assert not _same_weights(one, other)
    assert one.source == f"the --random-init {TINY} model" and one.checkpoint_file is None


def test_the_checkpoint_comes_from_the_argument_or_prfnet_checkpoint(checkpoint, monkeypatch):
    assert CHECKPOINT_ENV == "PRFNET_CHECKPOINT"
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    with pytest.raises(CheckpointError) as err:
        load_model()
    assert str(err.value) == NO_CHECKPOINT_HELP
    with pytest.raises(CheckpointError):
        frozen_model(None)  # the integrations load through the same loader
    monkeypatch.setenv(CHECKPOINT_ENV, str(checkpoint))
    from_env, given = load_model(), load_model(checkpoint)
    assert from_env.source == str(checkpoint) and _same_weights(from_env, given)
    assert _same_weights(frozen_model(None), given)
    assert not any(p.requires_grad for p in frozen_model(None).parameters())


def test_checkpoint_env_is_defined_once_in_the_package():
    defined = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if f'= "{CHECKPOINT_ENV}"' in path.read_text(encoding="utf-8")
    ]
    assert defined == [os.path.join("model", "loading.py")]


def test_bad_devices_are_input_errors(checkpoint):
    for device in ("bogus", "meta", "cuda:99"):
        with pytest.raises(InputError, match="device"):
            load_model(checkpoint, device=device)


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
