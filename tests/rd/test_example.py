"""prfnet.rd.example: the scikit-image photos coded with JPEG, WebP, JPEG 2000, AVIF and JPEG XL, in the rd.csv
layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.errors import ConfigError
from prfnet.rd import check_rd_items, read_rd_csv
from prfnet.rd import example as rd_example
from prfnet.rd.example import CSV_HEADER, EXAMPLE_CODECS, EXAMPLE_IMAGES, EXAMPLE_MAX_SIDE, make_example, rate_label


@pytest.fixture(scope="module")
def full_example(tmp_path_factory) -> Path:
    return make_example(tmp_path_factory.mktemp("rd_example") / "example")


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_HEADER
        return list(reader)


def _pixels(path: Path) -> np.ndarray:
    if path.suffix == ".jxl":  # Pillow reads no JPEG XL: libjxl's own decoder
        import imagecodecs

        return np.asarray(imagecodecs.jpegxl_decode(path.read_bytes()))[..., :3]
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _bpp(folder: Path, row: dict[str, str]) -> float:
    height, width = _pixels(folder / row["original_path"]).shape[:2]
    return 8 * (folder / row["bitstream_path"]).stat().st_size / (width * height)


def _psnr(folder: Path, row: dict[str, str]) -> float:
    ref, dec = (_pixels(folder / row[key]).astype(np.float64) for key in ("original_path", "decoded_path"))
    return float(10 * np.log10(255.0**2 / np.mean((ref - dec) ** 2)))


def test_csv_lists_every_codec_rate_and_image_with_existing_files(full_example):
    folder = full_example.parent
    assert full_example.name == "rd.csv"
    rows = _rows(full_example)
    expected = [
        (codec, image, rate_label(codec, s))
        for codec, settings in EXAMPLE_CODECS.items()
        for s in settings
        for image in EXAMPLE_IMAGES
    ]
    assert [(r["codec"], r["image"], r["rate_point"]) for r in rows] == expected
    assert len(rows) == 5 * 5 * len(EXAMPLE_IMAGES) and 3 <= len(EXAMPLE_IMAGES) <= 4
    assert {r["rate_point"] for r in rows if r["codec"] == "jpeg2000"} == {f"r{s}" for s in EXAMPLE_CODECS["jpeg2000"]}
    for r in rows:
        for key in ("decoded_path", "original_path", "bitstream_path"):
            assert not Path(r[key]).is_absolute() and (folder / r[key]).is_file(), r[key]
        assert r["decoded_path"] == f"decoded/{r['codec']}/{r['rate_point']}/{r['image']}.png"
        assert r["bitstream_path"].startswith(f"bitstreams/{r['codec']}/{r['rate_point']}/{r['image']}.")
        assert r["original_path"] == f"originals/{r['image']}.png"
    for image in EXAMPLE_IMAGES:
        assert max(_pixels(folder / "originals" / f"{image}.png").shape[:2]) <= EXAMPLE_MAX_SIDE
    assert not list(folder.rglob(".*.tmp"))  # atomic writes leave no temporary files


def test_decoded_pngs_match_originals_and_the_bitstreams(full_example):
    folder = full_example.parent
    for r in _rows(full_example):
        decoded = _pixels(folder / r["decoded_path"])
        assert decoded.shape == _pixels(folder / r["original_path"]).shape
        # decoding the written bitstream gives exactly the stored decoded pixels
        assert np.array_equal(_pixels(folder / r["bitstream_path"]), decoded), r["bitstream_path"]
        assert 15.0 < _psnr(folder, r) < 60.0  # lossy, not broken


def test_bpp_rises_with_the_setting_and_the_codecs_overlap(full_example):
    folder = full_example.parent
    rows = _rows(full_example)
    mean_bpp, mean_psnr = {}, {}
    for codec, settings in EXAMPLE_CODECS.items():
        labels = [rate_label(codec, s) for s in settings]
        bpp = np.array(
            [[_bpp(folder, r) for r in rows if r["codec"] == codec and r["rate_point"] == lb] for lb in labels]
        )
        psnr = np.array(
            [[_psnr(folder, r) for r in rows if r["codec"] == codec and r["rate_point"] == lb] for lb in labels]
        )
        assert bpp.shape == (5, len(EXAMPLE_IMAGES))
        assert (np.diff(bpp, axis=0) > 0).all(), f"{codec}: every image's bpp must rise along {labels}"
        assert (np.diff(psnr.mean(axis=1)) > 0).all(), f"{codec}: mean PSNR must rise along {labels}"
        mean_bpp[codec], mean_psnr[codec] = bpp.mean(axis=1), psnr.mean(axis=1)
    for codec in EXAMPLE_CODECS:  # about 0.15-1.6 bpp each, so that the curves overlap widely
        assert 0.1 < mean_bpp[codec][0] < 0.3 and 1.3 < mean_bpp[codec][-1] < 1.8, (codec, mean_bpp[codec])
        # BD-rate on PSNR against the JPEG anchor needs overlapping quality ranges (here several dB)
        low = max(mean_psnr[codec][0], mean_psnr["jpeg"][0])
        high = min(mean_psnr[codec][-1], mean_psnr["jpeg"][-1])
        assert high - low > 3.0, (codec, mean_psnr[codec], mean_psnr["jpeg"])


def test_prfnet_rd_reads_the_csv(full_example):
    items = read_rd_csv(full_example)
    check_rd_items(items, anchor="jpeg")
    assert len(items) == len(EXAMPLE_CODECS) * 5 * len(EXAMPLE_IMAGES)
    rows = _rows(full_example)
    for item, row in zip(items, rows, strict=True):
        assert item.bpp == pytest.approx(_bpp(full_example.parent, row), rel=1e-12)


def test_small_run_is_deterministic(tmp_path):
    codecs = {"webp": [10, 60], "avif": [20, 50]}
    first = make_example(tmp_path / "a", images=("chelsea",), codecs=codecs)
    second = make_example(tmp_path / "b", images=("chelsea",), codecs=codecs)
    rows = _rows(first)
    assert [(r["codec"], r["rate_point"]) for r in rows] == [
        ("webp", "q10"),
        ("webp", "q60"),
        ("avif", "q20"),
        ("avif", "q50"),
    ]
    files = sorted(p.relative_to(first.parent) for p in first.parent.rglob("*") if p.is_file())
    assert len(files) == 1 + 1 + 2 * 4  # rd.csv, the original, a decoded PNG and a bitstream per row
    assert files == sorted(p.relative_to(second.parent) for p in second.parent.rglob("*") if p.is_file())
    for rel in files:
        assert (first.parent / rel).read_bytes() == (second.parent / rel).read_bytes(), rel
    for r in rows:
        assert np.array_equal(_pixels(first.parent / r["bitstream_path"]), _pixels(first.parent / r["decoded_path"]))


def test_missing_codec_is_a_config_error_before_anything_is_written(tmp_path, monkeypatch):
    real_check = rd_example.features.check
    monkeypatch.setattr(rd_example.features, "check", lambda name: name != "avif" and real_check(name))
    with pytest.raises(ConfigError, match="cannot encode avif"):
        make_example(tmp_path / "x", images=("chelsea",))
    assert not (tmp_path / "x").exists()


def test_without_imagecodecs_the_default_leaves_jpegxl_out_and_asking_for_it_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(rd_example, "unavailable_reason", lambda codec: "not installed: pip install 'prfnet[jxl]'")
    assert set(rd_example.default_example_codecs()) == set(EXAMPLE_CODECS) - {"jpegxl"}
    with pytest.raises(ConfigError, match=r"jpegxl: .*prfnet\[jxl\]"):
        make_example(tmp_path / "x", images=("chelsea",), codecs={"jpeg": [10], "jpegxl": [10]})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codecs": {"jpeg2001": [10]}}, "unknown codec 'jpeg2001'"),
        ({"codecs": {"jpeg": []}}, "codec jpeg: settings must be non-empty"),
        ({"images": ("no_such_photo",)}, "unknown scikit-image photo 'no_such_photo'"),
        ({"images": ("chelsea", "chelsea")}, "images must be non-empty and distinct"),
    ],
)
def test_bad_arguments_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_example(tmp_path / "x", **({"images": ("chelsea",)} | kwargs))
    assert not (tmp_path / "x" / "rd.csv").exists()
