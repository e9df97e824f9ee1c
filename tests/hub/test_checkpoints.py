"""Checkpoints by URL and by name (``prfnet.hub.checkpoints``): downloaded once into the cache, hash-checked,
safetensors only (never unpickled), offline from the cache; names resolved from ``PUBLISHED``."""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path

import pytest
import torch

import prfnet.hub.checkpoints as hub_checkpoints
from prfnet import PRFNet
from prfnet.api import load_model, model_identity
from prfnet.errors import CheckpointError, DownloadError
from prfnet.hub import PublishedCheckpoint, list_checkpoints, resolve_checkpoint
from prfnet.hub.checkpoints import cache_file

WRONG = "0" * 64


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


def _cached(cache: Path, url: str) -> Path:
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache / "checkpoints" / key / url.rsplit("/", 1)[1].split("?")[0]


def _scores(model: PRFNet) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ref, dist = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        return model.score(ref, dist)


class Marker:
    """Unpickling this creates the file ``path`` (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_nothing_is_published_yet():
    assert hub_checkpoints.PUBLISHED == {} and list_checkpoints() == []


def test_a_pinned_url_is_downloaded_once_and_loads_the_same_weights(
    server, checkpoint, checkpoint_sha256, private_checkpoint_cache
):
    server.files["w/model.safetensors"] = checkpoint.read_bytes()
    url = server.url("w/model.safetensors")
    model = PRFNet.from_pretrained(url, sha256=checkpoint_sha256)
    local = PRFNet.from_pretrained(checkpoint)
    assert torch.equal(_scores(model), _scores(local))
    cached = _cached(private_checkpoint_cache, url)
    assert cached.read_bytes() == checkpoint.read_bytes() and server.requests == ["/w/model.safetensors"]
    assert model.checkpoint_file.path == str(cached)
    assert model.source == f"{url} (cached as {cached})"
    assert model_identity(model) == model_identity(local)  # the score store keys on the content, not the URL
    again = PRFNet.from_pretrained(f"{url}#sha256={checkpoint_sha256.upper()}")  # the pin in the URL
    assert len(server.requests) == 1 and torch.equal(_scores(again), _scores(local))
    assert sorted(p.name for p in cached.parent.iterdir()) == [".lock", "model.safetensors"]  # no .part, no .bad


def test_an_unpinned_url_logs_its_sha256_and_is_then_used_as_cached(server, checkpoint, checkpoint_sha256, caplog):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    url = server.url("model.safetensors")
    with caplog.at_level(logging.WARNING, logger="prfnet.hub.checkpoints"):
        load_model(url)
    assert f"{url}#sha256={checkpoint_sha256}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prfnet.hub.checkpoints"):
        load_model(url)
    assert server.requests == ["/model.safetensors"] and caplog.text == ""


def test_prfnet_checkpoint_may_name_a_url(server, checkpoint, checkpoint_sha256, monkeypatch):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    monkeypatch.setenv("PRFNET_CHECKPOINT", server.url(f"model.safetensors#sha256={checkpoint_sha256}"))
    model = load_model()
    assert model.source.startswith(server.url("model.safetensors (cached as "))


def test_a_wrong_hash_is_refused_and_nothing_usable_stays_in_the_cache(
    server, checkpoint, checkpoint_sha256, private_checkpoint_cache
):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    url = server.url("model.safetensors")
    with pytest.raises(DownloadError) as err:
        PRFNet.from_pretrained(url, sha256=WRONG)
    assert f"expected {WRONG}" in _one_line(err) and "kept aside" in str(err.value)
    cached = _cached(private_checkpoint_cache, url)
    assert not cached.exists() and cached.with_name(cached.name + ".bad").is_file()
    assert not cached.with_name(cached.name + ".part").exists()
    PRFNet.from_pretrained(url, sha256=checkpoint_sha256)  # the right pin downloads it again
    assert len(server.requests) == 2 and cached.is_file()


def test_a_cached_file_that_fails_a_later_pin_is_moved_aside_and_downloaded_again(
    server, checkpoint, checkpoint_sha256, private_checkpoint_cache
):
    url = server.url("model.safetensors")
    cached = _cached(private_checkpoint_cache, url)
    cached.parent.mkdir(parents=True)
    PRFNet("test_resnet").save_pretrained(cached)  # other weights at the cached path (the URL's old content)
    server.files["model.safetensors"] = checkpoint.read_bytes()
    model = PRFNet.from_pretrained(url, sha256=checkpoint_sha256)
    assert server.requests == ["/model.safetensors"] and cached.read_bytes() == checkpoint.read_bytes()
    assert torch.equal(_scores(model), _scores(PRFNet.from_pretrained(checkpoint)))
    assert cached.with_name(cached.name + ".bad").is_file()


def test_offline_the_cached_file_is_used_without_a_request(server, checkpoint, checkpoint_sha256, monkeypatch):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    url = server.url(f"model.safetensors#sha256={checkpoint_sha256}")
    PRFNet.from_pretrained(url)
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    PRFNet.from_pretrained(url)
    PRFNet.from_pretrained(server.url("model.safetensors"))  # unpinned: the cached file as it is
    assert len(server.requests) == 1


def test_offline_without_the_cached_file_says_where_to_put_it(server, monkeypatch, private_checkpoint_cache):
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    url = server.url("model.safetensors")
    with pytest.raises(DownloadError) as err:
        PRFNet.from_pretrained(url)
    assert f"put the file at {_cached(private_checkpoint_cache, url)}" in _one_line(err)
    assert "PRFNET_OFFLINE" in str(err.value) and server.requests == []


def test_a_404_is_one_line_and_leaves_no_file(server, private_checkpoint_cache):
    url = server.url("missing.safetensors")
    with pytest.raises(DownloadError) as err:
        PRFNet.from_pretrained(url)
    assert "HTTP 404" in _one_line(err)
    assert not _cached(private_checkpoint_cache, url).exists()


@pytest.mark.parametrize("name", ["model.safetensors", "model.pt"])
def test_a_pickle_is_refused_without_being_unpickled(server, tmp_path, private_checkpoint_cache, name):
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(Marker(marker))
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Marker(probe)))  # noqa: S301 (the test's own object: shows what unpickling does)
    assert probe.exists()
    server.files[name] = evil
    url = server.url(name)
    with pytest.raises(CheckpointError) as err:
        PRFNet.from_pretrained(url)
    assert "not a safetensors file" in _one_line(err) and "never unpickled" in str(err.value)
    cached = _cached(private_checkpoint_cache, url)
    assert not marker.exists() and not cached.exists()
    assert cached.with_name(cached.name + ".bad").read_bytes() == evil  # kept aside, never a cache entry


def test_a_url_not_ending_in_safetensors_loads_its_safetensors_content(server, checkpoint, private_checkpoint_cache):
    server.files["download?file=weights"] = checkpoint.read_bytes()
    model = PRFNet.from_pretrained(server.url("download?file=weights"))
    assert model.checkpoint_file.path.endswith("download") and torch.equal(
        _scores(model), _scores(PRFNet.from_pretrained(checkpoint))
    )


def test_a_published_name_is_resolved_from_the_listing(server, checkpoint, checkpoint_sha256, monkeypatch):
    server.files["prfnet-test.safetensors"] = checkpoint.read_bytes()
    entry = PublishedCheckpoint(
        name="prfnet-test",
        url=server.url("prfnet-test.safetensors"),
        sha256=checkpoint_sha256,
        description="the tests' tiny model",
        licence="CC0",
        config="test_resnet, untrained",
    )
    monkeypatch.setitem(hub_checkpoints.PUBLISHED, "prfnet-test", entry)
    assert list_checkpoints() == [entry]
    model = PRFNet.from_pretrained("prfnet-test")
    assert model.source.startswith(f"prfnet-test ({entry.url}, cached as ")
    assert torch.equal(_scores(model), _scores(PRFNet.from_pretrained(checkpoint)))
    assert load_model("prfnet-test").checkpoint_file.path == model.checkpoint_file.path
    assert len(server.requests) == 1
    with pytest.raises(CheckpointError, match="two different sha256 pins"):
        PRFNet.from_pretrained("prfnet-test", sha256=WRONG)


def test_an_unknown_name_lists_what_is_published(monkeypatch):
    with pytest.raises(CheckpointError) as err:
        PRFNet.from_pretrained("prfnet-clic2022")
    assert _one_line(err) == (
        "no published checkpoint named 'prfnet-clic2022' (and no file of that name); published: none yet "
        "(see docs/checkpoints.md)"
    )
    entry = PublishedCheckpoint("prfnet-a", "http://127.0.0.1:9/a.safetensors", WRONG, "", "", "")
    monkeypatch.setitem(hub_checkpoints.PUBLISHED, "prfnet-a", entry)
    with pytest.raises(CheckpointError, match="published: prfnet-a "):
        PRFNet.from_pretrained("prfnet-b")


def test_a_local_file_named_like_a_checkpoint_name_is_a_file(checkpoint, tmp_path, monkeypatch):
    (tmp_path / "mymodel").write_bytes(checkpoint.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert PRFNet.from_pretrained("mymodel").source == "mymodel"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("http://127.0.0.1:9/m.safetensors#md5=00", "unknown URL fragment #md5=00"),
        ("http://127.0.0.1:9/m.safetensors#sha256=abc", "sha256 must be 64 hex digits"),
        ("ftp://127.0.0.1/m.safetensors", "only http:// and https:// URLs"),
        (Path("https://example.org/m.safetensors"), "lost its '//'"),
        ("missing.safetensors", "checkpoint not found"),
    ],
)
def test_bad_specs_are_one_line_checkpoint_errors(server, spec, message):
    with pytest.raises(CheckpointError) as err:
        PRFNet.from_pretrained(spec)
    assert message in _one_line(err) and server.requests == []


def test_a_pin_on_a_local_file_is_checked(checkpoint, checkpoint_sha256):
    assert PRFNet.from_pretrained(checkpoint, sha256=checkpoint_sha256).source == str(checkpoint)
    with pytest.raises(CheckpointError) as err:
        PRFNet.from_pretrained(checkpoint, sha256=WRONG)
    assert "the sha256 pin" in _one_line(err)


def test_the_cache_layout_and_a_folder_given_directly(server, checkpoint, tmp_path):
    url = "https://example.org/a/b/prfnet%20v1.safetensors?download=1"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    assert cache_file(url, tmp_path) == tmp_path / key / "prfnet v1.safetensors"
    assert cache_file("https://example.org/", tmp_path).name == "checkpoint.safetensors"
    server.files["model.safetensors"] = checkpoint.read_bytes()
    path = resolve_checkpoint(server.url("model.safetensors"), cache=tmp_path / "mine")
    assert path.parent.parent == tmp_path / "mine" and path.read_bytes() == checkpoint.read_bytes()


def test_a_download_on_a_terminal_shows_its_progress_on_one_line():
    import io

    from prfnet.hub.checkpoints import terminal_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert terminal_progress("m.safetensors", io.StringIO()) is None  # a pipe or a log: nothing
    screen = Terminal()
    update = terminal_progress("m.safetensors", screen, every_s=0.0)
    for done in (1_000_000, 2_000_000, 3_000_000):
        update(done, 3_000_000)
    text = screen.getvalue()
    assert text.count("\r") == 3 and text.endswith("3.0 MB / 3.0 MB\n") and text.count("\n") == 1
