"""Real codecs through Pillow and imagecodecs (JPEG XL) and the bpp search (prfnet.synth.codecs)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from prfnet.errors import InputError
from prfnet.synth.codecs import (
    CODECS,
    DEFAULT_CODECS,
    CodecUnavailable,
    available_codecs,
    bits_per_pixel,
    codec_status,
    default_codecs,
    encode,
    encode_at_bpp,
    get_codec,
)

SWEEP_BPP = (0.75, 1.0, 1.5, 2.5)  # reachable by every codec on 128 x 128 photo crops


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [
        np.ascontiguousarray(skimage.data.astronaut()[100:228, 150:278]),
        np.ascontiguousarray(skimage.data.coffee()[50:178, 100:228]),
    ]


def _usable(name: str) -> None:
    reason = codec_status()[name]
    if reason is not None:
        pytest.skip(f"{name}: {reason}")


def test_status_names_every_codec_and_gives_reasons():
    status = codec_status()
    assert list(status) == list(CODECS) == ["jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "jpegxl", "mozjpeg"]
    assert all(reason is None or "Pillow" in reason or "imagecodecs" in reason for reason in status.values())
    assert available_codecs() == [name for name, reason in status.items() if reason is None]
    with pytest.raises(CodecUnavailable, match="unknown codec"):
        get_codec("jpegxs")


def test_a_codec_missing_from_pillow_is_reported_not_used(monkeypatch, photos):
    import prfnet.synth.codecs as codecs

    monkeypatch.setattr(codecs, "_supported", lambda feature: feature != "avif")
    assert "avif" not in available_codecs()
    assert "features.check('avif') is False" in codec_status()["avif"]
    with pytest.raises(CodecUnavailable, match="avif: Pillow"):
        encode(photos[0], "avif", 50)


@pytest.mark.parametrize("name", list(CODECS))
def test_encode_round_trip_is_deterministic(name, photos):
    _usable(name)
    codec = get_codec(name)
    img = photos[0]
    mid = 24.0 if codec.param == "ratio" else (codec.low + codec.high) / 2  # about 1 bpp for JPEG 2000
    data, decoded = encode(img, name, mid)
    assert decoded.dtype == np.uint8 and decoded.shape == img.shape
    assert encode(img, codec, mid)[0] == data  # same bytes every time
    if codec.library == "Pillow":
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == codec.format and im.size == (128, 128)
    assert bits_per_pixel(data, img.shape) == 8 * len(data) / (128 * 128)
    assert not np.array_equal(decoded, img)  # lossy
    low_rate, high_rate = (codec.low, codec.high) if codec.more_bits_when_higher else (codec.high, codec.low)
    assert len(encode(img, codec, low_rate)[0]) < len(data) < len(encode(img, codec, high_rate)[0])


def test_jpeg_chroma_subsampling_options(photos):
    _usable("jpeg420")
    bytes_420, _ = encode(photos[1], "jpeg420", 75)
    bytes_444, _ = encode(photos[1], "jpeg444", 75)
    assert len(bytes_444) > len(bytes_420)
    with Image.open(io.BytesIO(bytes_420)) as a, Image.open(io.BytesIO(bytes_444)) as b:
        assert a.layer[1][1:3] == (1, 1) and a.layer[0][1:3] == (2, 2)  # luma sampled 2x2, chroma 1x1
        assert b.layer[0][1:3] == (1, 1)


@pytest.mark.parametrize("name", list(CODECS))
def test_sweep_hits_each_target_within_tolerance_with_few_encodes(name, photos):
    _usable(name)
    encodes = []
    for img in photos:
        for target in SWEEP_BPP:
            match = encode_at_bpp(img, name, target, tol=0.10)
            assert match.reached, (name, target, match.bpp, match.reason)
            assert abs(match.bpp / target - 1) <= 0.10 and match.rel_error == match.bpp / target - 1
            assert match.bpp == bits_per_pixel(match.data, img.shape)
            assert match.image.dtype == np.uint8 and match.image.shape == img.shape
            data, decoded = encode(img, name, match.quality)  # the result is what the codec gives at that value
            assert data == match.data and np.array_equal(decoded, match.image)
            encodes.append(match.encodes)
    assert max(encodes) <= 8 and np.mean(encodes) <= 5, encodes
    if name == "jpeg2000":  # the ratio 24 / target is already close: one encode
        assert encodes == [1] * len(encodes)


def test_unreachable_targets_return_the_closest_with_a_flag(photos):
    _usable("jpeg420")
    low = encode_at_bpp(photos[0], "jpeg420", 0.05)
    assert not low.reached and low.quality == 1 and "below the lowest rate" in low.reason
    assert low.encodes <= 3 and low.bpp > 0.05
    high = encode_at_bpp(photos[0], "jpeg420", 40.0)
    assert not high.reached and high.quality == 95 and "above the highest rate" in high.reason
    assert high.encodes <= 3
    tight = encode_at_bpp(photos[0], "jpeg420", 1.0, tol=1e-6, max_encodes=4)  # budget spent, closest kept
    assert not tight.reached and tight.encodes == 4 and "after 4 encodes" in tight.reason
    assert abs(tight.bpp - 1.0) < 0.2


def test_bad_inputs(photos):
    with pytest.raises(InputError):
        encode(photos[0].astype(np.float32), "jpeg420", 50)
    with pytest.raises(InputError):
        encode(photos[0][..., 0], "jpeg420", 50)
    with pytest.raises(InputError):
        encode_at_bpp(photos[0], "jpeg420", 0.0)


# JPEG XL (libjxl through the optional imagecodecs)


def test_jpegxl_round_trip_bytes_and_rate(photos):
    _usable("jpegxl")
    img = photos[1]
    data, decoded = encode(img, "jpegxl", 75)
    assert data[:2] == b"\xff\x0a"  # a bare JPEG XL codestream (no ISO BMFF container)
    assert decoded.dtype == np.uint8 and decoded.shape == img.shape and not np.array_equal(decoded, img)
    assert encode(img, "jpegxl", 75)[0] == data  # deterministic: fixed effort, one thread
    assert bits_per_pixel(data, img.shape) == 8 * len(data) / (img.shape[0] * img.shape[1])
    psnr = 10 * np.log10(255**2 / np.mean((decoded.astype(float) - img) ** 2))
    assert psnr > 30  # quality 75 is visually close (distance ~2.2)
    sizes = [len(encode(img, "jpegxl", q)[0]) for q in (10, 50, 90)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3  # higher quality, more bits


def test_a_missing_imagecodecs_is_one_line_naming_the_extra(monkeypatch, photos):
    import sys

    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # `import imagecodecs` raises ImportError
    reason = codec_status()["jpegxl"]
    assert reason == "jpegxl needs imagecodecs, which is not installed: pip install 'prfnet[jxl]'"
    assert "jpegxl" not in available_codecs() and "jpeg420" in available_codecs()
    with pytest.raises(CodecUnavailable) as raised:
        encode(photos[0], "jpegxl", 50)
    assert str(raised.value) == reason and "\n" not in str(raised.value)
    with pytest.raises(CodecUnavailable, match=r"prfnet\[jxl\]"):
        encode_at_bpp(photos[0], "jpegxl", 1.0)


def test_mozjpeg_says_why_when_the_build_lacks_it(monkeypatch, photos):
    import imagecodecs

    monkeypatch.setattr(imagecodecs.MOZJPEG, "available", False, raising=False)
    assert codec_status()["mozjpeg"] == "not available: this imagecodecs build has no mozjpeg"
    with pytest.raises(CodecUnavailable, match="mozjpeg: not available"):
        encode(photos[0], "mozjpeg", 75)


def test_default_codecs_leave_jpegxl_out():
    assert DEFAULT_CODECS == ("jpeg420", "jpeg444", "webp", "jpeg2000", "avif")
    assert "jpegxl" not in default_codecs() and set(default_codecs()) <= set(available_codecs())
