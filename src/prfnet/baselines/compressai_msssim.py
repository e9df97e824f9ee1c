"""MS-SSIM as CompressAI reports it ("ms-ssim-rgb"): ``pytorch_msssim.ms_ssim(X, Y, data_range=1)`` on RGB.

A transcription of pytorch_msssim 1.0.0 (``ms_ssim`` with its defaults), without the dependency: each RGB
channel in [0, 1] (data range 1) separately; 11-tap Gaussian window, sigma 1.5 (built in float32 as there);
'valid' separable filtering; K1 = 0.01, K2 = 0.03; five scales with weights (0.0448, 0.2856, 0.3001, 0.2363,
0.1333); between scales ``avg_pool2d(kernel_size=2, padding=(H % 2, W % 2))`` (zero padding on both sides of an
odd dimension, counted in the average); relu of the mean contrast-structure at scales 1-4 and of the mean SSIM
at scale 5; product of powers; mean over the 3 channels. Arithmetic is float64 (pytorch_msssim runs in the
input's dtype; on float32 inputs it differs from this by float32 rounding, up to ~1e-5).

``piq.multi_scale_ssim`` is not the same: it pads odd dimensions on the top/left by replication before pooling,
which changes scores by up to ~5e-3 on images with odd sizes at some scale (e.g. 300 x 451).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .reference import filter_valid

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# pytorch_msssim asserts min(H, W) > (win_size - 1) * 2**4 = 160, so the coarsest scale keeps >= 11 px
MIN_SIDE = (WINDOW_SIZE - 1) * 2 ** (len(WEIGHTS) - 1) + 1  # 161


def _taps() -> list[float]:
    """pytorch_msssim's ``_fspecial_gauss_1d``: built in float32 (then used in the input's dtype)."""
    coords = torch.arange(WINDOW_SIZE, dtype=torch.float32) - WINDOW_SIZE // 2
    g = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
    return (g / g.sum()).tolist()


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, taps: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and mean contrast-structure, (N, C) each (data range 1)."""
    c1, c2 = K1**2, K2**2
    mu1, mu2, xx, yy, xy = filter_valid(torch.stack([x, y, x * x, y * y, x * y]), taps)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    cs_map = (2 * (xy - mu1_mu2) + c2) / ((xx - mu1_sq) + (yy - mu2_sq) + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def ms_ssim_rgb(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """CompressAI's ms-ssim-rgb: ref, dist (N, C, H, W) in [0, 1], min(H, W) >= 161 -> (N,) float64 in [0, 1].

    Symmetric in its arguments, as pytorch_msssim's ``ms_ssim`` is. Sizes are checked by the caller.
    """
    x, y = ref.to(torch.float64), dist.to(torch.float64)
    taps = _taps()
    weights = torch.tensor(WEIGHTS, dtype=x.dtype, device=x.device)
    factors = []
    for level in range(len(WEIGHTS)):
        ssim, cs = _ssim_cs(x, y, taps)
        if level < len(WEIGHTS) - 1:
            factors.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    factors.append(torch.relu(ssim))
    stacked = torch.stack(factors)  # (levels, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)
