"""Real codecs through Pillow and the bpp search (prfnet.synth.codecs)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from prfnet.errors import InputError
from prfnet.synth.codecs import (
    CODECS,
    CodecUnavailable,
    available_codecs,
    bits_per_pixel,
    codec_status,
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
    assert list(status) == list(CODECS) == ["jpeg420", "jpeg444", "webp", "jpeg2000", "avif"]
    assert all(reason is None or "Pillow" in reason for reason in status.values())
    assert available_codecs() == [name for name, reason in status.items() if reason is None]
    with pytest.raises(CodecUnavailable, match="unknown codec"):
        get_codec("jpegxl")


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
