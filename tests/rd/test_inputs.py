"""RD inputs: the CSV reader, the folder scan and the checks made before scoring (prfnet.rd.inputs, check_rd_items)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from prfnet.errors import ConfigError, DataError
from prfnet.rd import RDItem, check_rd_items, read_rd_csv, scan_rd_folders

HEADER = "codec,image,rate_point,decoded_path,original_path"


def png(path: Path, width: int = 100, height: int = 80, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (value, value // 2, 255 - value)).save(path)
    return path


def blob(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x01" * size)
    return path


def write_csv(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------- CSV


def test_csv_bpp_column_wins_and_bitstream_size_gives_bpp_relative_to_the_csv_folder(tmp_path, monkeypatch):
    root = tmp_path / "set"
    png(root / "orig" / "a.png")  # 100 x 80 = 8000 pixels
    png(root / "dec" / "a_q1.png")
    png(root / "dec" / "a_q2.png")
    blob(root / "bits" / "a_q1.bin", 500)
    blob(root / "bits" / "a_q2.bin", 1000)  # 8000 bits / 8000 pixels = 1.0 bpp
    csv = write_csv(
        root / "rd.csv",
        f"{HEADER},bpp,bitstream_path",
        "jpeg,a,q1,dec/a_q1.png,orig/a.png,0.25,bits/a_q1.bin",  # bpp given: wins over the 0.5 of the bitstream
        "jpeg,a,q2,dec/a_q2.png,orig/a.png,,bits/a_q2.bin",
    )
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the CSV's folder, not the working directory
    items = read_rd_csv(csv)
    assert items == [
        RDItem("jpeg", "a", "q1", root / "dec" / "a_q1.png", root / "orig" / "a.png", 0.25),
        RDItem("jpeg", "a", "q2", root / "dec" / "a_q2.png", root / "orig" / "a.png", 1.0),
    ]


def test_csv_with_only_a_bitstream_column_and_absolute_paths(tmp_path):
    original = png(tmp_path / "o" / "b.png", 50, 40)  # 2000 pixels
    bits = blob(tmp_path / "b.bits", 250)  # 2000 bits -> 1.0 bpp
    csv = write_csv(tmp_path / "x" / "rd.csv", f"bitstream_path,{HEADER}", f"{bits},webp,b,r1,{original},{original}")
    (item,) = read_rd_csv(csv)
    assert item.bpp == pytest.approx(1.0) and item.decoded == original and item.codec == "webp"


@pytest.mark.parametrize(
    "lines, line, pattern",
    [
        (["codec,image,rate_point,decoded_path,bpp"], 1, "missing original_path"),
        ([HEADER], 1, "missing bpp or bitstream_path"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,,0.5"], 2, "empty field original_path"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,0.5", "jpeg,b,q1,d.png,o.png,"], 3, "empty field bpp"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,abc"], 2, "bpp must be a positive number"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,0"], 2, "positive finite"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,-1"], 2, "positive finite"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,nan"], 2, "positive finite"),
        ([f"{HEADER},bpp", "jpeg,a,q1,d.png,o.png,inf"], 2, "positive finite"),
        ([f"{HEADER},bpp", "", "jpeg,a,q1,d.png,o.png,1", "jpeg,a,q1,e.png,o.png,2"], 4, "repeated.*first on line 3"),
        ([f"{HEADER},bitstream_path", "jpeg,a,q1,d.png,o.png,missing.bin"], 2, "bitstream file .*missing.bin"),
    ],
)
def test_csv_errors_name_the_file_and_line(tmp_path, lines, line, pattern):
    csv = write_csv(tmp_path / "rd.csv", *lines)
    with pytest.raises(DataError) as info:
        read_rd_csv(csv)
    message = str(info.value)
    assert message.startswith(f"{csv}, line {line}:"), message
    assert re.search(pattern, message), message


def test_csv_that_is_missing_or_has_no_rows(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_rd_csv(tmp_path / "none.csv")
    with pytest.raises(DataError, match="no rows"):
        read_rd_csv(write_csv(tmp_path / "rd.csv", f"{HEADER},bpp"))


# ------------------------------------------------------------------------------------------------------- folders


def test_folder_scan_with_bin_bitstreams_and_self_contained_jpegs(tmp_path):
    orig = tmp_path / "originals"
    png(orig / "img1.png")  # 8000 pixels
    png(orig / "img2.png")
    dec = tmp_path / "decoded"
    for q, size in (("q1", 400), ("q2", 800)):
        for name in ("img1", "img2"):
            png(dec / "hific" / q / f"{name}.png")
            blob(dec / "hific" / q / f"{name}.bin", size)
    jpg = dec / "jpeg" / "q50" / "img1.jpg"
    jpg.parent.mkdir(parents=True)
    Image.new("RGB", (100, 80), (10, 20, 30)).save(jpg, quality=50)
    Image.new("RGB", (100, 80), (10, 20, 30)).save(dec / "jpeg" / "q50" / "img2.jpg", quality=50)
    blob(dec / "jpeg" / "q50" / "img2.hevc", 1000)  # any non-image extension is a bitstream and wins over the jpg
    (dec / "jpeg" / ".cache").mkdir()  # hidden: skipped
    items = scan_rd_folders(dec, orig)
    got = {(it.codec, it.rate_point, it.image): it for it in items}
    assert list(got) == [
        ("hific", "q1", "img1"),
        ("hific", "q1", "img2"),
        ("hific", "q2", "img1"),
        ("hific", "q2", "img2"),
        ("jpeg", "q50", "img1"),
        ("jpeg", "q50", "img2"),
    ]
    assert got["hific", "q1", "img1"].bpp == pytest.approx(0.4)
    assert got["hific", "q2", "img2"].bpp == pytest.approx(0.8)
    assert got["hific", "q2", "img2"].original == orig / "img2.png"
    assert got["jpeg", "q50", "img1"].bpp == pytest.approx(8 * jpg.stat().st_size / 8000)
    assert got["jpeg", "q50", "img2"].bpp == pytest.approx(1.0)


def test_folder_scan_errors(tmp_path):
    orig, dec = tmp_path / "o", tmp_path / "d"
    png(orig / "img1.png")
    decoded = png(dec / "c" / "r1" / "img1.png")
    with pytest.raises(DataError, match=r"no bitstream for 'img1': put img1\.bin beside it or use a CSV with a bpp"):
        scan_rd_folders(dec, orig)
    blob(dec / "c" / "r1" / "img1.bin", 10)
    png(dec / "c" / "r1" / "img9.png")
    with pytest.raises(DataError, match="img9.png: no original img9"):
        scan_rd_folders(dec, orig)
    with pytest.raises(DataError) as info:
        scan_rd_folders(tmp_path / "nothing", orig)
    assert "nothing" in str(info.value)
    assert decoded.is_file()


# ------------------------------------------------------------------------------------------------ check_rd_items


def valid_set(root: Path, codecs=("jpeg", "webp"), rates=4, images=("a", "b")) -> list[RDItem]:
    items = []
    for name in images:
        png(root / "orig" / f"{name}.png", 16, 12)
    for c, codec in enumerate(codecs):
        for r in range(rates):
            for i, name in enumerate(images):
                decoded = png(root / codec / f"q{r}" / f"{name}.png", 16, 12, 10 * r)
                items.append(
                    RDItem(codec, name, f"q{r}", decoded, root / "orig" / f"{name}.png", 0.1 * (r + 1) + c + i)
                )
    return items


def test_a_valid_set_passes(tmp_path):
    items = valid_set(tmp_path)
    check_rd_items(items, anchor="jpeg")
    check_rd_items(items, anchor=None, min_rate_points=None)


def replace(items, codec, rate, image, **changes):
    return [
        RDItem(**{**it.__dict__, **changes}) if (it.codec, it.rate_point, it.image) == (codec, rate, image) else it
        for it in items
    ]


def problem(items, **kwargs) -> str:
    kwargs.setdefault("anchor", "jpeg")
    with pytest.raises(DataError) as info:
        check_rd_items(items, **kwargs)
    return str(info.value)


def test_missing_files_and_size_mismatch_name_codec_rate_point_and_file(tmp_path):
    items = valid_set(tmp_path)
    gone = tmp_path / "webp" / "q2" / "gone.png"
    message = problem(replace(items, "webp", "q2", "a", decoded=gone))
    assert "codec webp, rate point q2: decoded" in message and str(gone) in message and "not found" in message
    no_orig = tmp_path / "orig" / "none.png"
    message = problem(replace(items, "jpeg", "q1", "b", original=no_orig))
    assert "codec jpeg, rate point q1: original" in message and str(no_orig) in message
    small = png(tmp_path / "small.png", 8, 12)
    message = problem(replace(items, "jpeg", "q3", "a", decoded=small))
    assert f"codec jpeg, rate point q3: {small} is 8x12 but its original" in message and "16x12" in message


def test_coverage_problems(tmp_path):
    items = valid_set(tmp_path)
    hole = [it for it in items if (it.codec, it.rate_point, it.image) != ("webp", "q1", "b")]
    message = problem(hole)
    assert (
        "codec webp, rate point q1: no decoded image of 'b'" in message and str(tmp_path / "orig" / "b.png") in message
    )
    fewer = [it for it in items if not (it.codec == "webp" and it.image == "b")]
    message = problem(fewer)
    assert "codec webp" in message and "lacks 1 image(s) other codecs have: 'b'" in message
    assert "same images" in message and str(tmp_path / "orig" / "b.png") in message


def test_bpp_must_rise_with_the_rate_point_for_every_image(tmp_path):
    items = valid_set(tmp_path)
    # webp b: 2.1, 2.2, 2.3, 2.4 bpp at q0..q3; at q2 it drops below its q1 value while q2's mean stays above q1's
    bad = replace(replace(items, "webp", "q2", "b", bpp=2.15), "webp", "q2", "a", bpp=1.35)
    message = problem(bad)
    assert "codec webp, rate point q2" in message and str(tmp_path / "webp" / "q2" / "b.png") in message
    assert "not more than" in message and "rate point q1" in message
    equal = items
    for rate in ("q2", "q3"):
        equal = replace(replace(equal, "jpeg", rate, "a", bpp=0.25), "jpeg", rate, "b", bpp=1.25)
    message = problem(equal)
    assert "codec jpeg, rate points q2 and q3: the same mean bpp" in message


def test_too_few_rate_points_says_how_to_skip_bd_rate(tmp_path):
    items = valid_set(tmp_path, rates=3)
    message = problem(items)
    assert "codec jpeg, rate points q0, q1, q2: only 3" in message
    assert "BD-rate needs at least 4" in message and "--no-bd-rate" in message
    check_rd_items(items, anchor="jpeg", min_rate_points=None)


def test_anchor_must_be_a_codec_and_input_must_not_be_empty(tmp_path):
    message = problem(valid_set(tmp_path), anchor="avif")
    assert message == "anchor 'avif' is not one of the codecs: jpeg, webp"
    with pytest.raises(ConfigError):
        check_rd_items([], anchor=None)


def test_every_problem_is_listed_one_per_line(tmp_path):
    items = valid_set(tmp_path)
    items = replace(items, "webp", "q0", "a", decoded=tmp_path / "x.png")
    message = problem(items, anchor="avif")
    lines = message.splitlines()
    assert lines[0] == "2 problems in the RD inputs:" and len(lines) == 3
