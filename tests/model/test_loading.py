"""The one model loader (``prfnet.model.loading``, re-exported by ``prfnet.api``): a seeded --random-init,
$PRFNET_CHECKPOINT (defined once), bad devices as input errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import prfnet.api
from prfnet.api import CHECKPOINT_ENV, NO_CHECKPOINT_HELP, load_model
from prfnet.errors import CheckpointError, InputError
from prfnet.integrations._common import frozen_model
from tests.conftest import TINY, save_tiny_checkpoint

SRC = Path(prfnet.api.__file__).resolve().parent


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", 3)


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
