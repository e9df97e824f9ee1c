"""A hidden "judge" for simulated 2AFC studies, and simulated votes from it.

**A simulation, not a model of human vision.** :func:`judge_quality` is a hand-weighted sum of artifact
measures chosen so that (1) it follows the qualitative findings that perceptual studies of compressed
images report (blocking and blur are penalised more than their MSE suggests, errors hidden in texture
less, slow global luminance changes little, chroma less than luma), and (2) no baseline metric
(PSNR, SSIM, ...) computes it, so a learned metric has room to beat them and no metric is at ceiling
by construction. The weights and their reasons are in ``docs/synthetic.md`` ("A hidden judge").

Images: ``uint8`` arrays (H, W, 3), RGB, 0..255, both of one size (H, W >= 16). Distances: floats
>= 0, **lower = closer** to the reference, exactly 0 for identical images; a typical JPEG at
0.25-1 bpp lands around 0.5-3, and visible-but-mild differences around 0.1-0.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from ..errors import InputError

Array = np.ndarray

#: weight of each term of :func:`judge_terms` in :func:`judge_quality` (see docs/synthetic.md for the reasons)
WEIGHTS: Mapping[str, float] = {
    "masked": 1.0,  # band-pass luma error divided by the reference's local contrast (contrast masking)
    "blocking": 40.0,  # excess error-gradient steps on the 8x8 grid, in luma units
    "ringing": 12.0,  # high-frequency luma error within 2-4 px of strong reference edges
    "blur": 1.5,  # fraction of the reference's local detail energy lost
    "colour": 0.08,  # mean CIELAB chroma difference (delta a*b*), low-passed
    "lowfreq": 2.0,  # slow luma changes (sigma 4 px and wider), e.g. a global offset
}
MASKING_FLOOR = 0.03**2  # local contrast variance below which no masking happens (luma on [0, 1])
EDGE_THRESHOLD = 0.06  # |gradient| of the smoothed luma per pixel that counts as a strong edge
BLOCK = 8

#: default psychometric function of :func:`simulate_votes` (see docs/synthetic.md)
DEFAULT_SLOPE = 4.0
DEFAULT_LAPSE = 0.06


def _check_pair(ref: Array, dist: Array) -> tuple[Array, Array]:
    ref, dist = np.asarray(ref), np.asarray(dist)
    for name, img in (("ref", ref), ("dist", dist)):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 16:
            raise InputError(f"{name}: expected a uint8 (H, W, 3) image with H, W >= 16, got {img.dtype} {img.shape}")
    if ref.shape != dist.shape:
        raise InputError(f"ref {ref.shape} and dist {dist.shape} differ in size")
    return ref, dist


def _luma(img: Array) -> Array:
    return (img.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])


def _blur(x: Array, sigma: float) -> Array:
    return ndimage.gaussian_filter(x, sigma, mode="reflect")


def _chroma_ab(img: Array) -> Array:
    """CIELAB (a*, b*) of an sRGB uint8 image, float64 (H, W, 2)."""
    from skimage.color import rgb2lab

    return rgb2lab(img.astype(np.float64) / 255.0)[..., 1:]


def _block_excess(y_ref: Array, y_dist: Array, axis: int) -> float:
    """Mean change of the gradient across 8x8 block boundaries minus the mean change elsewhere (>= 0)."""
    change = np.abs(np.diff(y_dist, axis=axis) - np.diff(y_ref, axis=axis))
    on_grid = (np.arange(change.shape[axis]) + 1) % BLOCK == 0
    if not on_grid.any():
        return 0.0
    boundary = np.compress(on_grid, change, axis=axis).mean()
    inside = np.compress(~on_grid, change, axis=axis).mean()
    return max(0.0, float(boundary - inside))


def judge_terms(ref: Array, dist: Array) -> dict[str, float]:
    """The unweighted terms of :func:`judge_quality`, each >= 0 and exactly 0 for identical images.

    - ``masked``: sqrt(mean(E / (A + floor))), E the local (sigma 2) energy of the band-pass luma error
      (error minus its sigma-4 blur), A the local variance of the reference luma: contrast masking.
    - ``blocking``: mean over both directions of (mean |change of the luma gradient| across 8x8 block
      boundaries - the same off the boundaries), clipped at 0; luma units.
    - ``ringing``: RMS over the image of the high-frequency luma error (error minus its sigma-1 blur)
      inside a band 2-4 px from strong reference edges (luma units).
    - ``blur``: mean(max(0, sqrt(Er) - sqrt(Ed))) / mean(sqrt(Er)), Er / Ed the local (sigma 3) energy of
      the detail (image minus its sigma-1.5 blur) of the reference / distorted luma: in [0, 1].
    - ``colour``: mean CIELAB chroma difference sqrt(da*^2 + db*^2) after a sigma-1 blur (chroma acuity
      is lower than luma acuity), in delta-E units.
    - ``lowfreq``: RMS of the sigma-4 blurred luma error (slow changes, a global offset), luma units.
    """
    ref, dist = _check_pair(ref, dist)
    if np.array_equal(ref, dist):
        return dict.fromkeys(WEIGHTS, 0.0)
    y_ref, y_dist = _luma(ref), _luma(dist)
    err = y_dist - y_ref
    slow = _blur(err, 4.0)
    band = err - slow
    activity = _blur((y_ref - _blur(y_ref, 2.0)) ** 2, 2.0)
    masked = math.sqrt(float(np.mean(_blur(band**2, 2.0) / (activity + MASKING_FLOOR))))

    blocking = 0.5 * (_block_excess(y_ref, y_dist, 0) + _block_excess(y_ref, y_dist, 1))

    gy, gx = np.gradient(_blur(y_ref, 1.0))
    edges = np.hypot(gx, gy) > EDGE_THRESHOLD
    near = ndimage.binary_dilation(edges, iterations=4) & ~ndimage.binary_dilation(edges, iterations=1)
    high = err - _blur(err, 1.0)
    ringing = math.sqrt(float(np.mean(np.where(near, high**2, 0.0))))

    detail_ref = np.sqrt(_blur((y_ref - _blur(y_ref, 1.5)) ** 2, 3.0))
    detail_dist = np.sqrt(_blur((y_dist - _blur(y_dist, 1.5)) ** 2, 3.0))
    blur = float(np.mean(np.maximum(0.0, detail_ref - detail_dist)) / (np.mean(detail_ref) + 1e-3))

    d_ab = _chroma_ab(dist) - _chroma_ab(ref)
    d_ab = np.stack([_blur(d_ab[..., c], 1.0) for c in range(2)], axis=-1)
    colour = float(np.mean(np.hypot(d_ab[..., 0], d_ab[..., 1])))

    lowfreq = math.sqrt(float(np.mean(slow**2)))
    terms = {"masked": masked, "blocking": blocking, "ringing": ringing, "blur": blur}
    return {**terms, "colour": colour, "lowfreq": lowfreq}


def judge_quality(ref: Array, dist: Array) -> float:
    """The hidden judge's distance of ``dist`` from ``ref`` (uint8 (H, W, 3) each): float >= 0,
    lower = closer, 0.0 for identical images. ``sum(WEIGHTS[k] * judge_terms(ref, dist)[k])``."""
    terms = judge_terms(ref, dist)
    return float(sum(WEIGHTS[k] * v for k, v in terms.items()))


def psychometric(d_a: float, d_b: float, slope: float = DEFAULT_SLOPE, lapse: float = DEFAULT_LAPSE) -> float:
    """P(a vote says A is closer) = lapse / 2 + (1 - lapse) * sigmoid(slope * (d_b - d_a)).

    ``d_a``, ``d_b``: judge distances (lower = closer); ``slope`` > 0 per unit of distance; ``lapse`` in
    [0, 1): the share of votes cast at random (inattention), so P stays in [lapse / 2, 1 - lapse / 2].
    0.5 exactly when d_a == d_b.
    """
    if not slope > 0 or not 0 <= lapse < 1:
        raise InputError(f"need slope > 0 and 0 <= lapse < 1, got slope={slope}, lapse={lapse}")
    z = slope * (float(d_b) - float(d_a))
    sig = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return lapse / 2 + (1 - lapse) * sig


def simulate_votes(
    d_a: float,
    d_b: float,
    rng: np.random.Generator,
    slope: float = DEFAULT_SLOPE,
    lapse: float = DEFAULT_LAPSE,
    n_min: int = 3,
    n_max: int = 15,
) -> list[int]:
    """Simulated 2AFC votes on one triplet as CLIC labels: ``0`` = A closer, ``1`` = B closer.

    The number of votes is uniform on [``n_min``, ``n_max``] (both included); each vote is independently
    0 with probability :func:`psychometric` ``(d_a, d_b, slope, lapse)``. Deterministic given ``rng``'s state.
    """
    if not 1 <= n_min <= n_max:
        raise InputError(f"need 1 <= n_min <= n_max, got {n_min}, {n_max}")
    p_a = psychometric(d_a, d_b, slope, lapse)
    n = int(rng.integers(n_min, n_max + 1))
    return [0 if u < p_a else 1 for u in rng.random(n)]
