"""Baseline metrics by name, with the settings that reproduce the original implementations (docs/baselines.md).

Every metric is called as ``metric(ref, dist)`` with float RGB tensors (N, 3, H, W) in [0, 1] (a batch of 1
broadcasts) and returns (N,) float64 on the CPU. ``metric.higher_better`` says which way the raw score goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Protocol, runtime_checkable

import piq
import torch

from ..errors import ConfigError, InputError
from ..images import unit_float
from ..model import check_images
from . import codec_metrics, learned
from .compressai_msssim import MIN_SIDE as MS_SSIM_RGB_MIN_SIDE
from .compressai_msssim import ms_ssim_rgb
from .reference import MS_SSIM_MIN_SIDE, WINDOW_SIZE, ms_ssim_matlab, ssim_matlab

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ref, dist) -> (N,)


MetricUnavailable = learned.MetricUnavailable  # defined there: a failed first-use download raises it too


@runtime_checkable
class Metric(Protocol):
    """A full-reference metric: ``metric(ref, dist)`` -> (N,) scores; ``higher_better`` gives their direction."""

    name: str
    higher_better: bool

    def __call__(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class BaselineMetric:
    """One baseline. ``__call__(ref, dist)``: (N, 3, H, W) RGB in [0, 1] (or uint8 0..255) each, H, W >= ``min_side`` ->
    (N,) float64 on the CPU; ``higher_better`` True for similarities (PSNR, SSIM), False for distances.
    ``identity``: the score-store key when set (codec metrics: with their package's version), else None
    (:func:`prfnet.scoring.plan.metric_identity` derives it from ``about``)."""

    name: str
    higher_better: bool
    about: str  # what is computed, in one line
    score_fn: ScoreFn = field(repr=False)
    min_side: int = 32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    identity: str | None = None
    accepts_uint8: ClassVar[bool] = True  # 0..255 is divided by 255 on the metric's device

    def __call__(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        check_images(ref, dist, names=("ref", "dist"), min_side=1)  # this metric's own minimum is checked next
        height, width = dist.shape[-2:]
        if min(height, width) < self.min_side:
            raise InputError(
                f"{self.name} needs images of at least {self.min_side}x{self.min_side} pixels, got {height}x{width}"
            )
        batch = max(ref.shape[0], dist.shape[0])
        if batch == 0:
            return torch.empty(0, dtype=torch.float64)
        ref, dist = unit_float(ref), unit_float(dist)  # uint8: 0..255
        ref = ref.expand(batch, -1, -1, -1).to(self.device, torch.float32).clamp(0.0, 1.0)
        dist = dist.expand(batch, -1, -1, -1).to(self.device, torch.float32).clamp(0.0, 1.0)
        with torch.no_grad():
            scores = self.score_fn(ref, dist)
        return scores.detach().reshape(batch).to("cpu", torch.float64)


def _psnr(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    return piq.psnr(dist.double(), ref.double(), data_range=1.0, reduction="none")


def _piq(fn: Callable[..., torch.Tensor], **options) -> ScoreFn:
    """piq functional metric, called as ``fn(dist, ref)`` (piq's x = prediction, y = target/reference)."""

    def score(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        return fn(dist, ref, data_range=1.0, reduction="none", **options)

    return score


def _learned(name: str, device: torch.device) -> ScoreFn:
    module = learned.build_learned(name).to(device)

    def score(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        return module(dist, ref)

    return score


# name -> (higher_better, min_side, about, factory(device) -> score function)
_SPECS: dict[str, tuple[bool, int, str, Callable[[torch.device], ScoreFn] | None]] = {
    "psnr": (True, 1, "PSNR on RGB, 10 log10(1 / (MSE + 1e-8)) dB (piq.psnr), capped at 80 dB", lambda d: _psnr),
    "ssim": (True, WINDOW_SIZE, "SSIM of Wang's ssim.m on BT.601 luma (auto down-sampling)", lambda d: ssim_matlab),
    "ssim_gray": (
        True,
        WINDOW_SIZE,
        "SSIM of ssim.m on MATLAB rgb2gray luma rounded to 8 bits (auto down-sampling)",
        lambda d: partial(ssim_matlab, luma="gray8"),
    ),
    "ssim_nods": (
        True,
        WINDOW_SIZE,
        "SSIM of ssim.m on rgb2gray luma rounded to 8 bits, no down-sampling (published calibration values)",
        lambda d: partial(ssim_matlab, luma="gray8", downsample=False),
    ),
    "ms_ssim": (True, MS_SSIM_MIN_SIDE, "MS-SSIM of Wang's msssim.m on BT.601 luma", lambda d: ms_ssim_matlab),
    "ms_ssim_gray": (
        True,
        MS_SSIM_MIN_SIDE,
        "MS-SSIM of msssim.m on MATLAB rgb2gray luma rounded to 8 bits (published calibration values)",
        lambda d: partial(ms_ssim_matlab, luma="gray8"),
    ),
    "ms_ssim_rgb": (
        True,
        MS_SSIM_RGB_MIN_SIDE,
        "MS-SSIM per RGB channel (data range 1), averaged; matches CompressAI's ms-ssim-rgb (pytorch_msssim)",
        lambda d: ms_ssim_rgb,
    ),
    "fsim": (True, 32, "FSIM on luminance (piq.fsim, chromatic=False)", lambda d: _piq(piq.fsim, chromatic=False)),
    "fsimc": (True, 32, "FSIMc, with chromatic term (piq.fsim defaults)", lambda d: _piq(piq.fsim)),
    "vif": (True, 41, "VIFp: pixel-domain VIF (piq.vif_p), not the wavelet-domain VIF", lambda d: _piq(piq.vif_p)),
    "gmsd": (False, 32, "GMSD (piq.gmsd defaults)", lambda d: _piq(piq.gmsd)),
    "vsi": (True, 32, "VSI (piq.vsi defaults)", lambda d: _piq(piq.vsi)),
    "haarpsi": (True, 32, "HaarPSI (piq.haarpsi defaults)", lambda d: _piq(piq.haarpsi)),
    "mdsi": (False, 32, "MDSI (piq.mdsi defaults), a deviation: lower = closer", lambda d: _piq(piq.mdsi)),
    "lpips": (False, 32, "LPIPS v0.1, VGG16 (piq.LPIPS; torchmetrics' linear layers)", lambda d: _learned("lpips", d)),
    "dists": (False, 32, "DISTS (piq.DISTS; torchmetrics' alpha/beta weights)", lambda d: _learned("dists", d)),
    # codec-practice metrics from optional packages (codec_metrics.py); cvvdp also as "cvvdp:<display>"
    "ssimulacra2": (True, codec_metrics.SSIMULACRA2_MIN_SIDE, codec_metrics.about("ssimulacra2"), None),
    "cvvdp": (True, 2, "ColorVideoVDP in JOD, image mode (single frame), display model standard_4k", None),
    "flip": (False, 1, codec_metrics.about("flip"), None),
}

BASELINE_NAMES: tuple[str, ...] = tuple(_SPECS)
LEARNED_NAMES: tuple[str, ...] = ("lpips", "dists")
CODEC_NAMES: tuple[str, ...] = codec_metrics.CODEC_NAMES
#: other accepted names -> the metric they stand for (``get_metric("vifp").name == "vif"``)
ALIASES: dict[str, str] = {"vifp": "vif"}

#: name -> the original publication (authors, title, venue, year)
REFERENCES: dict[str, str] = {
    "psnr": "peak signal-to-noise ratio (classic; no single original paper)",
    "ssim": "Wang, Bovik, Sheikh, Simoncelli, Image quality assessment: from error visibility to structural "
    "similarity, IEEE TIP 2004",
    "ms_ssim": "Wang, Simoncelli, Bovik, Multiscale structural similarity for image quality assessment, Asilomar 2003",
    "fsim": "Zhang, Zhang, Mou, Zhang, FSIM: a feature similarity index for image quality assessment, IEEE TIP 2011",
    "vif": "Sheikh, Bovik, Image information and visual quality, IEEE TIP 2006 (VIFp: its pixel-domain variant)",
    "gmsd": "Xue, Zhang, Mou, Bovik, Gradient magnitude similarity deviation, IEEE TIP 2014",
    "vsi": "Zhang, Shen, Li, VSI: a visual saliency-induced index for perceptual image quality assessment, "
    "IEEE TIP 2014",
    "haarpsi": "Reisenhofer, Bosse, Kutyniok, Wiegand, A Haar wavelet-based perceptual similarity index, "
    "Signal Processing: Image Communication 2018",
    "mdsi": "Nafchi, Shahkolaei, Hedjam, Cheriet, Mean deviation similarity index, IEEE Access 2016",
    "lpips": "Zhang, Isola, Efros, Shechtman, Wang, The unreasonable effectiveness of deep features as a "
    "perceptual metric, CVPR 2018",
    "dists": "Ding, Ma, Wang, Simoncelli, Image quality assessment: unifying structure and texture similarity, "
    "IEEE TPAMI 2022",
    "ssimulacra2": "Sneyers, SSIMULACRA 2: Structural SIMilarity Unveiling Local And Compression Related Artifacts, "
    "Cloudinary / libjxl 2022 (version 2.1, 2023; github.com/cloudinary/ssimulacra2)",
    "cvvdp": "Mantiuk, Hanji, Ashraf, Asano, Chapiro, ColorVideoVDP: a visual difference predictor for image, video "
    "and display distortions, ACM TOG (SIGGRAPH) 2024",
    "flip": "Andersson, Nilsson, Akenine-Moller, Oskarsson, Astrom, Fairchild, FLIP: a difference evaluator for "
    "alternating images, HPG 2020",
}
for _variant, _original in (("ssim_gray", "ssim"), ("ssim_nods", "ssim"), ("ms_ssim_gray", "ms_ssim")):
    REFERENCES[_variant] = REFERENCES[_original]
REFERENCES["ms_ssim_rgb"] = REFERENCES["ms_ssim"] + " (per RGB channel, as CompressAI reports it)"
REFERENCES["fsimc"] = REFERENCES["fsim"] + " (FSIMc)"

#: name -> the range of the raw score, as text (direction: :attr:`BaselineMetric.higher_better`)
RANGES: dict[str, str] = {
    "psnr": "[0, 80] dB",
    "ssim": "[-1, 1]",
    "ssim_gray": "[-1, 1]",
    "ssim_nods": "[-1, 1]",
    "ms_ssim": "[0, 1]",
    "ms_ssim_gray": "[0, 1]",
    "ms_ssim_rgb": "[0, 1]",
    "fsim": "[0, 1]",
    "fsimc": "[0, 1]",
    "vif": "[0, inf), 1 = identical (> 1: contrast enhanced)",
    "gmsd": "[0, inf), 0 = identical",
    "vsi": "[0, 1]",
    "haarpsi": "[0, 1]",
    "mdsi": "[0, inf), 0 = identical",
    "lpips": "[0, inf), 0 = identical",
    "dists": "[0, 1], 0 = identical",
    "ssimulacra2": "(-inf, 100], 100 = identical",
    "cvvdp": "JOD, (-inf, 10], 10 = identical",
    "flip": "[0, 1], 0 = identical",
}

#: name -> the computing code and its licence (as the installed packages' metadata state it)
LICENCES: dict[str, str] = {
    "psnr": "piq (Apache-2.0)",
    "ssim": "prfnet (this project)",
    "ms_ssim": "prfnet (this project)",
    "ms_ssim_rgb": "prfnet (this project)",
    **{name: "piq (Apache-2.0)" for name in ("fsim", "fsimc", "vif", "gmsd", "vsi", "haarpsi", "mdsi")},
    "lpips": "piq (Apache-2.0); weights: torchvision VGG16 (BSD-3-Clause), torchmetrics LPIPS layers (Apache-2.0)",
    "dists": "piq (Apache-2.0); weights: torchvision VGG16 (BSD-3-Clause), torchmetrics DISTS weights (Apache-2.0)",
    "ssimulacra2": "ssimulacra2 package (BSD-3-Clause) + prfnet's port of libjxl's blur (libjxl: BSD-3-Clause)",
    "cvvdp": "cvvdp / pycvvdp (MIT)",
    "flip": "flip-evaluator, NVIDIA FLIP (BSD-3-Clause)",
}
for _variant, _original in (("ssim_gray", "ssim"), ("ssim_nods", "ssim"), ("ms_ssim_gray", "ms_ssim")):
    LICENCES[_variant] = LICENCES[_original]


def _resolve(name: str) -> tuple[str, str]:
    """(spec key, canonical name): ``"cvvdp:standard_fhd"`` -> ("cvvdp", "cvvdp:standard_fhd"); ConfigError for an
    unknown name or option."""
    text = str(name).strip()
    base, option = codec_metrics.split_name(text)
    key = base.lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _SPECS:
        raise ConfigError(f"unknown metric {name!r}; choose one of {', '.join(BASELINE_NAMES)}")
    if key in CODEC_NAMES:
        return key, codec_metrics.canonical(key, option)
    if option is not None:
        raise ConfigError(f"metric {key!r} takes no option (got {text!r})")
    return key, key


def _canonical(name: str) -> str:
    return _resolve(name)[1]


def canonical_metric_name(name: str) -> str:
    """The baseline's canonical name (``"MS-SSIM"`` -> ``"ms_ssim"``, ``"vifp"`` -> ``"vif"``, ``"cvvdp:standard_4k"``
    -> ``"cvvdp"``); :class:`ConfigError` (one line) for an unknown name or option. Loads and imports nothing."""
    return _canonical(name)


def _unavailable(key: str) -> str | None:
    if key in LEARNED_NAMES:
        return learned.unavailable_reason(key)
    return codec_metrics.unavailable_reason(key) if key in CODEC_NAMES else None


def available_metrics() -> dict[str, str | None]:
    """name -> None if the metric can run here, else the reason it cannot (checks files and installed packages;
    loads, imports and downloads nothing: LPIPS / DISTS are available while their VGG16 file can still be
    downloaded on first use)."""
    return {name: _unavailable(name) for name in BASELINE_NAMES}


def metric_info(name: str) -> dict[str, object]:
    """What ``prfnet metrics --list`` shows for ``name`` (aliases accepted); cheap (checks files only).

    Keys: ``name``, ``higher_better`` (bool), ``direction`` ("higher" or "lower" = closer), ``range`` (text),
    ``min_side`` (pixels), ``about``, ``reference``, ``licence`` (the computing code and its licence),
    ``available`` (bool), ``status`` (one line: "yes", "yes (downloads vgg16-397923af.pth on first use)" or why it
    cannot run here), ``aliases``. ``cvvdp:<display>`` gives that display model in ``about``.
    """
    key, canonical = _resolve(name)
    higher_better, min_side, about, _ = _SPECS[key]
    about = codec_metrics.about(canonical) if key in CODEC_NAMES else about
    reason = _unavailable(key)
    if reason is not None:
        status = reason
    elif key in LEARNED_NAMES and learned.needs_download(key):
        status = f"yes (downloads {learned.vgg16_file()} on first use)"
    else:
        status = "yes"
    return {
        "name": canonical,
        "higher_better": higher_better,
        "direction": "higher" if higher_better else "lower",
        "range": RANGES[key],
        "min_side": min_side,
        "about": about,
        "reference": REFERENCES[key],
        "licence": LICENCES[key],
        "available": reason is None,
        "status": status,
        "aliases": sorted(alias for alias, target in ALIASES.items() if target == key),
    }


def get_metric(name: str, device: str | torch.device = "cpu") -> BaselineMetric:
    """The baseline ``name`` (case-insensitive, '-' = '_') computed on ``device``.

    Raises ConfigError for an unknown name (or cvvdp display) and MetricUnavailable (with the reason, one line)
    when it cannot run here; LPIPS / DISTS download their VGG16 file here on first use (see
    :func:`prfnet.baselines.learned.download_vgg16`). ``cvvdp:<display>`` picks cvvdp's display model.
    """
    key, canonical = _resolve(name)
    if (reason := _unavailable(key)) is not None:
        raise MetricUnavailable(reason)  # cheap check first; a failed first-use download raises it too
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r} ({exc})") from None
    higher_better, min_side, about, factory = _SPECS[key]
    if key in CODEC_NAMES:
        fn = codec_metrics.build(canonical, device)
        about, identity = codec_metrics.about(canonical), codec_metrics.identity(canonical)
        return BaselineMetric(canonical, higher_better, about, fn, min_side, device, identity)
    return BaselineMetric(key, higher_better, about, factory(device), min_side, device)


def prefers_a(score_a: torch.Tensor, score_b: torch.Tensor, higher_better: bool) -> torch.Tensor:
    """2AFC decision from two score tensors (broadcastable): float64, 1.0 where A is judged closer to the
    reference, 0.0 where B is, 0.5 on a tie (equal scores, or a NaN on either side)."""
    a = torch.as_tensor(score_a, dtype=torch.float64)
    b = torch.as_tensor(score_b, dtype=torch.float64, device=a.device)
    a_wins = a > b if higher_better else a < b
    b_wins = b > a if higher_better else b < a
    half = torch.full(torch.broadcast_shapes(a.shape, b.shape), 0.5, dtype=torch.float64, device=a.device)
    return torch.where(a_wins, 1.0, torch.where(b_wins, 0.0, half))
