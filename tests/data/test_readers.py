"""Readers of prfnet.data on files written by the tests: CLIC, BAPPS, PieAPP, KADID, PIPAL, TID2013, MOS CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.data import (
    LabeledTriplet,
    MosItem,
    MosSet,
    Triplet,
    mos_pairs,
    read_bapps,
    read_clic_oracle,
    read_clic_triplets,
    read_kadid,
    read_mos_csv,
    read_pieapp,
    read_pipal,
    read_tid2013,
    split_by_reference,
    write_clic_csv,
)
from prfnet.errors import DataError


def png(path: Path, value: int = 0, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)
    return path


def text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


# ---------------------------------------------------------------- CLIC


def test_clic_triplets_tolerate_blank_lines_and_whitespace(tmp_path):
    path = text(tmp_path / "validation.csv", "o1.png,a1.png,b1.png\n\n  o2.png , a2.png,b2.png  \n\n")
    assert read_clic_triplets(path) == [Triplet("o1.png", "a1.png", "b1.png"), Triplet("o2.png", "a2.png", "b2.png")]
    assert Triplet("o", "a", "b").key() == "o,a,b"


@pytest.mark.parametrize(
    ("reader", "name", "content", "line", "needle"),
    [
        (read_clic_triplets, "validation.csv", "o.png,a.png,b.png\no.png,a.png\n", 2, "expected 3 fields"),
        (read_clic_triplets, "validation.csv", "o.png,a.png,b.png\n\no.png,a.png,b.png,0\n", 3, "read_clic_oracle"),
        (read_clic_triplets, "validation.csv", "O,A,B\no.png,a.png,b.png\n", 1, "header"),
        (read_clic_triplets, "validation.csv", "\noriginal,distorted_1,distorted_2\no.png,a.png,b.png\n", 2, "header"),
        (read_clic_triplets, "validation.csv", "o.png,,b.png\n", 1, "empty image name"),
        (read_clic_oracle, "oracle.csv", "o,a,b,0\no,a,b,2\n", 2, "T must be 0"),
        (read_clic_oracle, "oracle.csv", "o,a,b,0\n\n\no,a,b\n", 4, "expected 4 fields"),
        (read_clic_oracle, "oracle.csv", "O,A,B,T\no,a,b,0\n", 1, "header"),
        (read_clic_oracle, "oracle.csv", "ref,a,b,label\n", 1, "header"),
    ],
)
def test_clic_reader_errors_name_file_and_line(tmp_path, reader, name, content, line, needle):
    path = text(tmp_path / name, content)
    with pytest.raises(DataError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message and f"line {line}" in message and needle in message


def test_clic_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_clic_triplets(tmp_path / "nope.csv")


def test_clic_oracle_aggregates_repeats_swaps_and_conflicts(tmp_path):
    rows = [
        "r1,x,y,0",  # x closer
        "r1,x,y,0",  # repeat
        "r1,y,x,1",  # swapped duplicate, label flipped: still x closer
        "r1,x,y,1",  # conflicting vote: y closer
        "r2,p,q,1",  # q closer
        "r2,q,p,0",  # swapped: q closer again
        "r3,u,v,0",
        "r3,v,u,0",  # conflict through a swap: tie
    ]
    path = text(tmp_path / "oracle.csv", "\n".join(rows) + "\n\n")
    oracle = read_clic_oracle(path)

    assert len(oracle.rows) == 8
    assert oracle.rows[2] == (Triplet("r1", "y", "x"), 1)
    # official scorer view: one key per ordered "O,A,B" (a tuple here), the last row wins
    keys = ("r1,x,y", "r1,y,x", "r2,p,q", "r2,q,p", "r3,u,v", "r3,v,u")
    assert oracle.official == {tuple(k.split(",")): t for k, t in zip(keys, (1, 1, 1, 0, 0, 0), strict=True)}
    by_key = {t.triplet().key(): t for t in oracle.triplets}
    assert list(by_key) == ["r1,x,y", "r2,p,q", "r3,u,v"]  # first-seen orientation, file order
    assert by_key["r1,x,y"].p_a == pytest.approx(0.75) and by_key["r1,x,y"].votes == 4
    assert by_key["r1,x,y"].label == 1.0
    assert by_key["r2,p,q"].p_a == 0.0 and by_key["r2,p,q"].votes == 2 and by_key["r2,p,q"].label == 0.0
    assert by_key["r3,u,v"].p_a == 0.5 and by_key["r3,u,v"].label == 0.5


def test_write_clic_csv_round_trips(tmp_path):
    rows = [(Triplet("o1.png", "a.png", "b.png"), 0), (Triplet("o2.png", "c.png", "d.png"), 1)]
    path = tmp_path / "out" / "submission.csv"
    write_clic_csv(path, rows)
    assert path.read_text() == "o1.png,a.png,b.png,0\no2.png,c.png,d.png,1\n"
    assert read_clic_oracle(path).rows == rows
    with pytest.raises(DataError, match="T must be 0 or 1"):
        write_clic_csv(tmp_path / "bad.csv", [(Triplet("o", "a", "b"), 3)])
    assert not (tmp_path / "bad.csv").exists()


# ---------------------------------------------------------------- BAPPS


def bapps_subset(folder: Path, judges: list[float]) -> Path:
    for i, judge in enumerate(judges):
        stem = f"{i:06d}"
        for j, name in enumerate(("ref", "p0", "p1")):
            png(folder / name / f"{stem}.png", value=10 * i + j)
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
        read_bapps(png(tmp_path / "x" / "img.png").parent)
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
    png(root / "reference_images" / "train" / "ref_0001.png")
    for name in ("distort_0001_a.png", "distort_0001_b.png", "distort_0001_c.png"):
        png(root / "distorted_images" / "train" / "ref_0001" / name)
    text(
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
    text(csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,0.25\n")
    assert [item.p_a for item in read_pieapp(csv)] == [0.25]
    text(csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,0.25\nref_0001.png,distort_0001_a.png,gone.png,0.5\n")
    with pytest.raises(DataError, match=r"ref_0001_pairwise_labels\.csv, line 2: image 'gone\.png' not found"):
        read_pieapp(csv)
    text(csv, "ref_0001.png,distort_0001_a.png,distort_0001_b.png,1.7\n")
    with pytest.raises(DataError, match="line 1: raw_prob must be a probability"):
        read_pieapp(csv)


# ---------------------------------------------------------------- MOS sets


def test_kadid(tmp_path):
    for name in ("I01.png", "I01_01_01.png", "I01_01_02.png"):
        png(tmp_path / "images" / name)
    text(
        tmp_path / "dmos.csv",
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.49\nI01_01_02.png,I01.png,2.1,1\n",
    )
    mos = read_kadid(tmp_path)
    assert mos.higher_better and mos.root == tmp_path.resolve()
    assert mos.items == [
        MosItem("images/I01.png", "images/I01_01_01.png", 4.57),
        MosItem("images/I01.png", "images/I01_01_02.png", 2.1),
    ]
    text(
        tmp_path / "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.49\nI01_01_09.png,I01.png,2,1\n"
    )
    with pytest.raises(DataError, match=r"dmos\.csv, line 3: image 'I01_01_09\.png' not found"):
        read_kadid(tmp_path)
    text(tmp_path / "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,high,0.49\n")
    with pytest.raises(DataError, match=r"dmos\.csv, line 2: dmos must be a number"):
        read_kadid(tmp_path)
    text(tmp_path / "dmos.csv", "I01_01_01.png,I01.png,4.57,0.49\n")
    with pytest.raises(DataError, match=r"line 1: header must name the columns"):
        read_kadid(tmp_path)


def test_pipal(tmp_path):
    png(tmp_path / "Train_Ref" / "A0001.bmp")
    png(tmp_path / "Train_Dis" / "A0001_00_00.bmp")
    png(tmp_path / "Distortion_2" / "A0001_01_03.bmp")
    text(tmp_path / "Train_Label" / "A0001.txt", "A0001_00_00.bmp,1505.5\nA0001_01_03.bmp,1398.25\n")
    mos = read_pipal(tmp_path)
    assert mos.higher_better
    assert mos.items == [
        MosItem("Train_Ref/A0001.bmp", "Train_Dis/A0001_00_00.bmp", 1505.5),
        MosItem("Train_Ref/A0001.bmp", "Distortion_2/A0001_01_03.bmp", 1398.25),
    ]
    text(tmp_path / "Train_Label" / "A0001.txt", "A0001_00_00.bmp,1505.5\nA0001_00_00.bmp\n")
    with pytest.raises(DataError, match=r"A0001\.txt, line 2: expected 2 fields"):
        read_pipal(tmp_path)
    with pytest.raises(DataError, match="unknown PIPAL layout"):
        read_pipal(tmp_path / "Train_Dis")


def test_tid2013_case_insensitive_lookup(tmp_path):
    png(tmp_path / "reference_images" / "I01.BMP")
    png(tmp_path / "reference_images" / "i25.bmp")
    png(tmp_path / "distorted_images" / "i01_01_1.bmp")
    png(tmp_path / "distorted_images" / "I25_03_5.BMP")
    text(tmp_path / "mos_with_names.txt", "5.51429 i01_01_1.bmp\n\n3.0 i25_03_5.bmp\n")
    mos = read_tid2013(tmp_path)
    assert mos.items == [
        MosItem("reference_images/I01.BMP", "distorted_images/i01_01_1.bmp", 5.51429),
        MosItem("reference_images/i25.bmp", "distorted_images/I25_03_5.BMP", 3.0),
    ]
    text(tmp_path / "mos_with_names.txt", "5.51429 i01_01_1.bmp\n4.0 i01_02_1.bmp\n")
    with pytest.raises(DataError, match=r"mos_with_names\.txt, line 2: image 'i01_02_1\.bmp' not found"):
        read_tid2013(tmp_path)


def test_generic_mos_csv(tmp_path):
    png(tmp_path / "r.png")
    png(tmp_path / "d" / "x.png")
    path = text(tmp_path / "set.csv", "score,ref,dist,extra\n0.2,r.png,d/x.png,q\n")
    mos = read_mos_csv(path, higher_better=False)
    assert not mos.higher_better and mos.root == tmp_path.resolve()
    assert mos.items == [MosItem("r.png", "d/x.png", 0.2)]
    elsewhere = text(tmp_path / "labels" / "set.csv", "ref,dist,score\nr.png,d/x.png,3\n")
    assert read_mos_csv(elsewhere, root=tmp_path).items == [MosItem("r.png", "d/x.png", 3.0)]
    with pytest.raises(DataError, match=r"line 2: image 'r\.png' not found"):
        read_mos_csv(elsewhere)  # relative to the CSV's folder by default
    text(path, "ref,dist,score\nr.png,d/missing.png,1\n")
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


def test_split_by_reference():
    items = [LabeledTriplet(f"r{i % 7}", f"a{i}", f"b{i}", 1.0) for i in range(40)]
    train, held = split_by_reference(items, 0.3, seed=5)
    assert len(train) + len(held) == len(items)
    assert not {t.ref for t in train} & {t.ref for t in held}
    assert len({t.ref for t in held}) == 2  # round(0.3 * 7)
    assert split_by_reference(items, 0.3, seed=5) == (train, held)
    assert train == [t for t in items if t in train]  # input order kept
    tiny_train, tiny_held = split_by_reference(items[:2], 0.01)
    assert len({t.ref for t in tiny_train}) == 1 and len({t.ref for t in tiny_held}) == 1
    assert split_by_reference(items, 0.0) == (items, [])


def test_labeled_triplet_validates_p_a():
    with pytest.raises(DataError, match="p_a"):
        LabeledTriplet("r", "a", "b", 1.5)
    swapped = LabeledTriplet("r", "a", "b", 0.25, votes=4).swapped()
    assert (swapped.a, swapped.b, swapped.p_a, swapped.label) == ("b", "a", 0.75, 1.0)
