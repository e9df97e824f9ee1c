"""Whole fetches from the local server: the layout the readers, the trainer's data module and ``prfnet eval`` take;
a second run that downloads nothing; an unpack that dies half-way; the user's files never touched."""

from __future__ import annotations

import json

import pytest

from prfnet.cli import main
from prfnet.data import read_bapps, read_clic_oracle, read_clic_triplets
from prfnet.errors import OutputError
from prfnet.fetch import fetch, marker_path, plan
from prfnet.fetch import unpack as unpack_module
from prfnet.fetch.catalog import CATALOG
from prfnet.training.config import DataSettings
from prfnet.training.datamodule import load_training_data


def test_clic2021_test_fetched_is_read_by_the_trainer_and_eval(server, tmp_path, capsys):
    code = main(["fetch", "clic2021-test", "--to", str(tmp_path), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    folder = tmp_path / "clic2021-test"
    assert f"next: prfnet train --config clic2022 --data {folder} --out runs/clic2022" in out
    assert "no published checksum for clic_2021_test.zip" in err
    triplets = read_clic_triplets(folder / "test.csv")
    oracle = read_clic_oracle(folder / "oracle.csv")
    assert len(triplets) == 9 and len(oracle.rows) == 27
    data = load_training_data(DataSettings(format="clic", root=str(folder), train="oracle.csv"))
    assert len(data.train) + len(data.val) == 9
    assert all((folder / "images" / name).is_file() for t in triplets for name in t.names())
    marker = json.loads(marker_path(tmp_path, CATALOG["clic2021-test"]).read_text())
    assert marker["dataset"] == "clic2021-test" and len(marker["files"]) == 18
    assert all(len(f["sha256"]) == 64 for f in marker["files"])
    assert not list((tmp_path / ".prfnet-fetch").glob("staging-*"))
    code = main(["eval", "clic", "--csv", str(folder / "test.csv"), "--root", str(folder / "images"), "--oracle",
                 str(folder / "oracle.csv"), "--metrics", "psnr", "--out", str(tmp_path / "eval"), "--json",
                 "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["psnr"]["available"] is True


def test_bapps_val_fetched_is_read_by_read_bapps(server, tmp_path):
    [result] = fetch(["bapps-2afc-val"], tmp_path)
    assert result["status"] == "fetched"
    items = read_bapps(tmp_path / "bapps" / "2afc" / "val")
    assert len(items) == 6 and {t.kind for t in items} == {"traditional", "cnn"}
    assert result["next"] == [f"prfnet eval bapps --root {tmp_path / 'bapps' / '2afc' / 'val'} --metrics psnr,ssim"]


def test_second_run_downloads_nothing_and_says_complete(server, tmp_path):
    said = []
    fetch(["clic2021-valid"], tmp_path, said.append)
    requests = len(server.requests)
    said.clear()
    [again] = fetch(["clic2021-valid"], tmp_path, said.append)
    assert len(server.requests) == requests
    assert again["status"] == "complete"
    assert said == [f"clic2021-valid: already complete, verified ({tmp_path / 'clic2021-valid'})"]


def test_recorded_checksum_is_checked_on_later_downloads(server, tmp_path):
    said = []
    fetch(["clic2021-valid"], tmp_path, said.append)
    assert sum("recorded its SHA-256" in s for s in said) == 1
    ledger = json.loads((tmp_path / ".prfnet-fetch" / "checksums.json").read_text())
    assert list(ledger["files"]) == ["clic2021-valid/clic_2021_perceptual_valid.zip"]
    marker_path(tmp_path, CATALOG["clic2021-valid"]).unlink()
    archive = tmp_path / "downloads" / "clic2021-valid" / "clic_2021_perceptual_valid.zip"
    archive.unlink()
    path = "/clic2021_public/perceptual/clic_2021_perceptual_valid.zip"
    server.files[path] = server.files[path] + b"changed"
    with pytest.raises(Exception, match="SHA256") as info:
        fetch(["clic2021-valid"], tmp_path)
    assert "\n" not in str(info.value) and archive.with_name(archive.name + ".bad").is_file()


def test_an_unpack_that_dies_leaves_no_marker_and_the_next_run_completes(server, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = unpack_module._write

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed mid-unpack")
        return real(*args, **kwargs)

    monkeypatch.setattr(unpack_module, "_write", dying)
    with pytest.raises(RuntimeError):
        fetch(["clic2021-test"], tmp_path)
    assert not marker_path(tmp_path, CATALOG["clic2021-test"]).exists()
    monkeypatch.setattr(unpack_module, "_write", real)
    gets = len(server.gets())
    [result] = fetch(["clic2021-test"], tmp_path)
    assert result["status"] == "fetched" and result["downloaded"] == [] and len(server.gets()) == gets
    assert marker_path(tmp_path, CATALOG["clic2021-test"]).is_file()
    assert len(read_clic_triplets(tmp_path / "clic2021-test" / "test.csv")) == 9


def test_a_file_of_the_users_in_the_way_is_refused_and_kept(server, tmp_path):
    mine = tmp_path / "clic2021-valid" / "oracle.csv"
    mine.parent.mkdir()
    mine.write_text("my own labels\n")
    with pytest.raises(OutputError, match="never overwrites") as info:
        fetch(["clic2021-valid"], tmp_path)
    assert "\n" not in str(info.value)
    assert mine.read_text() == "my own labels\n"
    assert not (tmp_path / "clic2021-valid" / "images").exists()  # checked before anything moved
    assert not marker_path(tmp_path, CATALOG["clic2021-valid"]).exists()


def test_no_keep_archives_removes_only_what_this_run_downloaded(server, tmp_path, capsys):
    code = main(["fetch", "bapps-2afc-val", "--to", str(tmp_path), "--no-keep-archives", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["datasets"][0]["status"] == "fetched"
    assert not (tmp_path / "downloads" / "bapps-2afc-val" / "twoafc_val.tar.gz").exists()
    code = main(["fetch", "bapps-2afc-val", "--to", str(tmp_path), "--no-progress"])
    assert code == 0 and "already complete, 0 of 1 archives kept and verified" in capsys.readouterr().err


def test_dry_run_asks_the_server_for_sizes_and_downloads_nothing(server, tmp_path, capsys):
    result = plan(["bapps-2afc-val"], tmp_path)
    served = next(d for p, d in server.files.items() if p.endswith("twoafc_val.tar.gz"))
    assert result["datasets"][0]["files"][0]["server_size"] == len(served)
    assert server.gets() == [] and not (tmp_path / "downloads").exists()
    code = main(["fetch", "clic2021-valid", "--to", str(tmp_path), "--dry-run", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["disk_needed"] > 0 and server.gets() == []
