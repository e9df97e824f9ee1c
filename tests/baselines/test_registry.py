"""prfnet.baselines: SSIM / MS-SSIM against an independent numpy/scipy transcription of the authors' MATLAB code,
sanity and direction of every classical metric, 2AFC decisions, and offline-only LPIPS / DISTS."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import correlate2d

from prfnet.baselines import (
    BASELINE_NAMES,
    LEARNED_NAMES,
    Metric,
    MetricUnavailable,
    available_metrics,
    box_downsample,
    get_metric,
    ms_ssim_matlab,
    prefers_a,
    ssim_downsample_factor,
    ssim_matlab,
)
from prfnet.errors import CheckpointError, ConfigError, InputError

CLASSICAL = [name for name in BASELINE_NAMES if name not in LEARNED_NAMES]


# ---------- independent reference: the MATLAB code (ssim.m 2009, msssim.m 2003) in numpy/scipy ----------


def matlab_box_downsample(img: np.ndarray, f: int) -> np.ndarray:
    """imfilter(img, ones(f)/f^2, 'symmetric', 'same') then img(1:f:end, 1:f:end); anchor = floor((f+1)/2)."""
    if f == 1:
        return img
    anchor = (f + 1) // 2  # 1-based centre tap of imfilter
    pad = ((anchor - 1, f - anchor), (anchor - 1, f - anchor))
    same = correlate2d(np.pad(img, pad, mode="symmetric"), np.ones((f, f)) / f**2, mode="valid")
    assert same.shape == img.shape
    return same[::f, ::f]


def fspecial_gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma**2))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def matlab_ssim_index_new(img1: np.ndarray, img2: np.ndarray) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) with filter2(window, ., 'valid'), K = [0.01 0.03], L = 255."""
    window = fspecial_gaussian()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filter2(a):
        return correlate2d(a, window, mode="valid")

    mu1, mu2 = filter2(img1), filter2(img2)
    sigma1_sq = filter2(img1 * img1) - mu1 * mu1
    sigma2_sq = filter2(img2 * img2) - mu2 * mu2
    sigma12 = filter2(img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / ((mu1**2 + mu2**2 + c1) * (sigma1_sq + sigma2_sq + c2))
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    return float(ssim_map.mean()), float(cs_map.mean())


def matlab_ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    f = max(1, int(np.floor(min(img1.shape) / 256 + 0.5)))  # MATLAB round: halves away from zero
    return matlab_ssim_index_new(matlab_box_downsample(img1, f), matlab_box_downsample(img2, f))[0]


def matlab_msssim(img1: np.ndarray, img2: np.ndarray) -> float:
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    mssim, mcs = [], []
    for _ in weights:
        s, cs = matlab_ssim_index_new(img1, img2)
        mssim.append(s)
        mcs.append(cs)
        img1, img2 = matlab_box_downsample(img1, 2), matlab_box_downsample(img2, 2)
    return float(np.prod(np.array(mcs[:4]) ** np.array(weights[:4])) * mssim[4] ** weights[4])


def bt601_y(rgb: np.ndarray) -> np.ndarray:
    """rgb2ycbcr luma for (H, W, 3) in [0, 1]: 16 + 65.481 R + 128.553 G + 24.966 B."""
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


# ---------- test images: smooth structure + texture, 8-bit, and realistic distortions ----------


def natural_like(h: int, w: int, seed: int) -> np.ndarray:
    """(H, W, 3) in [0, 1], quantised to 8 bits: blurred noise at several scales plus a few edges."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    for scale in (32, 8, 2):
        coarse = rng.random((h // scale + 2, w // scale + 2, 3))
        img += np.asarray(
            Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), dtype=float
        ) / (255 * 3)
    img[h // 3 :, : w // 2] *= 0.6
    return np.round(np.clip(img, 0, 1) * 255) / 255


def add_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noisy = img + np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.round(np.clip(noisy, 0, 1) * 255) / 255


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=float) / 255


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).float().permute(2, 0, 1).unsqueeze(0)


# ---------- reference SSIM / MS-SSIM ----------

# Largest differences observed between prfnet and the transcription on the cases below: 3.0e-9 (SSIM) and
# 7.8e-10 (MS-SSIM), from the float32 input tensors (the transcription reads the float64 images). 1e-6 leaves a
# margin of over 300 and still catches a change of the size of MATLAB's integer rounding of Y (about 1e-4).
TOLERANCE = 1e-6


@pytest.mark.parametrize("factor", [2, 3, 4, 5])
def test_box_downsample_is_matlab_imfilter_then_subsample(factor):
    img = np.random.default_rng(factor).random((13, 17)) * 255
    ours = box_downsample(torch.from_numpy(img)[None, None], factor)[0, 0].numpy()
    np.testing.assert_allclose(ours, matlab_box_downsample(img, factor), atol=1e-9)


def test_downsample_factor_uses_matlab_rounding():
    assert ssim_downsample_factor(255, 300) == 1  # 0.996 -> 1
    assert ssim_downsample_factor(384, 400) == 2  # 1.5 rounds up
    assert ssim_downsample_factor(640, 650) == 3  # 2.5 rounds up in MATLAB (Python's round() gives 2)
    assert ssim_downsample_factor(768, 768) == 3  # CLIC images


@pytest.mark.parametrize(
    ("height", "width", "distortion"),
    [(64, 80, "noise"), (300, 270, "jpeg"), (400, 384, "jpeg"), (400, 384, "noise"), (640, 650, "jpeg")],
)
def test_ssim_matches_matlab_ssim_m(height, width, distortion):
    ref = natural_like(height, width, seed=height)
    dist = jpeg(ref, quality=15) if distortion == "jpeg" else add_noise(ref, 0.06, seed=width)
    expected = matlab_ssim(bt601_y(ref), bt601_y(dist))
    ours = ssim_matlab(to_tensor(ref), to_tensor(dist)).item()
    assert abs(ours - expected) < TOLERANCE
    assert 0.2 < expected < 0.999  # a non-trivial comparison


@pytest.mark.parametrize(("height", "width"), [(176, 176), (257, 300)])
def test_ms_ssim_matches_matlab_msssim_m(height, width):
    ref = natural_like(height, width, seed=width)
    for dist in (jpeg(ref, quality=10), add_noise(ref, 0.08, seed=1)):
        expected = matlab_msssim(bt601_y(ref), bt601_y(dist))
        ours = ms_ssim_matlab(to_tensor(ref), to_tensor(dist)).item()
        assert abs(ours - expected) < TOLERANCE
        assert 0.2 < expected < 0.999


def test_registry_ssim_is_the_reference_ssim_and_broadcasts_the_reference():
    ref = natural_like(96, 96, seed=3)
    dists = torch.cat([to_tensor(add_noise(ref, s, seed=4)) for s in (0.02, 0.1)])
    batch = get_metric("ssim")(to_tensor(ref), dists)
    assert batch.shape == (2,) and batch.dtype == torch.float64
    for i, sigma in enumerate((0.02, 0.1)):
        single = matlab_ssim(bt601_y(ref), bt601_y(add_noise(ref, sigma, seed=4)))
        assert abs(batch[i].item() - single) < TOLERANCE
        assert batch[i].item() == pytest.approx(get_metric("ssim")(to_tensor(ref), dists[i : i + 1]).item(), abs=1e-9)


def test_ms_ssim_rejects_small_images():
    x = torch.rand(1, 3, 128, 200)
    with pytest.raises(InputError, match="176"):
        get_metric("ms_ssim")(x, x)


# ---------- sanity of every classical metric ----------


@pytest.fixture(scope="module")
def noise_series():
    ref = natural_like(192, 192, seed=7)
    return to_tensor(ref), [to_tensor(add_noise(ref, s, seed=8)) for s in (0.03, 0.15)]


def test_identical_images_get_the_best_scores():
    x = to_tensor(natural_like(192, 192, seed=9))
    assert get_metric("ssim")(x, x).item() == pytest.approx(1.0, abs=1e-9)
    assert get_metric("ms_ssim")(x, x).item() == pytest.approx(1.0, abs=1e-9)
    psnr = get_metric("psnr")(x, x).item()
    assert np.isfinite(psnr) and psnr == pytest.approx(80.0)  # 10 log10(1 / (0 + 1e-8)) cap


@pytest.mark.parametrize("name", CLASSICAL)
def test_more_noise_scores_worse_in_the_metrics_direction(name, noise_series):
    ref, (mild, strong) = noise_series
    metric = get_metric(name)
    assert isinstance(metric, Metric) and metric.name == name
    mild_score, strong_score, same_score = metric(ref, mild), metric(ref, strong), metric(ref, ref)
    assert torch.isfinite(torch.cat([mild_score, strong_score, same_score])).all()
    assert prefers_a(mild_score, strong_score, metric.higher_better).item() == 1.0
    assert prefers_a(same_score, strong_score, metric.higher_better).item() == 1.0
    batch = metric(ref, torch.cat([mild, strong]))  # an item's score must not depend on its batch
    torch.testing.assert_close(batch, torch.cat([mild_score, strong_score]), rtol=1e-5, atol=1e-5)


def test_direction_flags():
    lower_better = {name for name in BASELINE_NAMES if name not in LEARNED_NAMES and not get_metric(name).higher_better}
    assert lower_better == {"gmsd", "mdsi", "flip"}
    assert {"psnr", "ssim", "ms_ssim", "fsim", "vif"} <= set(BASELINE_NAMES)


def test_bad_inputs_raise_input_errors():
    metric = get_metric("psnr")
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(InputError, match="0, 1"):
        metric(x, x * 255)
    with pytest.raises(InputError, match="same height and width"):
        metric(x, torch.rand(1, 3, 64, 48))
    with pytest.raises(InputError, match="vif needs images of at least 41"):
        get_metric("vif")(torch.rand(1, 3, 40, 64), torch.rand(1, 3, 40, 64))


# ---------- names, 2AFC decisions ----------


def test_unknown_metric_is_a_config_error_and_names_are_normalised():
    with pytest.raises(ConfigError, match="unknown metric 'ssim2'"):
        get_metric("ssim2")
    assert get_metric("MS-SSIM").name == "ms_ssim"


def test_prefers_a():
    a = torch.tensor([1.0, 2.0, 3.0, float("nan")])
    b = torch.tensor([2.0, 2.0, 1.0, 1.0])
    assert prefers_a(a, b, higher_better=True).tolist() == [0.0, 0.5, 1.0, 0.5]
    assert prefers_a(a, b, higher_better=False).tolist() == [1.0, 0.5, 0.0, 0.5]
    assert prefers_a(a[:3], torch.tensor(2.0), higher_better=True).tolist() == [0.0, 0.5, 1.0]


# ---------- LPIPS / DISTS: local files only ----------


@pytest.fixture()
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def point_weights_to(monkeypatch, folder) -> None:
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(folder))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(folder / "hub"))


def test_lpips_and_dists_are_unavailable_without_weights(tmp_path, monkeypatch, no_downloads):
    point_weights_to(monkeypatch, tmp_path)
    monkeypatch.setenv("PRFNET_OFFLINE", "1")  # online, the VGG16 file would be downloaded on first use
    reasons = available_metrics()
    assert all(reasons[name] is None for name in CLASSICAL)
    for name in ("lpips", "dists"):  # the small layer weights ship with torchmetrics
        assert "vgg16-397923af.pth" in reasons[name]
        with pytest.raises(MetricUnavailable) as info:
            get_metric(name)
        assert str(info.value) == reasons[name]


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory):
    """Random VGG16 features + LPIPS / DISTS weights in the files' formats, written by the test."""
    from torchvision.models.vgg import cfgs, make_layers

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, folder / "vgg16-397923af.pth")
    torch.save([torch.rand(1, c, 1, 1) for c in (64, 128, 256, 512, 512)], folder / "lpips_weights.pt")
    torch.save(
        {"alpha": torch.rand(1, 1475, 1, 1) / 2950, "beta": torch.rand(1, 1475, 1, 1) / 2950},
        folder / "dists_weights.pt",
    )
    return folder


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_learned_metrics_load_local_weights_only(name, fake_weights, monkeypatch, no_downloads):
    point_weights_to(monkeypatch, fake_weights)
    assert available_metrics()[name] is None
    metric = get_metric(name)
    assert not metric.higher_better
    ref = to_tensor(natural_like(64, 64, seed=11))
    noisy = to_tensor(add_noise(natural_like(64, 64, seed=11), 0.2, seed=12))
    same, different = metric(ref, ref), metric(ref, noisy)
    assert same.abs().item() < 1e-4
    assert different.item() > same.item()


def test_malformed_weight_file_is_a_checkpoint_error(fake_weights, tmp_path, monkeypatch, no_downloads):
    (tmp_path / "vgg16-397923af.pth").symlink_to(fake_weights / "vgg16-397923af.pth")
    torch.save([torch.rand(1, 64, 1, 1)], tmp_path / "lpips_weights.pt")
    point_weights_to(monkeypatch, tmp_path)
    with pytest.raises(CheckpointError, match="lpips_weights.pt"):
        get_metric("lpips")
