"""SSIM and MS-SSIM as the authors' MATLAB code computes them, vectorised over the batch with torch.

* :func:`ssim_matlab` follows Z. Wang's ``ssim.m`` (2009, "SSIM with automatic down-sampling"): luminance
  only, data range L = 255, down-sampling by ``f = max(1, round(min(H, W) / 256))`` with an f x f box filter
  (``imfilter(img, ones(f)/f^2, 'symmetric', 'same')``) then ``img(1:f:end, 1:f:end)``, an 11 x 11 Gaussian
  window (sigma 1.5), K1 = 0.01, K2 = 0.03, 'valid' filtering (no padding), mean of the SSIM map.
* :func:`ms_ssim_matlab` follows Wang, Simoncelli & Bovik's ``msssim.m`` (2003): same window and constants,
  five scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2 x 2 averaging (same imfilter rule)
  between scales, mean contrast-structure at scales 1-4 and mean SSIM at scale 5, product of powers.
  No automatic down-sampling. Images need >= 176 px per side (11 px at the coarsest scale).

Arithmetic is float64, as in MATLAB. Luma: see :func:`rgb_to_luma` (default ITU-R BT.601 Y of ``rgb2ycbcr``;
``"gray8"``: MATLAB ``rgb2gray`` of uint8 images, rounded to 8 bits, the luma of the published calibration values).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InputError

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = WINDOW_SIZE * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # 176, msssim.m returns -Inf below
LUMA_KINDS = ("ycbcr", "gray", "gray8")

# MATLAB rgb2gray coefficients (rounded inverse of the NTSC transform), applied to 8-bit-scaled RGB.
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
# MATLAB rgb2ycbcr / ITU-R BT.601 Y for R, G, B in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B, in [16, 235].
_BT601_Y = (65.481, 128.553, 24.966)


def rgb_to_luma(rgb: torch.Tensor, kind: str = "ycbcr") -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> luma (N, 1, H, W) float64 on the 8-bit scale.

    ``kind="ycbcr"``: MATLAB ``rgb2ycbcr`` Y (ITU-R BT.601), in [16, 235]. ``kind="gray"``: MATLAB ``rgb2gray``
    times 255, in [0, 255], not rounded. ``kind="gray8"``: the same rounded to integers (halves up), as
    ``rgb2gray`` returns for uint8 images: round(0.2989 R + 0.5870 G + 0.1140 B) with R, G, B in 0..255.
    """
    if kind not in LUMA_KINDS:
        raise InputError(f"unknown luma {kind!r}; expected one of {LUMA_KINDS}")
    rgb = rgb.to(torch.float64)
    if kind == "ycbcr":
        coeffs, offset = _BT601_Y, 16.0
    else:
        coeffs, offset = tuple(255.0 * c for c in _RGB2GRAY), 0.0
    weights = torch.tensor(coeffs, dtype=torch.float64, device=rgb.device).view(1, 3, 1, 1)
    luma = (rgb * weights).sum(dim=1, keepdim=True) + offset
    if kind == "gray8":  # MATLAB uint8 arithmetic: round half away from zero (values are >= 0), saturate
        luma = torch.floor(luma + 0.5).clamp(0.0, 255.0)
    return luma


def matlab_round(value: float) -> int:
    """MATLAB ``round`` for non-negative values: halves go up (Python's ``round`` goes to even)."""
    return math.floor(value + 0.5)


def ssim_downsample_factor(height: int, width: int) -> int:
    """``f = max(1, round(min(H, W) / 256))`` of ssim.m (f = 3 for 768 x 768 CLIC images)."""
    return max(1, matlab_round(min(height, width) / 256))


def _pad_symmetric(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """MATLAB/numpy 'symmetric' padding along ``dim`` (the edge sample is repeated: ... b a | a b ...)."""
    parts = []
    if before:
        parts.append(x.narrow(dim, 0, before).flip(dim))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
    return torch.cat(parts, dim=dim)


def box_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``imfilter(x, ones(f,f)/f^2, 'symmetric', 'same')`` followed by ``x(1:f:end, 1:f:end)``.

    x: (N, C, H, W) -> (N, C, ceil(H/f), ceil(W/f)). imfilter anchors an f-tap kernel at tap floor((f+1)/2), so
    the kept samples average the (symmetrically padded) block starting floor((f-1)/2) samples before them.
    """
    if factor == 1:
        return x
    if factor > min(x.shape[-2:]):
        raise InputError(f"cannot down-sample a {tuple(x.shape[-2:])} image by {factor}")
    before = (factor - 1) // 2
    after = factor - 1 - before
    x = _pad_symmetric(_pad_symmetric(x, before, after, dim=-2), before, after, dim=-1)
    return F.avg_pool2d(x, kernel_size=factor, stride=factor)


def _gaussian_window_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D factor of ``fspecial('gaussian', 11, 1.5)`` (the 2-D window is its outer product)."""
    coords = torch.arange(WINDOW_SIZE, dtype=dtype, device=device) - (WINDOW_SIZE - 1) / 2
    window = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
    return window / window.sum()


def filter_valid(maps: torch.Tensor, taps: list[float] | None = None) -> torch.Tensor:
    """``filter2(window, map, 'valid')`` per channel: (..., H, W) -> (..., H-10, W-10); ``taps``: the 11 weights of
    the separable 1-D window (default: ``fspecial('gaussian', 11, 1.5)``'s factor, computed in float64).

    The window is separable; each 1-D pass is 11 shifted multiply-adds, several times faster on CPU than
    ``conv2d`` (which has no fast float64 / single-channel path) and as fast on GPU.
    """
    if taps is None:
        taps = _gaussian_window_1d(torch.float64, torch.device("cpu")).tolist()
    out_h, out_w = maps.shape[-2] - WINDOW_SIZE + 1, maps.shape[-1] - WINDOW_SIZE + 1
    vertical = torch.zeros_like(maps[..., :out_h, :])
    for offset, tap in enumerate(taps):
        vertical.add_(maps[..., offset : offset + out_h, :], alpha=tap)
    filtered = torch.zeros_like(vertical[..., :out_w])
    for offset, tap in enumerate(taps):
        filtered.add_(vertical[..., offset : offset + out_w], alpha=tap)
    return filtered


def ssim_and_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure (each (N,)) of luma images x, y (N, 1, H, W), data range 255.

    This is ``ssim_index_new`` of msssim.m (and the core of ssim.m): no down-sampling, 'valid' windows.
    """
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    stats = filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1))
    mu_x, mu_y = stats[:, 0], stats[:, 1]
    var_x = stats[:, 2] - mu_x * mu_x
    var_y = stats[:, 3] - mu_y * mu_y
    cov_xy = stats[:, 4] - mu_x * mu_y
    cs_map = (2 * cov_xy + c2) / (var_x + var_y + c2)
    luminance_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (luminance_map * cs_map).mean(dim=(-2, -1)), cs_map.mean(dim=(-2, -1))


def _check_pair(ref: torch.Tensor, dist: torch.Tensor, min_side: int, what: str) -> None:
    if ref.ndim != 4 or dist.ndim != 4 or ref.shape[1] != 3 or dist.shape[1] != 3 or ref.shape[-2:] != dist.shape[-2:]:
        raise InputError(
            f"{what}: expected RGB tensors (N, 3, H, W) of one size, got {tuple(ref.shape)} and {tuple(dist.shape)}"
        )
    if min(ref.shape[-2:]) < min_side:
        raise InputError(
            f"{what} needs images of at least {min_side}x{min_side} pixels, got {ref.shape[-2]}x{ref.shape[-1]}"
        )


def ssim_matlab(ref: torch.Tensor, dist: torch.Tensor, luma: str = "ycbcr", downsample: bool = True) -> torch.Tensor:
    """SSIM of ssim.m: ref, dist (N, 3, H, W) RGB in [0, 1], H, W >= 11 -> (N,) float64.

    Higher = closer to the reference; 1 for identical images, <= 1 (can be slightly negative). ``luma``: see
    :func:`rgb_to_luma`. ``downsample=False`` drops ssim.m's automatic down-sampling (same result when
    min(H, W) < 384, where its factor is 1), as the published SSIM calibration values do.
    """
    _check_pair(ref, dist, WINDOW_SIZE, "SSIM")
    x, y = rgb_to_luma(ref, luma), rgb_to_luma(dist, luma)
    factor = ssim_downsample_factor(*x.shape[-2:]) if downsample else 1
    return ssim_and_cs(box_downsample(x, factor), box_downsample(y, factor))[0]


def ms_ssim_matlab(ref: torch.Tensor, dist: torch.Tensor, luma: str = "ycbcr") -> torch.Tensor:
    """MS-SSIM of msssim.m: ref, dist (N, 3, H, W) RGB in [0, 1], H, W >= 176 -> (N,) float64 in [0, 1].

    Higher = closer to the reference; 1 for identical images. Where a scale's mean contrast-structure (or the
    coarsest mean SSIM) is negative, MATLAB's real power would turn complex; it is clamped to 0 here (MS-SSIM 0).
    """
    _check_pair(ref, dist, MS_SSIM_MIN_SIDE, "MS-SSIM (5 scales of an 11x11 window)")
    x, y = rgb_to_luma(ref, luma), rgb_to_luma(dist, luma)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    cs_per_scale = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim_value, cs_value = ssim_and_cs(x, y)
        cs_per_scale.append(cs_value)
        if scale < len(MS_SSIM_WEIGHTS) - 1:
            x, y = box_downsample(x, 2), box_downsample(y, 2)
    cs = torch.stack(cs_per_scale[:-1], dim=1).clamp_min(0.0)  # (N, 4)
    return (cs ** weights[:-1]).prod(dim=1) * ssim_value.clamp_min(0.0) ** weights[-1]
