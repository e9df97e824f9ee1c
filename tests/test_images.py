"""load_image: formats, modes, EXIF orientation and unreadable files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import ImageReadError, load_image, save_image
from prfnet.images import image_size

RGB = (np.arange(24 * 40 * 3).reshape(24, 40, 3) % 251).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(RGB).save(path, **kwargs)
    x = load_image(path)
    assert x.shape == (1, 3, 24, 40) and x.dtype == torch.float32
    assert torch.allclose(x[0].permute(1, 2, 0), torch.from_numpy(RGB).float() / 255)


def test_jpeg_decodes_to_unit_range(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.jpg", quality=95)
    x = load_image(tmp_path / "x.jpg")
    assert x.shape == (1, 3, 24, 40) and x.min() >= 0 and x.max() <= 1


def test_modes_are_converted_to_rgb(tmp_path):
    gray = RGB[..., 0]
    Image.fromarray(gray).save(tmp_path / "l.png")
    x = load_image(tmp_path / "l.png")
    assert torch.equal(x[0, 0], x[0, 1]) and torch.allclose(x[0, 0], torch.from_numpy(gray).float() / 255)

    Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (1, 3, 24, 40)

    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")  # alpha dropped, colours used as stored
    assert torch.allclose(x[0].permute(1, 2, 0), torch.from_numpy(RGB).float() / 255)

    deep = (np.arange(24 * 40).reshape(24, 40) * 60).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d16.png")
    x = load_image(tmp_path / "d16.png")
    assert torch.allclose(x[0, 0], torch.from_numpy(deep.astype(np.float32)) / 65535, atol=1e-6)

    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.tiff")
    x = load_image(tmp_path / "c.tiff")
    assert x.shape == (1, 3, 24, 40) and x.max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(RGB)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "o.jpg", exif=exif, quality=95)
    assert load_image(tmp_path / "o.jpg").shape == (1, 3, 40, 24)


def test_unreadable_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError, match="text.png"):
        load_image(tmp_path / "text.png")
    Image.fromarray(RGB).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_save_image_round_trips_8bit(tmp_path):
    x = torch.from_numpy(RGB).permute(2, 0, 1).float()[None] / 255
    save_image(x, tmp_path / "s.png")
    assert torch.allclose(load_image(tmp_path / "s.png"), x)


def test_save_image_infers_the_format_from_the_suffix(tmp_path):
    x = torch.from_numpy(RGB).permute(2, 0, 1).float()[None] / 255
    save_image(x[0], tmp_path / "s.JPG")
    with Image.open(tmp_path / "s.JPG") as img:
        assert img.format == "JPEG" and img.size == (40, 24)
    with pytest.raises(ValueError, match="suffix"):
        save_image(x, tmp_path / "s.unknown")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.JPG"]


def test_save_image_is_atomic(tmp_path, monkeypatch):
    """A failure half-way through encoding leaves the previous file (or none) and no temporary."""
    x = torch.from_numpy(RGB).permute(2, 0, 1).float()[None] / 255
    save_image(torch.zeros_like(x), tmp_path / "old.png")
    old = (tmp_path / "old.png").read_bytes()
    real_save = Image.Image.save

    def crashing_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # the whole image is written into the file object ...
        raise OSError("disk full")  # ... and then the write fails

    monkeypatch.setattr(Image.Image, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(x, tmp_path / "old.png")
    with pytest.raises(OSError, match="disk full"):
        save_image(x, tmp_path / "new.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]
    assert (tmp_path / "old.png").read_bytes() == old


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp"])
def test_image_size_reads_the_header(tmp_path, suffix):
    Image.fromarray(RGB).save(tmp_path / f"x{suffix}")
    assert image_size(tmp_path / f"x{suffix}") == (40, 24)


def test_image_size_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        image_size(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError, match="text.png"):
        image_size(tmp_path / "text.png")
