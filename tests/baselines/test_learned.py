"""LPIPS / DISTS weights: the VGG16 file downloaded on first use (torchvision's URL and hash check) from a local
HTTP server on 127.0.0.1 (no real internet), the small layer weights from torchmetrics' wheel, one-line
MetricUnavailable offline or on a failed download, and scores equal to piq's own LPIPS / DISTS fed the same weights."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import types

import pytest
import torch

from prfnet.baselines import MetricUnavailable, available_metrics, get_metric, learned
from prfnet.baselines.registry import metric_info


@pytest.fixture()
def served(tmp_path):
    """(folder, base URL): an http.server on 127.0.0.1 (port 0) serving ``folder``, stopped after the test."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache and weights folder; online (no $PRFNET_OFFLINE); returns the checkpoints folder."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(tmp_path / "no_weights"))
    monkeypatch.delenv("PRFNET_OFFLINE", raising=False)
    monkeypatch.delenv("PRFNET_VGG16_URL", raising=False)
    return tmp_path / "hub" / "checkpoints"


def no_downloads(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def hashed_name(path) -> str:
    """torchvision's naming: vgg16-<first 8 hex digits of the file's SHA-256>.pth"""
    return f"vgg16-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}.pth"


@pytest.fixture(scope="module")
def vgg_state(tmp_path_factory):
    """Random VGG16 ``features.*`` tensors in torchvision's format (a 59 MB file), written once."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_default_url_and_file_are_torchvisions():
    from torchvision.models import VGG16_Weights

    assert VGG16_Weights.IMAGENET1K_V1.url == learned.VGG16_URL
    assert learned.VGG16_FILE == "vgg16-397923af.pth"


def test_download_checks_the_hash_and_lands_in_the_hub_cache(served, hub, monkeypatch):
    folder, base = served
    small = folder / "small.pth"
    torch.save({"features.0.weight": torch.arange(6.0)}, small)
    name = hashed_name(small)
    small.rename(folder / name)
    monkeypatch.setenv("PRFNET_VGG16_URL", f"{base}/{name}")
    assert learned.vgg16_file() == name
    assert available_metrics()["lpips"] is None  # cheap: nothing fetched yet
    assert not hub.exists()
    assert metric_info("lpips")["status"] == f"yes (downloads {name} on first use)"
    path = learned.download_vgg16()
    assert path == hub / name and path.read_bytes() == (folder / name).read_bytes()
    assert [p.name for p in hub.iterdir()] == [name]  # no partial file left
    state = torch.load(path, weights_only=True)
    assert torch.equal(state["features.0.weight"], torch.arange(6.0))
    assert metric_info("lpips")["status"] == "yes"


def test_wrong_hash_is_refused_and_nothing_is_kept(served, hub, monkeypatch):
    folder, base = served
    small = folder / "small.pth"
    torch.save({"features.0.weight": torch.ones(3)}, small)
    digest = hashlib.sha256(small.read_bytes()).hexdigest()
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    small.rename(folder / f"vgg16-{wrong}.pth")
    monkeypatch.setenv("PRFNET_VGG16_URL", f"{base}/vgg16-{wrong}.pth")
    with pytest.raises(MetricUnavailable) as info:
        get_metric("lpips")
    message = str(info.value)
    assert "\n" not in message and f"vgg16-{wrong}.pth" in message and "hash" in message and str(hub) in message
    assert list(hub.iterdir()) == []


@pytest.mark.parametrize("path", ["missing.pth", None])
def test_failed_download_is_one_line(served, hub, monkeypatch, path):
    folder, base = served
    if path is None:  # nothing listening: connection refused
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{probe.getsockname()[1]}"
        path = "vgg16-397923af.pth"
    monkeypatch.setenv("PRFNET_VGG16_URL", f"{base}/{path}")
    with pytest.raises(MetricUnavailable) as info:
        get_metric("dists")
    message = str(info.value)
    assert message.startswith("DISTS weights not found: ") and "\n" not in message
    assert "download failed" in message and str(hub) in message and "with internet" in message


def test_offline_names_the_file_and_the_folder_and_downloads_nothing(hub, monkeypatch):
    no_downloads(monkeypatch)
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    reasons = available_metrics()
    for name in ("lpips", "dists"):
        reason = reasons[name]
        assert reason.startswith(f"{name.upper()} weights not found: vgg16-397923af.pth missing from ")
        assert str(hub) in reason and "downloaded there on first use" in reason and "\n" not in reason
        assert "lpips_weights" not in reason and "dists_weights" not in reason  # torchmetrics ships those
        with pytest.raises(MetricUnavailable) as info:
            get_metric(name)
        assert str(info.value) == reason
        assert metric_info(name)["available"] is False


def test_small_weights_come_from_torchmetrics(hub):
    import torchmetrics

    for name, relative in learned.TORCHMETRICS_FILES.items():
        assert learned.small_weight(name) == learned.bundled_weight(name)
        assert str(learned.small_weight(name)).startswith(torchmetrics.__path__[0])
        assert learned.small_weight(name).as_posix().endswith(relative)
    lpips = learned.lpips_layer_weights()
    assert [w.shape[1] for w in lpips] == [64, 128, 256, 512, 512] and all((w >= 0).all() for w in lpips)
    dists = learned.dists_layer_weights()
    assert len(dists) == 12 and sum(w.sum() for w in dists).item() == pytest.approx(1.0, abs=1e-5)


def test_first_use_downloads_then_scores_then_reuses_the_file(served, hub, monkeypatch, vgg_state):
    folder, base = served
    name = hashed_name(vgg_state)
    (folder / name).symlink_to(vgg_state)
    monkeypatch.setenv("PRFNET_VGG16_URL", f"{base}/{name}")
    metric = get_metric("lpips")
    assert (hub / name).is_file()
    torch.manual_seed(1)
    ref = torch.rand(1, 3, 48, 48)
    noisy = (ref + 0.2 * torch.randn_like(ref)).clamp(0, 1)
    assert metric(ref, ref).item() < 1e-6 and metric(ref, noisy).item() > 1e-3
    no_downloads(monkeypatch)
    assert get_metric("dists")(ref, noisy).item() > get_metric("dists")(ref, ref).item()


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_scores_equal_piqs_own_implementation_fed_the_same_weights(name, hub, monkeypatch, vgg_state):
    """piq.LPIPS() / piq.DISTS() with their downloads replaced by the very same tensors -> identical scores."""
    import piq
    import piq.perceptual
    from torchvision.models.vgg import cfgs, make_layers

    hub.mkdir(parents=True)
    (hub / learned.VGG16_FILE).symlink_to(vgg_state)
    state = torch.load(vgg_state, weights_only=True)
    features = make_layers(cfgs["D"])
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    small = torch.load(learned.bundled_weight(name), map_location="cpu", weights_only=True)
    if name == "lpips":  # piq's lpips_weights.pt: the 5 tensors as a list, in layer order
        piq_weights = [small[f"lin{i}.model.1.weight"] for i in range(5)]
    else:  # piq's dists_weights.pt: {'alpha', 'beta'} summing to 1 together
        total = small["alpha"].sum() + small["beta"].sum()
        piq_weights = {key: small[key] / total for key in ("alpha", "beta")}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *args, **kwargs: piq_weights)
    monkeypatch.setattr(piq.perceptual, "vgg16", lambda *args, **kwargs: types.SimpleNamespace(features=features))
    theirs = (piq.LPIPS(reduction="none") if name == "lpips" else piq.DISTS(reduction="none")).eval()

    no_downloads(monkeypatch)
    ours = get_metric(name)
    torch.manual_seed(2)
    ref = torch.rand(3, 3, 64, 80)
    dist = (ref + 0.1 * torch.randn_like(ref)).clamp(0, 1)
    with torch.no_grad():
        expected = theirs(dist, ref).double()
    torch.testing.assert_close(ours(ref, dist), expected, rtol=1e-5, atol=1e-6)
