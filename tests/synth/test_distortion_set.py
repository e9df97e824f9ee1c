"""Synthetic CLIC-format set: formats, labels by construction, determinism, CLI errors."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.cli import main
from prfnet.data.clic import read_kinds
from prfnet.errors import ConfigError, DataError
from prfnet.synth import distortions as sd
from prfnet.synth.distortion_set import KINDS, synthesize_clic

SIZE = 64
VOTES = 3
BARELY_VISIBLE = ("offset", "contrast", "shift")
STRUCTURAL = ("blocking", "blur", "noise")


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return synthesize_clic(out, refs=2, size=SIZE, seed=3, votes=VOTES)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _pixels(summary, name: str) -> np.ndarray:
    with Image.open(summary.images_dir / name) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (SIZE, SIZE), name
        return np.asarray(img)


def _closer_and_farther(summary) -> list[tuple[str, str, str, str]]:
    """(O, closer, farther, kind) for every key of the oracle, from the written files only."""
    kinds = read_kinds(summary.kinds_csv)
    out = []
    for o, a, b, t in _rows(summary.oracle_csv):
        closer, farther = (a, b) if t == "0" else (b, a)
        out.append((o, closer, farther, kinds[(o, a, b)]))
    return sorted(set(out))


def test_files_exist_with_the_clic_formats(synth_set):
    validation = _rows(synth_set.validation_csv)
    oracle = _rows(synth_set.oracle_csv)
    kinds_rows = _rows(synth_set.kinds_csv)
    assert synth_set.readme.read_text().count("NOT HUMAN JUDGMENTS") == 1
    assert all(len(r) == 3 for r in validation) and len(validation) == synth_set.validation_rows
    assert all(len(r) == 4 and r[3] in ("0", "1") for r in oracle) and len(oracle) == synth_set.oracle_rows
    assert [r[:3] for r in kinds_rows] == validation and {r[3] for r in kinds_rows} == set(KINDS)
    # the official scorer needs every oracle key in the submission, i.e. in validation.csv
    assert {tuple(r[:3]) for r in oracle} == {tuple(r) for r in validation}
    names = {n for row in validation for n in row}
    assert names == {p.name for p in synth_set.images_dir.iterdir()}
    assert len(names) == synth_set.images
    for name in names:
        _pixels(synth_set, name)
    assert {r[0] for r in validation} == {"ref_000.png", "ref_001.png"}


def test_votes_agree_and_some_rows_are_swapped(synth_set):
    votes = defaultdict(list)  # unordered triplet -> "is the alphabetically first distorted image closer" per row
    swapped_rows = 0
    first_orientation = {}
    for o, a, b, t in _rows(synth_set.oracle_csv):
        key = (o, *sorted((a, b)))
        first_orientation.setdefault(key, (a, b))
        swapped_rows += (a, b) != first_orientation[key]
        votes[key].append((a < b) == (t == "0"))
    assert len(votes) == synth_set.triplets == sum(synth_set.kinds.values())
    assert all(len(v) == VOTES and len(set(v)) == 1 for v in votes.values())
    assert swapped_rows > 0


def test_a_and_b_are_balanced_per_kind(synth_set):
    official = {tuple(r[:3]): r[3] for r in _rows(synth_set.oracle_csv)}
    kinds = read_kinds(synth_set.kinds_csv)
    a_closer, seen = defaultdict(list), set()
    for o, a, b in _rows(synth_set.validation_csv):
        if (o, b, a) in seen:  # the swapped copy of a triplet already counted
            continue
        seen.add((o, a, b))
        a_closer[kinds[(o, a, b)]].append(official[(o, a, b)] == "0")
    for kind in KINDS:
        n = len(a_closer[kind])
        assert n == synth_set.kinds[kind] > 0
        assert abs(2 * sum(a_closer[kind]) - n) <= 1, kind


def _family_level(name: str) -> tuple[str, float, bool]:
    """(family, level, higher level = milder) parsed from a within-family image name."""
    match = re.fullmatch(r"ref_\d+_(jpeg|webp|blur|noise|resample)_[qsx]([\d.]+)\.png", name)
    assert match, name
    return match.group(1), float(match.group(2)), match.group(1) in ("jpeg", "webp")


def test_within_family_the_milder_level_is_closer(synth_set):
    pairs = [t for t in _closer_and_farther(synth_set) if t[3] == "within_family"]
    assert len(pairs) > 0
    for o, closer, farther, _ in pairs:
        family, closer_level, higher_is_milder = _family_level(closer)
        other_family, farther_level, _ = _family_level(farther)
        assert family == other_family
        assert (closer_level > farther_level) if higher_is_milder else (closer_level < farther_level)
        ref = _pixels(synth_set, o)
        assert sd.mse(ref, _pixels(synth_set, closer)) < sd.mse(ref, _pixels(synth_set, farther))


def test_matched_mse_pairs_have_equal_mse_and_psnr_cannot_tell(synth_set):
    pairs = [t for t in _closer_and_farther(synth_set) if t[3] == "matched_mse"]
    assert len(pairs) > 0
    for o, closer, farther, _ in pairs:
        assert closer.removesuffix(".png").rsplit("_", 1)[1] in BARELY_VISIBLE
        assert farther.removesuffix(".png").rsplit("_", 1)[1] in STRUCTURAL
        ref = _pixels(synth_set, o)
        mse_closer, mse_farther = sd.mse(ref, _pixels(synth_set, closer)), sd.mse(ref, _pixels(synth_set, farther))
        assert mse_closer > 0
        assert abs(mse_closer - mse_farther) <= 0.01 * max(mse_closer, mse_farther)
        psnr_gap = abs(sd.psnr(ref, _pixels(synth_set, closer)) - sd.psnr(ref, _pixels(synth_set, farther)))
        assert psnr_gap < 0.05  # dB: PSNR is a coin flip here


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_set(synth_set, tmp_path):
    again = synthesize_clic(tmp_path / "again", refs=2, size=SIZE, seed=3, votes=VOTES)
    assert _snapshot(again.out_dir) == _snapshot(synth_set.out_dir)
    other = synthesize_clic(tmp_path / "other", refs=2, size=SIZE, seed=4, votes=VOTES)
    assert other.oracle_csv.read_bytes() != synth_set.oracle_csv.read_bytes()
    assert (other.images_dir / "ref_000.png").read_bytes() != (synth_set.images_dir / "ref_000.png").read_bytes()


def test_rerun_into_a_used_folder_replaces_only_our_files(tmp_path):
    synthesize_clic(tmp_path, refs=2, size=SIZE, seed=0, votes=1)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "images" / "mine.png").write_bytes(b"not ours")
    summary = synthesize_clic(tmp_path, refs=1, size=SIZE, seed=0, votes=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "images" / "mine.png").exists()
    assert not list((tmp_path / "images").glob("ref_001*"))  # stale images of the first run are gone
    assert len(_rows(summary.oracle_csv)) == summary.triplets  # one vote: no swapped rows
    assert {r[0] for r in _rows(summary.validation_csv)} == {"ref_000.png"}


def test_procedural_references_when_photos_run_out(tmp_path, monkeypatch):
    monkeypatch.setattr(sd, "photo_crops", lambda size, seed: [])
    summary = synthesize_clic(tmp_path, refs=1, size=SIZE, seed=0, votes=2)
    assert summary.procedural_references == 1 and summary.photo_references == 0
    assert summary.kinds["within_family"] > 0 and summary.kinds["matched_mse"] > 0
    ref = _pixels(summary, "ref_000.png")
    assert sd.luminance(ref).std() > sd.MIN_CROP_STD  # not a flat image


def test_read_kinds_errors_name_file_and_line(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_kinds(tmp_path / "missing.csv")
    bad = tmp_path / "kinds.csv"
    bad.write_text("r.png,a.png,b.png,within_family\nr.png,a.png,b.png\n")
    with pytest.raises(DataError, match=r"kinds\.csv, line 2: expected 4 columns"):
        read_kinds(bad)
    bad.write_text("r.png,a.png,b.png,within_family\n\nr.png,a.png,b.png,matched_mse\n")
    with pytest.raises(DataError, match=r"line 3: .*within_family"):
        read_kinds(bad)


@pytest.mark.parametrize("kwargs", [{"refs": 0}, {"size": 63}, {"seed": -1}, {"votes": 0}, {"refs": 1.5}])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        synthesize_clic(tmp_path, **kwargs)
    assert not (tmp_path / "oracle.csv").exists()


@pytest.mark.parametrize(("args", "expected"), [(["--refs", "0"], "--refs"), (["--size", "32"], "--size")])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, expected):
    code = main(["synth", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_json_summary(tmp_path, capsys):
    code = main(["synth", str(tmp_path / "out"), "--refs", "1", "--size", str(SIZE), "--votes", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    doc = json.loads(captured.out)
    assert set(doc["kinds"]) == set(KINDS)
    assert sum(doc["kinds"].values()) == doc["triplets"] > 0
    assert len(_rows(Path(doc["oracle_csv"]))) == doc["oracle_rows"] == 2 * doc["triplets"]
    assert Path(doc["images_dir"]).is_dir()
