"""ms_ssim_rgb: CompressAI's "ms-ssim-rgb" (pytorch_msssim.ms_ssim on RGB, data range 1) against reference
values computed with pytorch_msssim itself, plus identity, direction, symmetry and the minimum side."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import piq
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from prfnet.baselines import BASELINE_NAMES, get_metric
from prfnet.baselines.compressai_msssim import MIN_SIDE, ms_ssim_rgb
from prfnet.errors import InputError

# Reference values, produced with pytorch-msssim 1.0.0 (the wheel from PyPI, outside the project venv; torch 2.14.1,
# Pillow 13.0.0, numpy 2.4.6, scikit-image 0.26.0) by
#   PYTHONPATH=<unzipped pytorch_msssim-1.0.0 wheel> python gen.py
# where gen.py builds the same (ref, dist) pairs as _pair() below, converts them with
# torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255 and prints
#   pytorch_msssim.ms_ssim(dist, ref, data_range=1, size_average=False).item()
# (float64; on float32 inputs pytorch_msssim gives 0.96869200, 0.92137074, 0.97190589: float32 rounding).
REFERENCE = {
    "astronaut256_q20": 0.9686918998615734,  # 256 x 256: even at every scale
    "chelsea_q10": 0.9213705946359863,  # 300 x 451: odd width, zero-padded pooling (piq gives 0.92458)
    "coffee171x203_smear": 0.9719059596567773,  # 171 x 203: odd sides, no codec involved
}
# sha256 of the JPEG bytes Pillow 13.0.0 (its libjpeg-turbo) wrote for the reference values
JPEG_SHA256 = {
    "astronaut256_q20": "4b7f95c9d8e2fc18998b3efb1ebf6c24d058f4c52363bfa9331674f98a9e21c2",
    "chelsea_q10": "9b771cf7fa2517c504c9e01e58dcc5068551dfeb17dc46947ddcaf6edf02611e",
}


def _jpeg(rgb: np.ndarray, quality: int, case: str) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    encoded = buffer.getvalue()
    if hashlib.sha256(encoded).hexdigest() != JPEG_SHA256[case]:
        pytest.skip(
            f"this Pillow's JPEG encoder writes other bytes than the one the reference values came from ({case})"
        )
    with Image.open(io.BytesIO(encoded)) as img:
        return np.asarray(img.convert("RGB"))


def _smear(rgb: np.ndarray) -> np.ndarray:
    """Exact integer distortion: horizontal 3-tap box (wrapping), then posterise to 16 levels."""
    x = rgb.astype(np.int32)
    x = (np.roll(x, 1, 1) + x + np.roll(x, -1, 1)) // 3
    return ((x // 16) * 16 + 8).astype(np.uint8)


def _pair(case: str) -> tuple[np.ndarray, np.ndarray]:
    if case == "astronaut256_q20":
        ref = np.ascontiguousarray(skdata.astronaut()[:256, :256])
        return ref, _jpeg(ref, 20, case)
    if case == "chelsea_q10":
        ref = skdata.chelsea()
        return ref, _jpeg(ref, 10, case)
    ref = np.ascontiguousarray(skdata.coffee()[:171, :203])
    return ref, _smear(ref)


def _uint8(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None]


def _tensor(rgb: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _uint8(rgb).to(dtype) / 255.0


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_ms_ssim_rgb_matches_pytorch_msssim(case):
    ref, dist = _pair(case)
    metric = get_metric("ms-ssim-rgb")
    score = metric(_tensor(ref), _tensor(dist))
    assert score.shape == (1,) and score.dtype == torch.float64
    assert score.item() == pytest.approx(REFERENCE[case], abs=1e-5)
    # uint8 input gives the same score; float64 straight into the function agrees to float64 rounding
    assert metric(_uint8(ref), _uint8(dist)).item() == pytest.approx(REFERENCE[case], abs=1e-5)
    direct = ms_ssim_rgb(_tensor(ref, torch.float64), _tensor(dist, torch.float64)).item()
    assert direct == pytest.approx(REFERENCE[case], abs=1e-12)


def test_ms_ssim_rgb_differs_from_piq_on_odd_sizes():
    ref, dist = _pair("chelsea_q10")
    piq_score = piq.multi_scale_ssim(_tensor(dist), _tensor(ref), data_range=1.0, reduction="none").item()
    assert abs(piq_score - REFERENCE["chelsea_q10"]) > 1e-3  # why piq is not used for this metric


def test_ms_ssim_rgb_identity_direction_symmetry_and_batch():
    metric = get_metric("ms_ssim_rgb")
    assert "ms_ssim_rgb" in BASELINE_NAMES and metric.higher_better and metric.min_side == MIN_SIDE == 161
    assert "CompressAI" in metric.about
    ref = _tensor(np.ascontiguousarray(skdata.astronaut()[100:300, 150:350]))
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(ref.shape, generator=g)
    dists = torch.cat([(ref + s * noise).clamp(0, 1) for s in (0.0, 0.02, 0.05, 0.15)])
    scores = metric(ref, dists)  # a ref batch of 1 broadcasts
    assert scores[0].item() == pytest.approx(1.0, abs=1e-12)
    assert bool((scores[1:] < scores[:-1]).all()) and bool((scores >= 0).all())
    alone = torch.cat([metric(ref, dists[i : i + 1]) for i in range(len(dists))])
    assert torch.allclose(scores, alone, rtol=0, atol=1e-12)
    assert metric(dists[2:3], ref).item() == pytest.approx(scores[2].item(), abs=1e-12)  # symmetric


@pytest.mark.parametrize("size", [(160, 300), (300, 160), (100, 100)])
def test_ms_ssim_rgb_min_side(size, images):
    metric = get_metric("ms_ssim_rgb")
    x = images(1, *size)
    with pytest.raises(InputError, match="ms_ssim_rgb needs images of at least 161x161"):
        metric(x, x)
    ok = images(1, 161, 161)
    assert metric(ok, ok).item() == pytest.approx(1.0, abs=1e-12)
