"""The hidden judge and simulated votes (prfnet.synth.judge)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prfnet.errors import InputError
from prfnet.synth import distortions as sd
from prfnet.synth.judge import (
    DEFAULT_LAPSE,
    DEFAULT_SLOPE,
    WEIGHTS,
    judge_quality,
    judge_terms,
    psychometric,
    simulate_votes,
)

SIZE = 96


@pytest.fixture(scope="module")
def refs() -> list[np.ndarray]:
    return [crop for _, crop in sd.photo_crops(SIZE, seed=0)[:4]]


def _variants(ref: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    field = np.random.default_rng(seed).standard_normal(ref.shape).astype(np.float32)
    means = sd.block_means(ref)
    return {
        "jpeg_q15": sd.jpeg(ref, 15),
        "jpeg_q40": sd.jpeg(ref, 40),
        "webp_q20": sd.webp(ref, 20),
        "webp_q50": sd.webp(ref, 50),
        "blur_1.0": sd.gaussian_blur(ref, 1.0),
        "blur_1.6": sd.gaussian_blur(ref, 1.6),
        "noise_0.02": sd.gaussian_noise(ref, 0.02, field),
        "noise_0.04": sd.gaussian_noise(ref, 0.04, field),
        "blocking_0.3": sd.blocking(ref, 0.3, means),
        "contrast_0.1": sd.contrast_change(ref, 0.1),
        "offset_4": sd.luminance_offset(ref, 4),
        "shift_0.4": sd.subpixel_shift(ref, 0.4),
        "resample_2": sd.resample(ref, 2),
    }


@pytest.fixture(scope="module")
def scored(refs) -> list[list[tuple[str, float, float]]]:
    """Per reference: (variant, PSNR, judge distance) for every variant."""
    out = []
    for i, ref in enumerate(refs):
        out.append([(name, sd.psnr(ref, img), judge_quality(ref, img)) for name, img in _variants(ref, i).items()])
    return out


def test_identical_images_give_zero(refs):
    for ref in refs:
        assert judge_quality(ref, ref.copy()) == 0.0
        assert judge_terms(ref, ref.copy()) == dict.fromkeys(WEIGHTS, 0.0)


def test_distances_are_positive_and_deterministic(refs, scored):
    assert all(d > 0 for rows in scored for _, _, d in rows)
    ref = refs[0]
    img = sd.jpeg(ref, 20)
    assert judge_quality(ref, img) == judge_quality(ref.copy(), img.copy())
    terms = judge_terms(ref, img)
    assert set(terms) == set(WEIGHTS) and all(v >= 0 for v in terms.values())
    assert judge_quality(ref, img) == pytest.approx(sum(WEIGHTS[k] * v for k, v in terms.items()))


def test_stronger_levels_of_one_distortion_are_farther(refs):
    field = np.random.default_rng(0).standard_normal(refs[0].shape).astype(np.float32)
    for ref in refs:
        ladders = [
            [sd.jpeg(ref, q) for q in (80, 30, 8)],
            [sd.gaussian_blur(ref, s) for s in (0.6, 1.5, 3.0)],
            [sd.gaussian_noise(ref, s, field) for s in (0.01, 0.03, 0.08)],
        ]
        for ladder in ladders:
            d = [judge_quality(ref, img) for img in ladder]
            assert d[0] < d[1] < d[2], d


def test_contrast_masking_at_equal_mse():
    """The same error pattern costs more on a flat area than hidden in texture: not a function of MSE."""
    rng = np.random.default_rng(5)
    ref = np.full((64, 64, 3), 128, dtype=np.int16)
    ref[:, 32:] += rng.integers(-50, 51, size=(64, 32, 1)).astype(np.int16)  # textured right half, grey left
    noise = rng.integers(-6, 7, size=(64, 32, 1)).astype(np.int16)
    on_flat, on_texture = ref.copy(), ref.copy()
    on_flat[:, :32] += noise
    on_texture[:, 32:] += noise
    ref, on_flat, on_texture = (x.astype(np.uint8) for x in (ref, on_flat, on_texture))
    assert sd.mse(ref, on_flat) == sd.mse(ref, on_texture)
    assert judge_quality(ref, on_flat) > 2 * judge_quality(ref, on_texture)


def test_artifact_terms_respond_to_their_artifact(refs):
    ref = refs[0]
    field = np.random.default_rng(1).standard_normal(ref.shape).astype(np.float32)
    blocky = judge_terms(ref, sd.blocking(ref, 0.5, sd.block_means(ref)))
    noisy = judge_terms(ref, sd.gaussian_noise(ref, 0.03, field))
    blurred = judge_terms(ref, sd.gaussian_blur(ref, 1.5))
    assert blocky["blocking"] > 5 * max(noisy["blocking"], blurred["blocking"])
    assert blurred["blur"] > 5 * noisy["blur"]
    grey_shift = judge_terms(ref, sd.luminance_offset(ref, 4))
    assert grey_shift["lowfreq"] > 0 and grey_shift["masked"] < 0.05 * noisy["masked"]
    tinted = ref.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 6, 0, 255)
    assert judge_terms(ref, tinted)["colour"] > 5 * grey_shift["colour"]


def test_judge_disagrees_with_psnr_on_a_fair_share_of_pairs(scored):
    """Pairs of one reference within 3 dB PSNR of each other: the judge orders a fair share differently."""
    agree = disagree = near = 0
    for rows in scored:
        for (_, p1, d1), (_, p2, d2) in itertools.combinations(rows, 2):
            same_order = (p1 > p2) == (d1 < d2)
            if abs(p1 - p2) < 3:
                near += 1
                disagree += not same_order
            agree += same_order
    total = len(scored) * len(scored[0]) * (len(scored[0]) - 1) // 2
    assert near >= 40
    assert 0.15 <= disagree / near <= 0.65, (disagree, near)  # 0.27 here
    assert agree / total > 0.55  # but overall the two are positively related


def test_offset_is_cheaper_than_noise_at_the_same_psnr(refs):
    field = np.random.default_rng(2).standard_normal(refs[0].shape).astype(np.float32)
    for ref in refs:
        offset = sd.luminance_offset(ref, 5)
        noisy = sd.match_mse(ref, lambda s, r=ref: sd.gaussian_noise(r, s, field), sd.mse(ref, offset), 0.0, 0.2)
        assert noisy is not None
        assert judge_quality(ref, offset) < 0.5 * judge_quality(ref, noisy.image)


def test_bad_inputs(refs):
    with pytest.raises(InputError):
        judge_quality(refs[0], refs[0][:64])
    with pytest.raises(InputError):
        judge_quality(refs[0].astype(np.float32), refs[0])


# ------------------------------------------------------------------------------------------------ votes


def test_psychometric_function():
    assert psychometric(1.0, 1.0) == 0.5
    lapse = 0.1
    assert psychometric(0.0, 100.0, 4.0, lapse) == pytest.approx(1 - lapse / 2)
    assert psychometric(100.0, 0.0, 4.0, lapse) == pytest.approx(lapse / 2)
    for d_a, d_b in [(0.2, 0.5), (1.3, 0.4), (2.0, 2.1)]:
        assert psychometric(d_a, d_b) + psychometric(d_b, d_a) == pytest.approx(1.0)
    assert psychometric(0.1, 0.35, 4.0, 0.0) == pytest.approx(1 / (1 + np.exp(-1.0)))
    with pytest.raises(InputError):
        psychometric(0.0, 1.0, slope=0.0)


def test_vote_counts_are_uniform_and_deterministic():
    rng = np.random.default_rng(0)
    counts = [len(simulate_votes(0.3, 0.5, rng, n_min=3, n_max=15)) for _ in range(2600)]
    assert min(counts) == 3 and max(counts) == 15
    hist = np.bincount(counts, minlength=16)[3:]
    assert hist.min() > 0.6 * 200 and hist.max() < 1.4 * 200  # 2600 / 13 = 200 per value
    first = [simulate_votes(0.3, 0.5, np.random.default_rng(7)) for _ in range(3)]
    assert first == [simulate_votes(0.3, 0.5, np.random.default_rng(7)) for _ in range(3)]
    assert all(set(v) <= {0, 1} for v in first)


@pytest.mark.parametrize("diff", [0.0, 0.1, 0.3, -0.6, 1.5])
def test_vote_fractions_follow_the_psychometric_function(diff):
    """Pooled over 3000 triplets (~27000 votes) the share of "A closer" votes is within 4 standard errors."""
    rng = np.random.default_rng(11)
    votes = [v for _ in range(3000) for v in simulate_votes(1.0, 1.0 + diff, rng)]
    p = psychometric(1.0, 1.0 + diff, DEFAULT_SLOPE, DEFAULT_LAPSE)
    share_a = votes.count(0) / len(votes)
    assert abs(share_a - p) <= 4 * np.sqrt(p * (1 - p) / len(votes)), (share_a, p)


def test_near_ties_and_clear_cases_both_occur(scored):
    """Under the default psychometric function, pairs of one reference span near-ties and clear cases."""
    probs = np.array(
        [psychometric(d1, d2) for rows in scored for (_, _, d1), (_, _, d2) in itertools.combinations(rows, 2)]
    )
    strength = np.abs(probs - 0.5)
    assert np.mean(strength < 0.15) >= 0.05  # near-ties: P(A closer) in (0.35, 0.65)
    assert np.mean(strength > 0.35) >= 0.2  # clear: beyond 0.85 / 0.15
    rng = np.random.default_rng(3)
    split = [simulate_votes(0.8, 0.8, rng, n_min=4, n_max=4) for _ in range(200)]
    assert sum(v.count(0) == 2 for v in split) > 40  # exact 2-2 splits at a true tie (expected 75)
