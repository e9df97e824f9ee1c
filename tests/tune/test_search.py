"""The bisection of ``prfnet tune`` (prfnet.tune.search): a fake codec whose bytes and decoded image are set by the
quality gives full control of the curve; one real codec checks the bracket on real encodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfnet.errors import ConfigError
from prfnet.synth.codecs import CODECS, CodecUnavailable, encode
from prfnet.tune import search
from prfnet.tune.search import Encoding, ladder, parse_encoding, tune_image

IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)


@pytest.fixture
def fake_codec(monkeypatch):
    """jpeg420's ladder (1..95) with a fake encoder: ``size(q)`` bytes, a decoded image whose pixels hold q."""
    sizes = {"size": lambda q: 100 + 10 * q}
    calls = []

    def fake_encode(image, codec, quality):
        calls.append(quality)
        return bytes(int(sizes["size"](quality))), np.full(image.shape, quality, dtype=np.uint8)

    monkeypatch.setattr(search, "encode", fake_encode)
    return sizes, calls


def quality_of(decoded: np.ndarray) -> int:
    return int(decoded[0, 0, 0])


def test_ladder_runs_from_the_fewest_bits_to_the_most():
    assert ladder(CODECS["jpeg420"]) == list(range(1, 96))
    ratios = ladder(CODECS["jpeg2000"])  # a compression ratio: fewer bits when higher
    assert len(ratios) == search.RATIO_RUNGS and ratios[0] == 400 and ratios[-1] == 2
    assert all(a > b for a, b in zip(ratios, ratios[1:], strict=False))


@pytest.mark.parametrize(
    ("text", "codec", "setting"),
    [
        ("jpeg420:q85", "jpeg420", 85),
        ("JPEG420:85", "jpeg420", 85),
        ("jpeg2000:r20", "jpeg2000", 20.0),
        ("webp:q0", "webp", 0),
    ],  # fmt: skip
)
def test_parse_encoding(text, codec, setting):
    found = parse_encoding(text)
    assert found == Encoding(codec, setting)
    assert found.label.split(":")[0] == codec


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jpeg420", "CODEC:SETTING"),
        ("jpeg420:q85.5", "integer"),
        ("jpeg420:q96", "[1, 95]"),
        ("jpeg2000:q20", "jpeg2000:r20"),
        ("jpeg420:r20", "jpeg420:q20"),
        ("jpeg2000:r1", "[2, 400]"),
    ],  # fmt: skip
)
def test_parse_encoding_refuses_with_one_line(text, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        parse_encoding(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_parse_encoding_unknown_codec():
    with pytest.raises(CodecUnavailable, match="unknown codec 'heic'"):
        parse_encoding("heic:q50")


@pytest.mark.parametrize("higher_better", [False, True])
@pytest.mark.parametrize("target_q", [1, 2, 37, 60, 94, 95])
def test_monotone_curve_gives_the_lowest_setting_that_meets_the_target(fake_codec, higher_better, target_q):
    # a distance falling with q (or a similarity rising with it); the target is the value at target_q
    def distance(decoded):
        q = quality_of(decoded)
        return float(q) if higher_better else 100.0 - q

    target = float(target_q) if higher_better else 100.0 - target_q
    result = tune_image(IMAGE, "jpeg420", distance, target, higher_better)
    assert result.status == "met" and result.converged and result.violations == 0
    assert result.chosen.setting == target_q
    assert result.chosen.bytes == 100 + 10 * target_q and result.data == bytes(100 + 10 * target_q)
    assert result.encodes <= 2 + math.ceil(math.log2(95))  # both ends, then bisection
    assert result.decoded is not None and quality_of(result.decoded) == target_q


def test_unreachable_target_reports_the_closest_encode_after_one_encode(fake_codec):
    _, calls = fake_codec
    result = tune_image(IMAGE, "jpeg420", lambda d: 100.0 - quality_of(d), target=-1.0, higher_better=False)
    assert result.status == "unreachable" and calls == [95]
    assert result.chosen.setting == 95 and result.chosen.distance == 5.0


def test_encode_budget_keeps_a_setting_that_meets_the_target(fake_codec):
    result = tune_image(IMAGE, "jpeg420", lambda d: 100.0 - quality_of(d), 100.0 - 40, False, max_encodes=4)
    assert result.encodes == 4 and not result.converged
    assert result.status == "met" and result.chosen.distance <= 60.0  # meets it, maybe not the cheapest
    assert result.chosen.setting >= 40


def test_non_monotone_curve_still_meets_the_target_and_counts_the_violations(fake_codec):
    # falls with q except a bump: settings 40..47 are far from the reference
    def distance(decoded):
        q = quality_of(decoded)
        return 90.0 if 40 <= q <= 47 else 100.0 - q

    result = tune_image(IMAGE, "jpeg420", distance, target=60.0, higher_better=False)
    assert result.status == "met" and result.chosen.distance <= 60.0
    assert result.chosen.setting == 48  # the bump hides 40: bisection cannot see below its failing bracket end
    assert result.violations >= 1


def test_fewest_bytes_wins_among_the_settings_that_meet_the_target(fake_codec):
    sizes, _ = fake_codec
    sizes["size"] = lambda q: 5000 if q == 48 else 100 + 10 * q  # the bisection's first choice is large

    def distance(decoded):
        return 100.0 - quality_of(decoded)

    result = tune_image(IMAGE, "jpeg420", distance, target=100.0 - 48, higher_better=False)
    tried = {t.setting: t.bytes for t in result.trials if t.distance <= 52.0}
    assert result.chosen.bytes == min(tried.values()) and result.chosen.setting != 48
    assert result.violations >= 1  # a higher setting that was smaller


def test_bad_budget_and_target():
    with pytest.raises(ConfigError, match="max_encodes"):
        tune_image(IMAGE, "jpeg420", lambda d: 0.0, 1.0, False, max_encodes=1)
    with pytest.raises(ConfigError, match="finite"):
        tune_image(IMAGE, "jpeg420", lambda d: 0.0, float("nan"), False)


def test_real_codec_bracket_closes_on_a_failing_neighbour():
    rng = np.random.default_rng(0)
    image = (rng.random((48, 64, 3)) * 60 + np.linspace(0, 190, 64)[None, :, None]).astype(np.uint8)

    def mse(decoded):
        return float(np.mean((decoded.astype(np.float64) - image) ** 2))

    _, at_70 = encode(image, "jpeg420", 70)
    target = mse(at_70)
    result = tune_image(image, "jpeg420", mse, target, higher_better=False)
    assert result.status == "met" and result.converged and result.chosen.distance <= target
    below = result.chosen.setting - 1
    if below >= 1 and result.violations == 0:
        assert mse(encode(image, "jpeg420", below)[1]) > target  # the rung below fails
    data, decoded = encode(image, "jpeg420", result.chosen.setting)
    assert data == result.data and np.array_equal(decoded, result.decoded)  # the same bytes as a plain encode
