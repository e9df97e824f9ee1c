"""Codec-practice metrics: SSIMULACRA 2, ColorVideoVDP and FLIP, from their optional packages (docs/baselines.md).

Each score function takes the registry's (N, 3, H, W) sRGB float tensors in [0, 1] and returns (N,) float64, one
image at a time (a score never depends on the rest of its batch). The packages (``pip install
'prfnet[codec-metrics]'``) are imported on first use only; :func:`unavailable_reason` checks for them with
``importlib.util.find_spec`` (no import).

* ``ssimulacra2``: SSIMULACRA 2.1 (higher = closer, 100 = identical). The colour conversion, SSIM / edge maps and
  weights are the ``ssimulacra2`` package's; the blur and the scale loop are libjxl's (the package's own
  ``compute_ssimulacra2`` uses a true Gaussian with other borders and stops one scale early when the short side is
  under 256 px: it differs from libjxl's C++ tool by up to 27 points on 256 px photos; this, by < 0.02).
* ``cvvdp`` / ``cvvdp:<display>``: ColorVideoVDP in image mode (one frame), in JOD (higher = closer, 10 =
  identical), with a named display model from cvvdp's ``display_models.json`` (SDR ones; default ``standard_4k``).
* ``flip``: mean LDR-FLIP error (lower = closer, [0, 1]) at FLIP's default viewing conditions (67 px per degree).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..errors import ConfigError
from .learned import MetricUnavailable

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

CODEC_NAMES: tuple[str, ...] = ("ssimulacra2", "cvvdp", "flip")
EXTRA = "codec-metrics"
#: metric -> (module imported, distribution on PyPI)
PACKAGES: dict[str, tuple[str, str]] = {
    "ssimulacra2": ("ssimulacra2", "ssimulacra2"),
    "cvvdp": ("pycvvdp", "cvvdp"),
    "flip": ("flip_evaluator", "flip-evaluator"),
}
CVVDP_DEFAULT_DISPLAY = "standard_4k"  # cvvdp's own default
#: FLIP's defaults: 0.7 m from a 0.7 m wide monitor of 3840 px -> 67.02 pixels per degree
FLIP_VIEWING = "0.7 m from a 0.7 m wide 3840 px monitor (67 pixels per degree, FLIP's default)"
SSIMULACRA2_SIGMA = 1.5
SSIMULACRA2_SCALES = 6
SSIMULACRA2_MIN_SIDE = 8  # libjxl: no scale is computed under 8 px


def unavailable_reason(name: str) -> str | None:
    """None if the package of codec metric ``name`` is installed, else one line saying how to install it (cheap)."""
    module, dist = PACKAGES[name]
    if importlib.util.find_spec(module) is not None:
        return None
    return f"{name} needs the {dist} package (not installed): pip install 'prfnet[{EXTRA}]' (or pip install {dist})"


def package_version(name: str) -> str:
    """Installed version of the package that computes ``name`` ("missing" when not installed)."""
    try:
        return importlib.metadata.version(PACKAGES[name][1])
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _import(name: str):
    if (reason := unavailable_reason(name)) is not None:
        raise MetricUnavailable(reason)
    try:
        return importlib.import_module(PACKAGES[name][0])
    except ImportError as exc:  # installed but broken (e.g. a missing dependency): still one line
        raise MetricUnavailable(f"{name}: importing {PACKAGES[name][0]} failed ({exc})") from None


# ---------- names: "cvvdp:standard_fhd" ----------


@lru_cache(maxsize=1)
def cvvdp_displays() -> dict[str, dict]:
    """cvvdp's display models (name -> entry of its ``vvdp_data/display_models.json``), read without importing
    pycvvdp; {} when it is not installed."""
    spec = importlib.util.find_spec("pycvvdp")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "vvdp_data" / "display_models.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def sdr_displays() -> list[str]:
    """The display models that take sRGB-encoded input (no ``colorspace`` or sRGB): those this metric accepts."""
    return [name for name, entry in cvvdp_displays().items() if entry.get("colorspace", "sRGB") == "sRGB"]


def split_name(key: str) -> tuple[str, str | None]:
    """``"cvvdp:standard_fhd"`` -> ("cvvdp", "standard_fhd"); a name without ':' -> (name, None)."""
    base, sep, option = key.partition(":")
    return base, (option.strip() if sep else None)


def canonical(base: str, option: str | None) -> str:
    """The metric's name: ``cvvdp`` for the default display, ``cvvdp:<display>`` for another; ConfigError for an
    option on a metric without options or for a display cvvdp does not have (or that is not SDR)."""
    if base != "cvvdp":
        if option is not None:
            raise ConfigError(f"metric {base!r} takes no option (got {base}:{option})")
        return base
    display = option or CVVDP_DEFAULT_DISPLAY
    displays = cvvdp_displays()
    if displays and display not in sdr_displays():
        what = "an HDR display (this metric feeds sRGB)" if display in displays else "not a cvvdp display"
        raise ConfigError(f"cvvdp display {display!r} is {what}; choose one of {', '.join(sdr_displays())}")
    return "cvvdp" if display == CVVDP_DEFAULT_DISPLAY else f"cvvdp:{display}"


def about(key: str) -> str:
    """One line: what ``key`` (a canonical name) computes, with its display model or viewing conditions."""
    base, option = split_name(key)
    if base == "ssimulacra2":
        return (
            "SSIMULACRA 2.1 on sRGB (ssimulacra2 package's XYB, SSIM and edge maps, weights; libjxl's recursive "
            "Gaussian blur, sigma 1.5, and 6-scale loop)"
        )
    if base == "flip":
        return f"mean LDR-FLIP error (flip_evaluator), viewing conditions: {FLIP_VIEWING}"
    display = option or CVVDP_DEFAULT_DISPLAY
    described = cvvdp_displays().get(display, {}).get("name", "")
    return f"ColorVideoVDP in JOD, image mode (single frame), display model {display}" + (
        f" ({described})" if described else ""
    )


def identity(key: str) -> str:
    """Score-store key: the name and a digest of :func:`about` and the versions of prfnet and of the package."""
    base, _ = split_name(key)
    text = f"{about(key)}|prfnet {__version__}|{PACKAGES[base][1]} {package_version(base)}"
    return f"{key}/{hashlib.sha256(text.encode()).hexdigest()[:16]}"


# ---------- SSIMULACRA 2 ----------


@lru_cache(maxsize=4)
def recursive_gaussian_kernel(sigma: float = SSIMULACRA2_SIGMA) -> np.ndarray:
    """The FIR kernel of libjxl's ``CreateRecursiveGaussian(sigma)`` + ``FastGaussian1D`` (Charalampidis 2016's
    truncated-cosine IIR, zero-padded): the impulse response of its recursion, run in float64."""
    radius = float(np.round(3.2795 * sigma + 0.2546))
    n_radius = int(radius)
    omega = np.pi / (2.0 * radius) * np.array([1.0, 3.0, 5.0])
    p = np.array([1.0, -1.0, 1.0]) / np.tan(0.5 * omega)
    r = np.array([1.0, -1.0, 1.0]) * p * p / np.sin(omega)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / radius
    d_13, d_35, d_51 = p[0] * r[1] - r[0] * p[1], p[1] * r[2] - r[1] * p[2], p[2] * r[0] - r[2] * p[0]
    zeta_15, zeta_35 = d_35 / d_13, d_51 / d_13
    matrix = np.array([p, r, [zeta_15, zeta_35, 1.0]])
    gamma = np.array([1.0, radius * radius - sigma * sigma, zeta_15 * rho[0] + zeta_35 * rho[1] + rho[2]])
    beta = np.linalg.solve(matrix, gamma)
    n2, d1 = -beta * np.cos(omega * (radius + 1.0)), -2.0 * np.cos(omega)
    size = 4 * n_radius + 3
    impulse, out = np.zeros(size), np.zeros(size)
    impulse[size // 2] = 1.0
    prev, prev2 = np.zeros(3), np.zeros(3)
    for n in range(-n_radius + 1, size):
        left = impulse[n - n_radius - 1] if n - n_radius - 1 >= 0 else 0.0
        right = impulse[n + n_radius - 1] if n + n_radius - 1 < size else 0.0
        value = n2 * (left + right) - d1 * prev - prev2
        prev2, prev = prev, value
        if n >= 0:
            out[n] = value.sum()
    taps = out[size // 2 - n_radius : size // 2 + n_radius + 1]
    return taps[np.abs(taps) > 1e-12]  # the outermost taps are cos(pi/2) = 0


def _libjxl_blur(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    kernel = recursive_gaussian_kernel()
    out = correlate1d(img, kernel, axis=0, mode="constant", cval=0.0)
    return correlate1d(out, kernel, axis=1, mode="constant", cval=0.0)


def ssimulacra2_score(ref: np.ndarray, dist: np.ndarray) -> float:
    """SSIMULACRA 2.1 of two (H, W, 3) sRGB images in [0, 255] (float), H, W >= 8 -> (-inf, 100], 100 =
    identical: libjxl's ``ComputeSSIMULACRA2`` loop with the ``ssimulacra2`` package's building blocks."""
    s2 = importlib.import_module("ssimulacra2.ssimulacra2")
    lin1, lin2 = s2.srgb_to_linear(ref), s2.srgb_to_linear(dist)
    msssim = s2.Msssim()
    for scale in range(SSIMULACRA2_SCALES):
        if lin1.shape[0] < 8 or lin1.shape[1] < 8:  # libjxl tests the size before down-sampling
            break
        if scale:
            lin1, lin2 = s2.downsample(lin1, 2, 2), s2.downsample(lin2, 2, 2)
        img1 = s2.make_positive_xyb(s2.linear_rgb_to_xyb(lin1))
        img2 = s2.make_positive_xyb(s2.linear_rgb_to_xyb(lin2))
        mu1, mu2 = _libjxl_blur(img1), _libjxl_blur(img2)
        sigma11, sigma22 = _libjxl_blur(img1 * img1), _libjxl_blur(img2 * img2)
        sigma12 = _libjxl_blur(img1 * img2)
        data = s2.MsssimScale()
        data.avg_ssim = s2.ssim_map(mu1, mu2, sigma11, sigma22, sigma12)
        data.avg_edgediff = s2.edge_diff_map(img1, mu1, img2, mu2)
        msssim.scales.append(data)
    return float(msssim.score())


def _hwc(batch: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(batch.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy())


def _ssimulacra2_fn(device: torch.device) -> ScoreFn:
    _import("ssimulacra2")

    def score(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        refs, dists = _hwc(ref).astype(np.float64) * 255.0, _hwc(dist).astype(np.float64) * 255.0
        values = [ssimulacra2_score(r, d) for r, d in zip(refs, dists, strict=True)]
        return torch.tensor(values, dtype=torch.float64)

    return score


# ---------- FLIP ----------


def _flip_fn(device: torch.device) -> ScoreFn:
    flip = _import("flip")

    def score(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        values = [
            flip.evaluate(np.ascontiguousarray(r), np.ascontiguousarray(d), "LDR", applyMagma=False)[1]
            for r, d in zip(_hwc(ref), _hwc(dist), strict=True)
        ]
        return torch.tensor(values, dtype=torch.float64)

    return score


# ---------- ColorVideoVDP ----------


def _cvvdp_fn(device: torch.device, display: str) -> ScoreFn:
    pycvvdp = _import("cvvdp")
    metric = pycvvdp.cvvdp(display_name=display, device=device, quiet=True)  # plain cvvdp: nothing downloaded

    def score(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        values = []
        for r, d in zip(ref, dist, strict=True):  # one image at a time: a score never depends on its batch
            test, reference = d.permute(1, 2, 0).contiguous(), r.permute(1, 2, 0).contiguous()
            jod, _ = metric.predict(test, reference, dim_order="HWC")
            values.append(float(jod))
        return torch.tensor(values, dtype=torch.float64)

    return score


def build(key: str, device: torch.device) -> ScoreFn:
    """Score function of the canonical name ``key``; MetricUnavailable (one line) when its package is missing."""
    base, option = split_name(key)
    if base == "ssimulacra2":
        return _ssimulacra2_fn(device)
    if base == "flip":
        return _flip_fn(device)
    return _cvvdp_fn(device, option or CVVDP_DEFAULT_DISPLAY)
