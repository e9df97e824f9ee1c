"""Downloads that go wrong, from the local server: resumed, restarted, refused; each a one-line error, nothing
unpacked, nothing marked complete."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import namedtuple

import pytest

from prfnet.cli import main
from prfnet.errors import DownloadError, OutputError
from prfnet.fetch import fetch, marker_path
from prfnet.fetch.catalog import CATALOG

from .conftest import ARCHIVES

BAPPS_PATH = next(iter(ARCHIVES["bapps-2afc-val"]))
BAPPS_BYTES = ARCHIVES["bapps-2afc-val"][BAPPS_PATH]


def _archive(tmp_path):
    return tmp_path / "downloads" / "bapps-2afc-val" / "twoafc_val.tar.gz"


def _nothing_laid_out(tmp_path) -> bool:
    return not (tmp_path / "bapps").exists() and not marker_path(tmp_path, CATALOG["bapps-2afc-val"]).exists()


def test_an_interrupted_download_resumes_with_range_and_is_byte_identical(server, tmp_path):
    server.cut[BAPPS_PATH] = len(BAPPS_BYTES) // 2
    with pytest.raises(DownloadError, match="connection closed") as info:
        fetch(["bapps-2afc-val"], tmp_path)
    assert "\n" not in str(info.value)
    part = _archive(tmp_path).with_name("twoafc_val.tar.gz.part")
    assert part.stat().st_size == len(BAPPS_BYTES) // 2 and _nothing_laid_out(tmp_path)
    [result] = fetch(["bapps-2afc-val"], tmp_path)
    assert result["status"] == "fetched"
    assert (server.requests[-1][0], server.requests[-1][2]) == ("GET", f"bytes={len(BAPPS_BYTES) // 2}-")
    assert _archive(tmp_path).read_bytes() == BAPPS_BYTES and not part.exists()


def test_a_server_without_range_restarts_and_says_so_once(server, tmp_path, caplog):
    part = _archive(tmp_path).with_name("twoafc_val.tar.gz.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(BAPPS_BYTES[:100])
    server.ignore_range = True
    with caplog.at_level(logging.WARNING):
        fetch(["bapps-2afc-val"], tmp_path)
    said = [r.getMessage() for r in caplog.records if "does not resume" in r.getMessage()]
    assert len(said) == 1 and "downloading twoafc_val.tar.gz again" in said[0]
    assert _archive(tmp_path).read_bytes() == BAPPS_BYTES
    assert server.requests[-1][2] == "bytes=100-"


def test_a_wrong_checksum_is_refused_kept_aside_and_nothing_unpacked(server, tmp_path, monkeypatch):
    ds = CATALOG["bapps-2afc-val"]
    wrong = hashlib.sha256(b"something else").hexdigest()
    monkeypatch.setitem(CATALOG, ds.name, ds.__class__(**{**ds.__dict__, "files": (
        ds.files[0].__class__(**{**ds.files[0].__dict__, "sha256": wrong}),)}))  # fmt: skip
    with pytest.raises(DownloadError, match="refused and kept aside") as info:
        fetch(["bapps-2afc-val"], tmp_path)
    assert "\n" not in str(info.value)
    bad = _archive(tmp_path).with_name("twoafc_val.tar.gz.bad")
    assert bad.read_bytes() == BAPPS_BYTES and not _archive(tmp_path).exists()
    assert _nothing_laid_out(tmp_path)


def test_404_is_one_line_exit_2(server, tmp_path, capsys):
    server.missing.add(BAPPS_PATH)
    code = main(["fetch", "bapps-2afc-val", "--to", str(tmp_path), "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "HTTP 404" in lines[0]
    assert _nothing_laid_out(tmp_path)


def test_a_full_disk_is_refused_before_downloading(server, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OutputError, match="1.0 KB free") as info:
        fetch(["bapps-2afc-val"], tmp_path)
    assert "\n" not in str(info.value)
    assert server.requests == [] and not (tmp_path / "downloads").exists()


@pytest.mark.parametrize("how", ["env", "option"])
def test_offline_is_one_line_and_asks_nothing(server, tmp_path, monkeypatch, capsys, how):
    if how == "env":
        monkeypatch.setenv("PRFNET_OFFLINE", "1")
    code = main(["fetch", "clic2021-test", "--to", str(tmp_path), *(["--offline"] if how == "option" else [])])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "not downloaded, offline" in lines[0] and "18 of 18" in lines[0]
    assert server.requests == []


def test_offline_with_the_archives_in_place_lays_them_out(server, tmp_path, monkeypatch):
    fetch(["bapps-2afc-val"], tmp_path)
    marker_path(tmp_path, CATALOG["bapps-2afc-val"]).unlink()
    requests = len(server.requests)
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    [result] = fetch(["bapps-2afc-val"], tmp_path, no_network=True)
    assert result["status"] == "fetched" and len(server.requests) == requests
