"""Internal file helpers of the readers (prfnet.data._files): line-numbered CSV rows, numbers and paths checked
with messages naming file and line, case-insensitive lookup."""

from __future__ import annotations

import pytest

from prfnet.data._files import CaseInsensitiveFolder, csv_rows, parse_float, read_lines, require_dir, require_file
from prfnet.errors import DataError
from tests.conftest import flat_png, write_text


def test_csv_rows_skip_blank_lines_and_keep_physical_line_numbers(tmp_path):
    path = write_text(tmp_path / "t.csv", '\ufeffa, b ,c\n\n   \n"x,y",2\nq;r\n')
    assert list(csv_rows(path)) == [(1, ["a", "b", "c"]), (4, ["x,y", "2"]), (5, ["q;r"])]  # BOM dropped
    assert list(csv_rows(path, delimiter=";"))[-1] == (5, ["q", "r"])
    assert read_lines(path)[0] == "a, b ,c"


def test_unreadable_text_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv: not a UTF-8 text file"):
        read_lines(path)


def test_parse_float_names_file_line_and_column(tmp_path):
    path = tmp_path / "s.csv"
    assert parse_float(" 2.5", path, 3, "score") == 2.5
    with pytest.raises(DataError, match=r"s\.csv, line 3: score must be a number, got 'high'"):
        parse_float("high", path, 3, "score")
    for text in ("nan", "inf", "-inf"):
        with pytest.raises(DataError, match=r"line 4: dmos must be finite"):
            parse_float(text, path, 4, "dmos")


def test_require_file_and_dir(tmp_path):
    path = write_text(tmp_path / "f.txt", "x")
    assert require_file(str(path)) == path and require_dir(str(tmp_path)) == tmp_path
    with pytest.raises(DataError, match=r"is a directory, not a CSV file"):
        require_file(tmp_path, "CSV file")
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        require_file(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"f\.txt: image folder not found \(or not a folder\)"):
        require_dir(path, "image folder")


def test_case_insensitive_folder(tmp_path):
    flat_png(tmp_path / "I01.BMP")
    (tmp_path / "sub").mkdir()
    folder = CaseInsensitiveFolder(tmp_path)
    assert folder.find("i01.bmp") == tmp_path / "I01.BMP" and folder.find("I01.bmp") == tmp_path / "I01.BMP"
    assert folder.find("sub") is None and folder.find("i02.bmp") is None  # files only
    assert CaseInsensitiveFolder(tmp_path / "missing").find("x") is None
