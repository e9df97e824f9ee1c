"""Classic full-reference baselines with the settings of their original implementations (docs/baselines.md).

``get_metric(name)(ref, dist)`` scores float RGB batches (N, 3, H, W) in [0, 1] -> (N,) float64;
``metric.higher_better`` gives the direction (PSNR/SSIM: higher = closer; GMSD/MDSI/LPIPS/DISTS: lower = closer).
"""

from .reference import box_downsample, ms_ssim_matlab, rgb_to_luma, ssim_downsample_factor, ssim_matlab
from .registry import (
    BASELINE_NAMES,
    LEARNED_NAMES,
    BaselineMetric,
    Metric,
    MetricUnavailable,
    available_metrics,
    canonical_metric_name,
    get_metric,
    prefers_a,
)

__all__ = [
    "BASELINE_NAMES",
    "LEARNED_NAMES",
    "BaselineMetric",
    "Metric",
    "MetricUnavailable",
    "available_metrics",
    "box_downsample",
    "canonical_metric_name",
    "get_metric",
    "ms_ssim_matlab",
    "prefers_a",
    "rgb_to_luma",
    "ssim_downsample_factor",
    "ssim_matlab",
]
