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


def blocks(height: int = 24, width: int = 40) -> np.ndarray:
    """(H, W, 3) uint8 of flat 8 x 8 blocks, each a different colour: JPEG keeps such an image nearly intact."""
    rows, cols = np.mgrid[0:height, 0:width] // 8
    k = rows * (width // 8) + cols
    return np.stack([(37 * k) % 200 + 30, (91 * k) % 200 + 30, (53 * k) % 200 + 30], axis=-1).astype(np.uint8)


def test_jpeg_decodes_to_the_stored_picture(tmp_path):
    pattern = blocks()
    Image.fromarray(pattern).save(tmp_path / "x.jpg", quality=95, subsampling=0)  # 4:4:4, no chroma blur
    x = load_image(tmp_path / "x.jpg")
    assert x.shape == (1, 3, 24, 40) and x.dtype == torch.float32
    decoded = x[0].permute(1, 2, 0).numpy()
    # close to the original colours (JPEG at quality 95 on flat 8 x 8 blocks), so neither blank nor shifted
    error = np.abs(decoded - pattern / 255)
    assert error.mean() < 1 / 255 and error.max() < 3 / 255  # measured: 0.24 / 255 and 1 / 255
    assert np.std(decoded) > 0.2  # the blocks span 30 .. 229 (standard deviation 0.23)
    # and exactly what Pillow's JPEG decoder gives, divided by 255
    with Image.open(tmp_path / "x.jpg") as img:
        np.testing.assert_array_equal(decoded, np.asarray(img.convert("RGB"), dtype=np.float32) / 255)


def test_modes_are_converted_to_rgb(tmp_path):
    gray = RGB[..., 0]
    Image.fromarray(gray).save(tmp_path / "l.png")
    x = load_image(tmp_path / "l.png")
    assert torch.equal(x[0, 0], x[0, 1]) and torch.allclose(x[0, 0], torch.from_numpy(gray).float() / 255)

    # palette: every pixel gets its entry's colour (a palette written by hand, indices in a known pattern)
    colours = np.array([[255, 0, 0], [0, 128, 255], [10, 200, 30], [250, 250, 5]], np.uint8)
    index = (np.arange(24 * 40).reshape(24, 40) % 4).astype(np.uint8)
    pal = Image.fromarray(index, mode="P")
    pal.putpalette(colours.flatten().tolist())
    pal.save(tmp_path / "p.png")
    x = load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), colours[index] / np.float32(255))
    pal.save(tmp_path / "pt.png", transparency=1)  # a transparent entry: its colour is used as stored
    x = load_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), colours[index] / np.float32(255))

    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")  # alpha dropped, colours used as stored
    assert torch.allclose(x[0].permute(1, 2, 0), torch.from_numpy(RGB).float() / 255)

    deep = (np.arange(24 * 40).reshape(24, 40) * 60).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d16.png")
    x = load_image(tmp_path / "d16.png")
    assert torch.allclose(x[0, 0], torch.from_numpy(deep.astype(np.float32)) / 65535, atol=1e-6)

    # CMYK: patches of pure ink, whose RGB colour is the same under every usual conversion formula
    # (R = 255 - C - K clipped, or (255 - C)(255 - K) / 255, and likewise for G with M and B with Y)
    inks = {  # C, M, Y, K -> R, G, B
        (255, 0, 0, 0): (0, 255, 255),  # cyan
        (0, 255, 0, 0): (255, 0, 255),  # magenta
        (0, 0, 255, 0): (255, 255, 0),  # yellow
        (0, 255, 255, 0): (255, 0, 0),  # red = magenta + yellow
        (0, 0, 0, 0): (255, 255, 255),  # paper
        (0, 0, 0, 128): (127, 127, 127),  # half black
        (0, 0, 0, 255): (0, 0, 0),  # black
        (255, 255, 0, 0): (0, 0, 255),  # blue = cyan + magenta
    }
    cmyk = np.array(list(inks), np.uint8).reshape(2, 4, 4).repeat(12, axis=0).repeat(10, axis=1)
    rgb = np.array(list(inks.values()), np.float32).reshape(2, 4, 3).repeat(12, axis=0).repeat(10, axis=1)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tiff")
    x = load_image(tmp_path / "c.tiff")
    assert x.shape == (1, 3, 24, 40)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), rgb / 255, atol=1.01 / 255)


# EXIF orientation -> what a viewer shows of the stored (H, W) array, from the EXIF 2.3 tag 0x0112 definition
# (value: where the stored 0th row and 0th column are on screen)
DISPLAYED = {
    1: lambda a: a,  # top, left: as stored
    2: lambda a: a[:, ::-1],  # top, right: mirrored left-right
    3: lambda a: a[::-1, ::-1],  # bottom, right: turned 180 degrees
    4: lambda a: a[::-1, :],  # bottom, left: mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # left, top: stored rows are screen columns
    6: lambda a: a[::-1].transpose(1, 0, 2),  # right, top: turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # right, bottom
    8: lambda a: a[:, ::-1].transpose(1, 0, 2),  # left, bottom: turned 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(DISPLAYED))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[1, 3] = (255, 0, 0)  # a red marker near the stored top-left corner
    stored[20, 35] = (0, 0, 255)  # a blue one near the stored bottom-right corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.png", exif=exif)
    x = load_image(tmp_path / "o.png")
    shown = DISPLAYED[orientation](stored)
    assert x.shape == (1, 3, *shown.shape[:2])
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), shown / np.float32(255))
    red = tuple(int(i) for i in np.argwhere(x[0, 0].numpy() == 1)[0])
    # where the red marker ends up, worked out by hand for each orientation (stored (1, 3) in 24 x 40)
    assert (
        red
        == {1: (1, 3), 2: (1, 36), 3: (22, 36), 4: (22, 3), 5: (3, 1), 6: (3, 22), 7: (36, 22), 8: (36, 1)}[orientation]
    )


def test_exif_orientation_of_a_camera_jpeg(tmp_path):
    """The usual camera case, a JPEG turned 90 degrees clockwise (6): a bright 8 x 8 block stored at the top left
    is shown at the top right."""
    stored = np.full((24, 40, 3), 20, np.uint8)
    stored[:8, :8] = 235
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif, quality=95)
    x = load_image(tmp_path / "o.jpg")[0, 0]
    assert x.shape == (40, 24)
    assert x[:8, -8:].mean() > 0.85 and x[:8, :8].mean() < 0.15 and x[-8:, -8:].mean() < 0.15


@pytest.mark.parametrize("read", [load_image, image_size])
def test_missing_and_unreadable_files_raise_errors_naming_the_file(tmp_path, read):
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        read(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageReadError, match="text.png"):
        read(tmp_path / "text.png")


def test_truncated_file_raises_an_error_naming_the_file(tmp_path):
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
