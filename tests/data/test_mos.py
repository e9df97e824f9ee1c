"""MOS readers (prfnet.data.mos): KADID, PIPAL, TID2013 and a generic CSV; pairs of one reference labelled by
their scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from prfnet.data import MosItem, MosSet, mos_pairs, read_kadid, read_mos_csv, read_pipal, read_tid2013
from prfnet.errors import DataError
from tests.conftest import flat_png, write_text


def test_kadid(tmp_path):
    for name in ("I01.png", "I01_01_01.png", "I01_01_02.png"):
        flat_png(tmp_path / "images" / name)
    write_text(
        tmp_path / "dmos.csv",
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.49\nI01_01_02.png,I01.png,2.1,1\n",
    )
    mos = read_kadid(tmp_path)
    assert mos.higher_better and mos.root == tmp_path.resolve()
    assert mos.items == [
        MosItem("images/I01.png", "images/I01_01_01.png", 4.57),
        MosItem("images/I01.png", "images/I01_01_02.png", 2.1),
    ]
    write_text(
        tmp_path / "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.49\nI01_01_09.png,I01.png,2,1\n"
    )
    with pytest.raises(DataError, match=r"dmos\.csv, line 3: image 'I01_01_09\.png' not found"):
        read_kadid(tmp_path)
    write_text(tmp_path / "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,high,0.49\n")
    with pytest.raises(DataError, match=r"dmos\.csv, line 2: dmos must be a number"):
        read_kadid(tmp_path)
    write_text(tmp_path / "dmos.csv", "I01_01_01.png,I01.png,4.57,0.49\n")
    with pytest.raises(DataError, match=r"line 1: header must name the columns"):
        read_kadid(tmp_path)


def test_pipal(tmp_path):
    flat_png(tmp_path / "Train_Ref" / "A0001.bmp")
    flat_png(tmp_path / "Train_Dis" / "A0001_00_00.bmp")
    flat_png(tmp_path / "Distortion_2" / "A0001_01_03.bmp")
    write_text(tmp_path / "Train_Label" / "A0001.txt", "A0001_00_00.bmp,1505.5\nA0001_01_03.bmp,1398.25\n")
    mos = read_pipal(tmp_path)
    assert mos.higher_better
    assert mos.items == [
        MosItem("Train_Ref/A0001.bmp", "Train_Dis/A0001_00_00.bmp", 1505.5),
        MosItem("Train_Ref/A0001.bmp", "Distortion_2/A0001_01_03.bmp", 1398.25),
    ]
    write_text(tmp_path / "Train_Label" / "A0001.txt", "A0001_00_00.bmp,1505.5\nA0001_00_00.bmp\n")
    with pytest.raises(DataError, match=r"A0001\.txt, line 2: expected 2 fields"):
        read_pipal(tmp_path)
    with pytest.raises(DataError, match="unknown PIPAL layout"):
        read_pipal(tmp_path / "Train_Dis")


def test_tid2013_case_insensitive_lookup(tmp_path):
    flat_png(tmp_path / "reference_images" / "I01.BMP")
    flat_png(tmp_path / "reference_images" / "i25.bmp")
    flat_png(tmp_path / "distorted_images" / "i01_01_1.bmp")
    flat_png(tmp_path / "distorted_images" / "I25_03_5.BMP")
    write_text(tmp_path / "mos_with_names.txt", "5.51429 i01_01_1.bmp\n\n3.0 i25_03_5.bmp\n")
    mos = read_tid2013(tmp_path)
    assert mos.items == [
        MosItem("reference_images/I01.BMP", "distorted_images/i01_01_1.bmp", 5.51429),
        MosItem("reference_images/i25.bmp", "distorted_images/I25_03_5.BMP", 3.0),
    ]
    write_text(tmp_path / "mos_with_names.txt", "5.51429 i01_01_1.bmp\n4.0 i01_02_1.bmp\n")
    with pytest.raises(DataError, match=r"mos_with_names\.txt, line 2: image 'i01_02_1\.bmp' not found"):
        read_tid2013(tmp_path)


def test_generic_mos_csv(tmp_path):
    flat_png(tmp_path / "r.png")
    flat_png(tmp_path / "d" / "x.png")
    path = write_text(tmp_path / "set.csv", "score,ref,dist,extra\n0.2,r.png,d/x.png,q\n")
    mos = read_mos_csv(path, higher_better=False)
    assert not mos.higher_better and mos.root == tmp_path.resolve()
    assert mos.items == [MosItem("r.png", "d/x.png", 0.2)]
    elsewhere = write_text(tmp_path / "labels" / "set.csv", "ref,dist,score\nr.png,d/x.png,3\n")
    assert read_mos_csv(elsewhere, root=tmp_path).items == [MosItem("r.png", "d/x.png", 3.0)]
    with pytest.raises(DataError, match=r"line 2: image 'r\.png' not found"):
        read_mos_csv(elsewhere)  # relative to the CSV's folder by default
    write_text(path, "ref,dist,score\nr.png,d/missing.png,1\n")
    with pytest.raises(DataError, match=r"set\.csv, line 2: image 'd/missing\.png' not found"):
        read_mos_csv(path)


def toy_mos(higher_better: bool) -> MosSet:
    items = [MosItem("r1", f"r1_{i}", s) for i, s in enumerate([1.0, 2.0, 2.0, 5.0])]
    items += [MosItem("r2", f"r2_{i}", s) for i, s in enumerate([3.0, 1.0, 4.0])]
    return MosSet(items, higher_better=higher_better, root=Path("/data"))


@pytest.mark.parametrize("higher_better", [True, False])
def test_mos_pairs_labels_follow_scores(higher_better):
    mos = toy_mos(higher_better)
    score = {str(mos.root / item.dist): item.score for item in mos.items}
    pairs = mos_pairs(mos, seed=3)
    assert len(pairs) == 6 + 3  # all pairs within each reference, none across
    for pair in pairs:
        assert Path(pair.a).name.split("_")[0] == Path(pair.ref).name == Path(pair.b).name.split("_")[0]
        gap = score[pair.a] - score[pair.b]
        expected = 0.5 if gap == 0 else float((gap > 0) == higher_better)
        assert pair.p_a == expected
    assert {pair.p_a for pair in pairs} == {0.0, 0.5, 1.0}  # random orientation gives both labels
    assert mos_pairs(mos, seed=3) == pairs


def test_mos_pairs_gap_and_cap():
    mos = toy_mos(True)
    assert all(p.p_a != 0.5 for p in mos_pairs(mos, min_gap=0.5))
    assert len(mos_pairs(mos, min_gap=2.5)) == 3 + 1  # r1: (1,5),(2,5),(2,5); r2: (1,4)
    capped = mos_pairs(mos, max_pairs_per_ref=2, seed=1)
    assert len(capped) == 4 and len({p.ref for p in capped}) == 2
