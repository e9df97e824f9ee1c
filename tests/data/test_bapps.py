"""BAPPS 2AFC and PieAPP readers (prfnet.data.bapps) on folders written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prfnet.data import read_bapps, read_pieapp
from prfnet.errors import DataError
from tests.conftest import flat_png, write_text


def bapps_subset(folder: Path, judges: list[float]) -> Path:
    for i, judge in enumerate(judges):
        stem = f"{i:06d}"
        for j, name in enumerate(("ref", "p0", "p1")):
            flat_png(folder / name / f"{stem}.png", value=10 * i + j)
        (folder / "judge").mkdir(parents=True, exist_ok=True)
        np.save(folder / "judge" / f"{stem}.npy", np.array([judge], dtype=np.float32))
    return folder


def test_bapps_subset_labels_and_paths(tmp_path):
    folder = bapps_subset(tmp_path / "2afc" / "val" / "cnn", [0.0, 0.25, 1.0])
    items = read_bapps(folder)
    assert [item.p_a for item in items] == [1.0, 0.75, 0.0]  # p_a = 1 - judge (judge = fraction preferring p1)
    assert [item.label for item in items] == [1.0, 1.0, 0.0]
    first = items[0]
    assert Path(first.ref).is_absolute() and Path(first.ref) == (folder / "ref" / "000000.png").resolve()
    assert first.a.endswith("p0/000000.png") and first.b.endswith("p1/000000.png") and first.kind == "cnn"


def test_bapps_split_folder_reads_every_subset(tmp_path):
    split = tmp_path / "2afc" / "val"
    bapps_subset(split / "cnn", [0.5])
    bapps_subset(split / "traditional", [0.2, 0.8])
    items = read_bapps(split)
    assert [item.kind for item in items] == ["cnn", "traditional", "traditional"]
    assert items[0].label == 0.5


def test_bapps_2afc_folder_is_refused_not_pooled(tmp_path):
    root = tmp_path / "2afc"
    bapps_subset(root / "train" / "cnn", [0.5])
    bapps_subset(root / "val" / "cnn", [0.2])
    with pytest.raises(DataError, match=r"splits train, val.*one split .*never pooled"):
        read_bapps(root)
    assert [item.p_a for item in read_bapps(root / "val")] == pytest.approx([0.8])


def test_bapps_errors(tmp_path):
    with pytest.raises(DataError, match="unknown BAPPS layout"):
        read_bapps(flat_png(tmp_path / "x" / "img.png").parent)
    folder = bapps_subset(tmp_path / "s", [0.1, 0.2])
    (folder / "judge" / "000001.npy").unlink()
    with pytest.raises(DataError, match="no judge file for ref/000001"):
        read_bapps(folder)
    np.save(folder / "judge" / "000001.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="000001.npy"):
        read_bapps(folder)  # object arrays need pickle: refused
    np.save(folder / "judge" / "000001.npy", np.array([1.5]))
    with pytest.raises(DataError, match=r"000001\.npy.*\[0, 1\]"):
        read_bapps(folder)


# ---------------------------------------------------------------- PieAPP


def pieapp_root(root: Path) -> Path:
    flat_png(root / "reference_images" / "train" / "ref_0001.png")
    for name in ("distort_0001_a.png", "distort_0001_b.png", "distort_0001_c.png"):
        flat_png(root / "distorted_images" / "train" / "ref_0001" / name)
    write_text(
        root / "labels" / "train" / "ref_0001_pairwise_labels.csv",
        "ref. image,image A,image B,raw probability of preference for image A,"
        "processed probability of preference for image A\n"
        "ref_0001.png,distort_0001_a.png,distort_0001_b.png,0.9,0.85\n"
        "ref_0001.png,distort_0001_a.png,distort_0001_c.png,,0.3\n",
    )
    return root


def test_pieapp_processed_and_raw(tmp_path):
    root = pieapp_root(tmp_path / "pieapp")
    items = read_pieapp(root / "labels")
    assert [item.p_a for item in items] == [0.85, 0.3]  # P(A preferred) is p_a as is
    assert Path(items[0].ref) == (root / "reference_images" / "train" / "ref_0001.png").resolve()
    assert Path(items[1].b) == (root / "distorted_images" / "train" / "ref_0001" / "distort_0001_c.png").resolve()
    raw = read_pieapp(root / "labels" / "train" / "ref_0001_pairwise_labels.csv", probability="raw")
    assert [item.p_a for item in raw] == [0.9]  # the blank raw row is skipped


def test_pieapp_test_format_and_errors(tmp_path):
    root = pieapp_root(tmp_path / "pieapp")
    csv = root / "labels" / "train" / "ref_0001_pairwise_labels.csv"
    write_text(csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,0.25\n")
    assert [item.p_a for item in read_pieapp(csv)] == [0.25]
    write_text(
        csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,0.25\nref_0001.png,distort_0001_a.png,gone.png,0.5\n"
    )
    with pytest.raises(DataError, match=r"ref_0001_pairwise_labels\.csv, line 2: image 'gone\.png' not found"):
        read_pieapp(csv)
    write_text(csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,1.7\n")
    with pytest.raises(DataError, match="line 1: raw_prob must be a probability"):
        read_pieapp(csv)
