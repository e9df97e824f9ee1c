"""save_pretrained / from_pretrained: one safetensors file, config in metadata, clear errors."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from prfnet import CheckpointError, ConfigError, InputError, PRFNet


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


def test_round_trip_restores_architecture_and_outputs(tmp_path, images):
    torch.manual_seed(3)
    model = PRFNet("test_resnet", pair_block="concat", fusion_channels=32, attention=False).eval()
    with torch.no_grad():
        model.head.weight.normal_()
    path = model.save_pretrained(tmp_path / "m.safetensors", metadata={"note": "test"})
    header = _header(path)
    assert header["__metadata__"]["format"] == "prfnet"
    assert json.loads(header["__metadata__"]["config"])["pair_block"] == "concat"
    loaded = PRFNet.from_pretrained(path)
    assert loaded.config == model.config and not loaded.training
    r, a, b = images(2), images(2), images(2)
    with torch.no_grad():
        assert torch.allclose(loaded.compare(r, a, b), model.compare(r, a, b), atol=1e-6)
    assert not list(tmp_path.glob("*.tmp"))


def test_inference_options_can_be_overridden_at_load(tmp_path, images):
    torch.manual_seed(0)
    model = PRFNet("test_resnet")
    with torch.no_grad():
        model.head.weight.normal_()
    path = model.save_pretrained(tmp_path / "m.safetensors")
    tiled = PRFNet.from_pretrained(path, tile_size=64, tile_stride=48)
    assert (tiled.config.tile_size, tiled.config.tile_stride) == (64, 48)
    assert PRFNet.from_pretrained(path).config.tile_size is None  # the file itself is unchanged
    r, d = images(1, 100, 70), images(1, 100, 70)
    with torch.no_grad():
        untiled_score = model.score(r, d)
        model.set_tiling(64, 48)
        expected = model.score(r, d)
        got = tiled.score(r, d)
    assert torch.equal(got, expected) and not torch.allclose(got, untiled_score, rtol=1e-3)
    # anything that changes the architecture is refused, naming what may be overridden
    with pytest.raises(InputError) as info:
        PRFNet.from_pretrained(path, fusion="single_scale")
    assert str(info.value) == "only ['tile_size', 'tile_stride'] can be overridden at load time, got ['fusion']"
    # a bad override is the caller's ConfigError, not a problem of the checkpoint
    with pytest.raises(ConfigError, match="must not exceed tile_size"):
        PRFNet.from_pretrained(path, tile_size=64, tile_stride=100)


def test_wrong_kind_of_file_is_a_clear_error(tmp_path):
    pickled = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, pickled)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        PRFNet.from_pretrained(pickled)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="not a prfnet checkpoint"):
        PRFNet.from_pretrained(plain)
    with pytest.raises(CheckpointError, match="not found"):
        PRFNet.from_pretrained(tmp_path / "absent.safetensors")


def test_config_weights_mismatch_is_a_clear_error(tmp_path):
    path = PRFNet("test_resnet").save_pretrained(tmp_path / "m.safetensors")
    meta = _header(path)["__metadata__"]
    config = json.loads(meta["config"])
    config["fusion_channels"] = 32  # config now disagrees with the stored tensors
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(path)), str(bad), metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="do not match"):
        PRFNet.from_pretrained(bad)
    config["fusion"] = "bogus"
    save_file(load_file(str(path)), str(bad), metadata={**meta, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="config"):
        PRFNet.from_pretrained(bad)


def test_checkpoint_file_gets_ordinary_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = PRFNet("test_resnet").save_pretrained(tmp_path / "m.safetensors")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
