"""The image operations of the synthetic sets (``prfnet.synth.distortions``): MSE and PSNR on known arrays, an MSE
matched from the requested side, and the photo crops used as references."""

from __future__ import annotations

import math

import numpy as np

from prfnet.synth import distortions as sd

SIZE = 64


def test_mse_and_psnr_on_known_arrays():
    ref = np.zeros((4, 4, 3), dtype=np.uint8)
    dist = ref.copy()
    dist[0, 0, 0] = 255  # one sample of 48 off by the full range
    assert sd.mse(ref, dist) == 1 / 48
    assert math.isclose(sd.psnr(ref, dist), 10 * math.log10(48))
    assert sd.mse(ref, ref) == 0 and sd.psnr(ref, ref) == float("inf")
    assert sd.psnr(ref, np.full_like(ref, 255)) == 0.0  # every sample off by the full range
    assert sd.quantise(np.array([-0.5, 0.5, 1.5])).tolist() == [0, 128, 255]  # clipped, rounded to nearest


def test_match_mse_brackets_the_target_from_the_requested_side():
    rng = np.random.default_rng(0)
    ref = sd.quantise(rng.random((48, 48, 3)))
    field = rng.standard_normal(ref.shape).astype(np.float32)
    target = 1e-3
    for prefer_above in (False, True):
        found = sd.match_mse(ref, lambda s: sd.gaussian_noise(ref, s, field), target, 0.0, 0.5, 0.005, prefer_above)
        assert found is not None
        assert found.mse == sd.mse(ref, found.image)
        assert abs(found.mse - target) <= 0.005 * target
        assert (found.mse >= target) if prefer_above else (found.mse <= target)
    assert sd.match_mse(ref, lambda s: sd.gaussian_noise(ref, s, field), 10.0, 0.0, 0.5) is None


def test_photo_crops_are_distinct_and_textured():
    crops = sd.photo_crops(SIZE, seed=0)
    assert len(crops) >= 12
    assert all(c.shape == (SIZE, SIZE, 3) and c.dtype == np.uint8 for _, c in crops)
    assert len({c.tobytes() for _, c in crops}) == len(crops)
    assert all(sd.luminance(c).std() >= sd.MIN_CROP_STD for _, c in crops)
