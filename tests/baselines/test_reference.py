"""Baseline conventions: ssim_gray / ssim_nods / ms_ssim_gray (MATLAB rgb2gray luma rounded to 8 bits) against
independent computations (a numpy rgb2gray, scikit-image's SSIM), down-sampling on and off, identity and
direction, and the registry's references and ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import structural_similarity

from prfnet.baselines import BASELINE_NAMES, get_metric, rgb_to_luma, ssim_matlab
from prfnet.baselines.registry import RANGES, REFERENCES, metric_info

MATLAB_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def numpy_rgb2gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray of a uint8 (H, W, 3) image: the weighted sum rounded half up, as uint8 arithmetic does."""
    weighted = rgb.astype(np.float64) @ np.array(MATLAB_RGB2GRAY)
    return np.floor(weighted + 0.5).clip(0, 255)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255.0


def noisy(rgb: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(rgb + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def skimage_ssim(gray_a: np.ndarray, gray_b: np.ndarray) -> float:
    """Wang et al.'s SSIM: 11x11 Gaussian (sigma 1.5), population covariances, L = 255, mean over valid windows."""
    return structural_similarity(
        gray_a, gray_b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255.0
    )


@pytest.fixture(scope="module")
def astronaut():
    """skimage's astronaut (512 x 512 RGB uint8) and a noisy copy."""
    ref = data.astronaut()
    return ref, noisy(ref, 12.0, seed=0)


def test_gray8_luma_is_matlab_rgb2gray_rounded(astronaut):
    ref, _ = astronaut
    luma = rgb_to_luma(to_tensor(ref).float(), "gray8")[0, 0].numpy()
    np.testing.assert_array_equal(luma, numpy_rgb2gray_uint8(ref))
    assert luma.dtype == np.float64 and np.all(luma == np.round(luma))
    approx = np.rint(ref.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140]))  # the textbook formula
    assert np.abs(luma - approx).max() <= 1 and (luma == approx).mean() > 0.98  # 4 digits: off by 1 on ~1 %
    assert rgb_to_luma(torch.ones(1, 3, 2, 2), "gray8").unique().tolist() == [255.0]
    assert rgb_to_luma(torch.zeros(1, 3, 2, 2), "gray8").unique().tolist() == [0.0]


def test_ssim_nods_is_the_published_ssim_on_rounded_rgb2gray(astronaut):
    ref, dist = astronaut
    expected = skimage_ssim(numpy_rgb2gray_uint8(ref), numpy_rgb2gray_uint8(dist))
    got = get_metric("ssim_nods")(to_tensor(ref), to_tensor(dist)).item()
    assert got == pytest.approx(expected, abs=1e-6)


def test_ssim_nods_differs_from_ssim_gray_only_where_ssim_m_downsamples(astronaut):
    ref, dist = astronaut
    big_ref, big_dist = to_tensor(ref), to_tensor(dist)  # 512 px: ssim.m down-samples by 2
    nods, gray = get_metric("ssim_nods")(big_ref, big_dist).item(), get_metric("ssim_gray")(big_ref, big_dist).item()
    assert abs(nods - gray) > 1e-3
    small_ref, small_dist = big_ref[..., 100:356, 100:356], big_dist[..., 100:356, 100:356]  # 256 px: no down-sampling
    assert (
        get_metric("ssim_nods")(small_ref, small_dist).item() == get_metric("ssim_gray")(small_ref, small_dist).item()
    )


def test_gray_conventions_differ_from_the_ycbcr_ones_on_colour(astronaut):
    ref, dist = astronaut
    ref_t, dist_t = to_tensor(ref), to_tensor(dist)
    assert get_metric("ssim")(ref_t, dist_t).item() != pytest.approx(get_metric("ssim_gray")(ref_t, dist_t).item())
    unchanged = ssim_matlab(ref_t.float(), dist_t.float()).item()  # the registry passes float32 [0, 1]
    assert get_metric("ssim")(ref_t, dist_t).item() == pytest.approx(unchanged, abs=1e-12)  # default: BT.601
    ms, ms_gray = get_metric("ms_ssim")(ref_t, dist_t).item(), get_metric("ms_ssim_gray")(ref_t, dist_t).item()
    assert ms != pytest.approx(ms_gray, abs=1e-6)


def test_gray_metrics_of_a_colour_image_equal_those_of_its_numpy_rgb2gray(astronaut):
    """R = G = B = g gives rgb2gray = g: the metrics see exactly the independently computed luma."""
    ref, dist = astronaut
    gray_ref = np.repeat(numpy_rgb2gray_uint8(ref)[..., None], 3, axis=2).astype(np.uint8)
    gray_dist = np.repeat(numpy_rgb2gray_uint8(dist)[..., None], 3, axis=2).astype(np.uint8)
    for name in ("ssim_gray", "ssim_nods", "ms_ssim_gray"):
        metric = get_metric(name)
        colour = metric(to_tensor(ref), to_tensor(dist)).item()
        assert colour == pytest.approx(metric(to_tensor(gray_ref), to_tensor(gray_dist)).item(), abs=1e-12)


@pytest.mark.parametrize("name", ["ssim_gray", "ssim_nods", "ms_ssim_gray", "vifp"])
def test_identity_and_direction(name, astronaut):
    ref, _ = astronaut
    metric = get_metric(name)
    ref_t = to_tensor(ref)[..., :256, :256]
    mild, strong = (to_tensor(noisy(ref, s, seed=1))[..., :256, :256] for s in (5.0, 25.0))
    assert metric.higher_better
    assert metric(ref_t, ref_t).item() == pytest.approx(1.0, abs=1e-9)
    assert 1.0 > metric(ref_t, mild).item() > metric(ref_t, strong).item()


def test_vifp_is_an_alias_of_the_pixel_domain_vif(astronaut):
    assert get_metric("vifp").name == "vif" and "pixel-domain" in get_metric("vif").about
    assert "vifp" not in BASELINE_NAMES and metric_info("vif")["aliases"] == ["vifp"]


def test_every_baseline_has_a_reference_with_a_year_and_a_range():
    for name in BASELINE_NAMES:
        info = metric_info(name)
        assert info["reference"] == REFERENCES[name] and info["range"] == RANGES[name]
        assert info["direction"] == ("higher" if get_metric_direction(name) else "lower")
        if name != "psnr":
            assert any(str(year) in REFERENCES[name] for year in range(2000, 2030)), name


def get_metric_direction(name: str) -> bool:
    from prfnet.baselines.registry import _SPECS

    return _SPECS[name][0]
