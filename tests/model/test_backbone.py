"""The SE-Res2Net50 backbone: structure, and both pretrained-weight loading paths (hub name, local file)."""

from __future__ import annotations

import logging

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.layers import SEModule

from prfnet import CheckpointError, PRFNet
from prfnet.model import backbone as backbone_mod
from prfnet.model.backbone import HubUnavailable, IdentityInitSE, build_backbone, feature_channels


@pytest.fixture(scope="module")
def seres2net50():
    return build_backbone("seres2net50")


# Res2Net-50 (Gao et al., TPAMI 2019, Table 1; timm's ``res2net50_26w_4s``) has ResNet-50's four stages of
# 3, 4, 6 and 3 bottlenecks with 256, 512, 1024 and 2048 output channels, at strides 4, 8, 16 and 32.
STAGES = ((3, 256), (4, 512), (6, 1024), (3, 2048))


def se_parameters(channels: int, reduction: int = 16) -> int:
    """Parameters of one SE module (Hu et al., CVPR 2018) on ``channels``: two 1 x 1 convolutions with biases,
    C -> C / r -> C, r = 16 (timm's ``SEModule`` defaults, which ``IdentityInitSE`` states it keeps)."""
    hidden = channels // reduction
    return (channels * hidden + hidden) + (hidden * channels + channels)


def test_full_seres2net50_structure(seres2net50):
    net = seres2net50
    params = sum(p.numel() for p in net.parameters())
    # the parameters are those of timm's plain Res2Net-50 feature extractor (random init; no classifier) plus
    # one SE module per bottleneck, counted by formula: 23,650,120 + 2,530,992 = 26,181,112
    plain = timm.create_model("res2net50_26w_4s", features_only=True, out_indices=(1, 2, 3, 4))
    se = sum(blocks * se_parameters(channels) for blocks, channels in STAGES)
    assert params == sum(p.numel() for p in plain.parameters()) + se
    bottlenecks = [m for name, m in net.named_modules() if type(m).__name__ == "Bottle2neck"]
    assert len(bottlenecks) == sum(blocks for blocks, _ in STAGES) == 16
    assert all(isinstance(b.se, IdentityInitSE) for b in bottlenecks)
    assert all(b.scale == 4 for b in bottlenecks)
    widths = [channels for blocks, channels in STAGES for _ in range(blocks)]
    assert [(b.se.fc1.in_channels, b.se.fc1.out_channels) for b in bottlenecks] == [(c, c // 16) for c in widths]
    assert feature_channels(net) == [channels for _, channels in STAGES]
    assert list(net.feature_info.reduction()) == [4, 8, 16, 32]  # timm's down-sampling factor of each map
    with torch.no_grad():
        feats = net(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 64 // s, 96 // s) for (_, c), s in zip(STAGES, (4, 8, 16, 32), strict=True)
    ]


def test_prfnet_default_backbone_is_seres2net50_and_exposed():
    model = PRFNet()
    assert model.config.backbone == "seres2net50"
    assert [p.in_channels for p in model.pair.proj.values()] == [256, 512, 1024, 2048]
    assert model.backbone.feature_info.reduction() == [4, 8, 16, 32]


def _classifier_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model("res2net50_26w_4s").state_dict()


def test_local_weights_file_loads_everything_but_se(tmp_path, caplog):
    state = _classifier_state(1)
    path = tmp_path / "res2net50.safetensors"
    save_file(state, str(path))
    with caplog.at_level(logging.INFO, logger="prfnet.model.backbone"):
        net = build_backbone("seres2net50", weights=path)
    own = net.state_dict()
    loaded = [k for k in own if k in state]
    assert len(loaded) > 300
    assert all(torch.equal(own[k], state[k]) for k in loaded)
    assert all(".se." in k for k in own if k not in state)
    assert "64 SE tensors" in caplog.text


def test_hub_path_uses_timm_pretrained_weights(tmp_path, monkeypatch, caplog):
    """The hub path runs timm's own pretrained loader; the hub download is redirected to a file the test
    writes (timm's ``pretrained_cfg_overlay``), since no network is reachable here."""
    state = _classifier_state(2)
    weights = tmp_path / "res2net50_26w_4s.safetensors"
    save_file(state, str(weights))
    real_create = timm.create_model
    calls = []

    def create_with_local_hub_file(name, pretrained=False, **kwargs):
        if pretrained:
            calls.append(name)
            kwargs["pretrained_cfg_overlay"] = {"file": str(weights)}
        return real_create(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(backbone_mod.timm, "create_model", create_with_local_hub_file)
    monkeypatch.setattr(backbone_mod, "hub_reachable", lambda: (True, ""))  # as if online
    with caplog.at_level(logging.INFO, logger="prfnet.model.backbone"):
        model = PRFNet(pretrained_backbone=True)
    assert calls == ["res2net50_26w_4s"]
    w = model.backbone.state_dict()["layer3.2.convs.1.weight"]
    assert torch.equal(w, state["layer3.2.convs.1.weight"])
    assert "start from initialisation" in caplog.text


def test_bad_weights_files_are_rejected(tmp_path):
    pickled = tmp_path / "weights.pth"
    torch.save({"a": torch.zeros(1)}, pickled)
    with pytest.raises(CheckpointError, match="safetensors"):
        build_backbone("test_resnet", weights=pickled)
    with pytest.raises(CheckpointError, match="not found"):
        build_backbone("test_resnet", weights=tmp_path / "missing.safetensors")
    unrelated = tmp_path / "unrelated.safetensors"
    save_file({"foo.weight": torch.zeros(3)}, str(unrelated))
    with pytest.raises(CheckpointError, match="does not match"):
        build_backbone("test_resnet", weights=unrelated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        build_backbone("test_resnet", weights=garbage)


def test_a_failed_download_is_a_checkpoint_error_with_the_offline_hint(monkeypatch):
    real_create = timm.create_model

    def offline_create(name, pretrained=False, **kwargs):
        if pretrained:
            raise FileNotFoundError("no network and no cached file")  # what huggingface_hub raises offline
        return real_create(name, **kwargs)

    monkeypatch.setattr(backbone_mod.timm, "create_model", offline_create)
    monkeypatch.setattr(backbone_mod, "hub_reachable", lambda: (True, ""))  # the probe passed, the download failed
    with pytest.raises(
        HubUnavailable, match=r"the download failed \(FileNotFoundError\); offline, pass backbone_weights"
    ):
        build_backbone("test_resnet", pretrained=True)


@pytest.fixture()
def offline(monkeypatch):
    """No hub: every connection fails at once, nothing is cached, and timm must not be asked to download."""
    attempts = []

    def refuse(address, timeout=None):
        attempts.append((address, timeout))
        raise OSError(-2, "Name or service not known")

    real_create = timm.create_model

    def no_download(name, pretrained=False, **kwargs):
        if pretrained and "file" not in kwargs.get("pretrained_cfg_overlay", {}):
            pytest.fail("timm was asked to download while offline (huggingface_hub would retry for a minute)")
        return real_create(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(backbone_mod.socket, "create_connection", refuse)
    monkeypatch.setattr(backbone_mod, "try_to_load_from_cache", lambda repo, name: None)
    monkeypatch.setattr(backbone_mod.timm, "create_model", no_download)
    monkeypatch.setattr(backbone_mod.hub_constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return attempts


def test_offline_fails_after_one_connection_attempt(offline):
    with pytest.raises(HubUnavailable) as caught:
        build_backbone("test_resnet", pretrained=True)
    assert offline == [(("huggingface.co", 443), backbone_mod.HUB_PROBE_TIMEOUT_S)]  # one try, no retries
    assert str(caught.value) == (
        "cannot fetch the ImageNet weights of test_resnet: the hub (huggingface.co:443) is unreachable (Name or "
        "service not known) and they are not in the local cache; offline, pass backbone_weights=PATH (a local "
        ".safetensors file of timm's test_resnet), or pretrained_backbone=False"
    )
    assert isinstance(caught.value, CheckpointError) and caught.value.arch == "test_resnet"


def test_hf_hub_offline_and_proxies(offline, monkeypatch):
    monkeypatch.setattr(backbone_mod.hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailable, match="HF_HUB_OFFLINE is set and they are not in the local cache"):
        build_backbone("test_resnet", pretrained=True)
    assert offline == []  # not even a probe
    monkeypatch.setattr(backbone_mod.hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert backbone_mod.hub_reachable()[0] is False
    assert offline[-1][0] == ("proxy.example", 3128)  # through a proxy, the proxy is what must answer


def test_offline_with_a_warm_cache_loads_the_cached_file(offline, monkeypatch, tmp_path):
    cached = tmp_path / "model.safetensors"
    source = timm.create_model("test_resnet")
    save_file(source.state_dict(), str(cached))
    monkeypatch.setattr(
        backbone_mod, "try_to_load_from_cache", lambda repo, name: str(cached) if "safetensors" in name else None
    )
    net = build_backbone("test_resnet", pretrained=True)
    assert torch.equal(net.state_dict()["conv1.0.weight"], source.state_dict()["conv1.0.weight"])


def test_sigmoid_se_gate_is_timms_se_and_format_1_checkpoints_keep_it(tmp_path):
    """Models saved before the identity gate existed (no se_gate in their config) load with timm's SE."""
    import json

    from safetensors import safe_open

    model = PRFNet(se_gate="sigmoid", pair_channels=8, fusion_channels=8)
    assert all(type(m.se) is SEModule for m in model.backbone.modules() if type(m).__name__ == "Bottle2neck")
    path = model.save_pretrained(tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    config = json.loads(meta["config"])
    del config["se_gate"], config["backbone_norm"]
    meta.update(config=json.dumps(config), format_version="1")
    save_file(state, str(tmp_path / "old.safetensors"), metadata=meta)
    old = PRFNet.from_pretrained(tmp_path / "old.safetensors")
    assert old.config.se_gate == "sigmoid"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(old.score(x, x.flip(-1)), model.score(x, x.flip(-1)))
