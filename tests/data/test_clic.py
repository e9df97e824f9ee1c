"""CLIC readers and writer (prfnet.data.clic): triplet and oracle CSVs, errors naming file and line, votes
aggregated over repeats, swaps and conflicts."""

from __future__ import annotations

import pytest

from prfnet.data import Triplet, read_clic_oracle, read_clic_triplets, write_clic_csv
from prfnet.errors import DataError
from tests.conftest import write_text


def test_clic_triplets_tolerate_blank_lines_and_whitespace(tmp_path):
    path = write_text(tmp_path / "validation.csv", "o1.png,a1.png,b1.png\n\n  o2.png , a2.png,b2.png  \n\n")
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
    path = write_text(tmp_path / name, content)
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
    path = write_text(tmp_path / "oracle.csv", "\n".join(rows) + "\n\n")
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
