"""``--checkpoint URL#sha256=HEX`` (and ``$PRFNET_CHECKPOINT``) on the command line, against a local server: the
scores of the local file, the download once; bad input is one ``error:`` line and exit 2."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_options import one_error_line, run
from tests.conftest import write_noisy_copies

WRONG = "0" * 64


@pytest.fixture()
def images(tmp_path) -> dict[str, str]:
    (tmp_path / "img").mkdir()
    return {k: str(v) for k, v in write_noisy_copies(tmp_path / "img", 0, [0.05, 0.3]).items()}


def test_score_with_a_pinned_url_gives_the_scores_of_the_local_file(
    capsys, server, images, checkpoint, checkpoint_sha256, monkeypatch
):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    url = server.url(f"model.safetensors#sha256={checkpoint_sha256}")
    local = run(capsys, "score", images["ref"], images["d0"], images["d1"], "-c", str(checkpoint), "--json")
    remote = run(capsys, "score", images["ref"], images["d0"], images["d1"], "-c", url, "--json")
    assert local[0] == remote[0] == 0 and json.loads(remote[1]) == json.loads(local[1])
    monkeypatch.setenv("PRFNET_CHECKPOINT", url)  # the same through the environment, from the cache
    from_env = run(capsys, "score", images["ref"], images["d0"], images["d1"], "--json")
    assert from_env[0] == 0 and json.loads(from_env[1]) == json.loads(local[1])
    assert server.requests == ["/model.safetensors"]


def test_compare_with_a_published_name(capsys, server, images, checkpoint, checkpoint_sha256, monkeypatch):
    import prfnet.hub.checkpoints as hub_checkpoints

    server.files["c.safetensors"] = checkpoint.read_bytes()
    entry = hub_checkpoints.PublishedCheckpoint("prfnet-t", server.url("c.safetensors"), checkpoint_sha256, "", "", "")
    monkeypatch.setitem(hub_checkpoints.PUBLISHED, "prfnet-t", entry)
    code, out, _ = run(capsys, "compare", images["ref"], images["d0"], images["d1"], "-c", "prfnet-t", "--json")
    assert code == 0 and 0.0 <= json.loads(out)["prob_a"] <= 1.0


@pytest.mark.parametrize(
    "make_spec, expected",
    [
        (lambda s, sha: s.url(f"model.safetensors#sha256={WRONG}"), "expected " + WRONG),
        (lambda s, sha: s.url("nothing.safetensors"), "HTTP 404"),
        (lambda s, sha: s.url("pickle.pt"), "not a safetensors file"),
        (lambda s, sha: s.url("model.safetensors#sha256=12ab"), "sha256 must be 64 hex digits"),
        (lambda s, sha: s.url("model.safetensors#md5=12ab"), "unknown URL fragment"),
        (lambda s, sha: "ftp://127.0.0.1/model.safetensors", "only http:// and https:// URLs"),
        (lambda s, sha: "prfnet-clic2022", "no published checkpoint named 'prfnet-clic2022'"),
    ],
    ids=["wrong-hash", "404", "pickle", "short-pin", "md5-fragment", "ftp", "unknown-name"],
)
def test_bad_checkpoints_are_one_error_line(capsys, server, images, checkpoint, make_spec, expected):
    server.files["model.safetensors"] = checkpoint.read_bytes()
    server.files["pickle.pt"] = b"\x80\x04\x95\x00"  # a pickle header
    spec = make_spec(server, None)
    line = one_error_line(*run(capsys, "score", images["ref"], images["d0"], "-c", spec))
    assert expected in line


def test_offline_without_the_cached_file_is_one_error_line(capsys, server, images, monkeypatch, tmp_path):
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    line = one_error_line(*run(capsys, "score", images["ref"], images["d0"], "-c", server.url("m.safetensors")))
    assert "put the file at" in line and str(tmp_path / "cache" / "checkpoints") in line and server.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["rank", "ref.png", "a.png", "b.png"],
        ["rd", "--example", "--out", "out", "-m", "prfnet,psnr"],
        ["tune", "--example", "--match", "jpeg420:q85", "--metric", "prfnet", "--out", "out"],
        ["eval", "clic", "--csv", "v.csv", "--root", "images", "--out", "out"],
    ],
    ids=["rank", "rd", "tune", "eval-clic"],
)
def test_every_command_checks_a_bad_pin_before_any_work(capsys, server, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*run(capsys, *args, "-c", server.url("model.safetensors#sha256=xyz")))
    assert "sha256 must be 64 hex digits" in line and server.requests == []
    assert not (tmp_path / "out").exists()
