"""BD-rate of every codec against an anchor, per metric, with a bootstrap interval over images.

The estimate is ``bjontegaard.bd_rate`` (BSD-3; Akima interpolation of log10(bpp) as a function of quality by
default) on the **mean curves**: mean bpp and mean score over the images at each rate point, as CompressAI-style
tables do. bjontegaard assumes quality rises with rate, so a lower-is-better score (a distance: prfnet, lpips,
dists) is negated first; the sign convention is the usual one: negative = fewer bits for the same quality.

The 95 % interval is a percentile bootstrap over images: each resample draws image indices with replacement (the
same indices for every codec and metric, since the images are shared), recomputes every mean curve and the
BD-rate. For ``method="akima"`` the resamples use :func:`akima_bd_rate`, a vectorised copy of bjontegaard's
computation (the same Akima slopes as ``scipy.interpolate.Akima1DInterpolator`` and the exact integral of the
cubic pieces; tests check it against bjontegaard); ``pchip`` and ``cubic`` call bjontegaard once per resample.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError
from ..stats.bootstrap import group_resample_counts, percentile_interval
from ..stats.intervals import ci95
from .curves import RDCurves, result_key

METHODS = ("akima", "pchip", "cubic")
LEVEL = 0.95
#: bjontegaard's own threshold: below this fraction of overlap of the quality ranges it warns.
MIN_OVERLAP = 0.75
_STRICT = ("akima", "pchip")  # interpolators that need strictly monotone quality (cubic fits a polynomial)


def _unit(metric: str) -> str:
    return " dB" if metric == "psnr" else ""


def _span(values: np.ndarray, metric: str) -> str:
    fmt = ".1f" if metric == "psnr" else ".4g"
    return f"{np.min(values):{fmt}}..{np.max(values):{fmt}}"


# ----------------------------------------------------------------------------------------- vectorised Akima


def _akima_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(B, n) slopes at the knots of ``scipy.interpolate.Akima1DInterpolator(x[b], y[b])`` (linear for n == 2)."""
    dx = np.diff(x, axis=1)
    mk = np.diff(y, axis=1) / dx
    n = x.shape[1]
    if n == 2:
        return np.repeat(mk, 2, axis=1)
    m = np.empty((x.shape[0], n + 3))
    m[:, 2:-2] = mk
    m[:, 1] = 2.0 * m[:, 2] - m[:, 3]
    m[:, 0] = 2.0 * m[:, 1] - m[:, 2]
    m[:, -2] = 2.0 * m[:, -3] - m[:, -4]
    m[:, -1] = 2.0 * m[:, -2] - m[:, -3]
    t = 0.5 * (m[:, 3:] + m[:, :-3])
    dm = np.abs(np.diff(m, axis=1))
    f1, f2 = dm[:, 2:], dm[:, :-2]
    f12 = f1 + f2
    defined = f12 > 1e-9 * f12.max(axis=1, keepdims=True)  # scipy's break_mult, per curve
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = m[:, 1 : n + 1] + (f2 / f12) * (m[:, 2 : n + 2] - m[:, 1 : n + 1])
    return np.where(defined, weighted, t)


def _hermite_integral(x: np.ndarray, y: np.ndarray, t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(B,) integral over [lo, hi] of the cubic Hermite spline through (x, y) with slopes t (rows of (B, n))."""
    h = np.diff(x, axis=1)
    mk = np.diff(y, axis=1) / h
    t0, t1 = t[:, :-1], t[:, 1:]
    c1, c2, c3 = t0, (3.0 * mk - 2.0 * t0 - t1) / h, (t0 + t1 - 2.0 * mk) / h**2
    left, right = x[:, :-1], x[:, 1:]
    sa = np.clip(lo[:, None], left, right) - left
    sb = np.clip(hi[:, None], left, right) - left

    def antiderivative(s):
        return s * (y[:, :-1] + s * (c1 / 2.0 + s * (c2 / 3.0 + s * c3 / 4.0)))

    return (antiderivative(sb) - antiderivative(sa)).sum(axis=1)


def akima_bd_rate(rate_anchor, quality_anchor, rate_test, quality_test) -> np.ndarray:
    """BD-rate in percent of many curve pairs at once, as ``bjontegaard.bd_rate(..., method="akima")``.

    Arguments (B, n_anchor) and (B, n_test), rates ascending along each row; quality must rise strictly along a
    row (bjontegaard's interpolation needs it) and the quality ranges of a pair must overlap, else that entry is
    NaN (where bjontegaard raises or returns NaN)."""
    ra, qa, rt, qt = (
        np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in (rate_anchor, quality_anchor, rate_test, quality_test)
    )
    lo = np.maximum(qa.min(axis=1), qt.min(axis=1))
    hi = np.minimum(qa.max(axis=1), qt.max(axis=1))
    valid = (np.diff(qa, axis=1) > 0).all(axis=1) & (np.diff(qt, axis=1) > 0).all(axis=1) & (hi > lo)
    valid &= np.isfinite(ra).all(axis=1) & np.isfinite(rt).all(axis=1) & (ra > 0).all(axis=1) & (rt > 0).all(axis=1)
    out = np.full(len(valid), np.nan)
    if not valid.any():
        return out
    qa, qt, lo, hi = qa[valid], qt[valid], lo[valid], hi[valid]
    la, lt = np.log10(ra[valid]), np.log10(rt[valid])
    with np.errstate(all="ignore"):
        area_a = _hermite_integral(qa, la, _akima_slopes(qa, la), lo, hi)
        area_t = _hermite_integral(qt, lt, _akima_slopes(qt, lt), lo, hi)
        out[valid] = (10.0 ** ((area_t - area_a) / (hi - lo)) - 1.0) * 100.0
    return out


def bjontegaard_bd_rate(rate_anchor, quality_anchor, rate_test, quality_test, method: str) -> tuple[float, str]:
    """``bjontegaard.bd_rate`` (warnings silenced, any number of points) -> (percent or NaN, why NaN)."""
    import bjontegaard as bd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = bd.bd_rate(
                rate_anchor, quality_anchor, rate_test, quality_test, method=method,
                require_matching_points=False, min_overlap=0,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any failure of the third-party fit is one undefined entry
        return float("nan"), f"bjontegaard failed ({type(exc).__name__}: {exc or 'assertion'})"
    value = float(value)
    return value, "" if np.isfinite(value) else f"bjontegaard returned {value}"


def _replicates(method, rate_a, q_a, rate_t, q_t) -> np.ndarray:
    if method == "akima":
        return akima_bd_rate(rate_a, q_a, rate_t, q_t)
    return np.array([bjontegaard_bd_rate(*row, method)[0] for row in zip(rate_a, q_a, rate_t, q_t, strict=True)])


# ------------------------------------------------------------------------------------------------------ table


def _monotone_note(curves: RDCurves, metric: str, codec: str, quality: np.ndarray, method: str) -> str:
    """A note when the mean (oriented) quality of ``codec`` does not rise strictly with bpp, else ""."""
    steps = np.diff(quality)
    if (steps > 0).all():
        return ""
    j = int(np.argmax(steps <= 0))
    raw = curves.mean_scores(metric, codec)
    labels = curves.rate_points[codec]
    verb = "rise" if curves.higher_better[metric] else "fall"
    what = f"mean {result_key(metric)} of {codec} does not {verb} strictly with bpp"
    where = f"({raw[j + 1]:.4g} at {labels[j + 1]} after {raw[j]:.4g} at {labels[j]})"
    if method in _STRICT:
        return f"{what} {where}: bjontegaard's {method} interpolation needs that, so no BD-rate"
    return f"{what} {where}: BD-rate computed anyway by the {method} fit; read it with care"


def _pair(curves: RDCurves, metric: str, anchor: str, codec: str, method: str) -> tuple[float | None, list[str]]:
    """(BD-rate estimate or None, notes) of ``codec`` against ``anchor`` on the mean curves."""
    key, notes = result_key(metric), []
    sign = 1.0 if curves.higher_better[metric] else -1.0
    for c in (anchor, codec):
        missing = int(np.isnan(curves.scores[metric][c]).sum() + np.isnan(curves.bpp[c]).sum())
        if missing:
            return None, [f"{key} of {c}: {missing} missing value(s) (an image not decoded or not scored)"]
        if len(curves.rate_points[c]) < 2:
            return None, [f"{c} has {len(curves.rate_points[c])} rate point: BD-rate needs at least 2 (4 advised)"]
    qa, qt = sign * curves.mean_scores(metric, anchor), sign * curves.mean_scores(metric, codec)
    ra, rt = curves.mean_bpp(anchor), curves.mean_bpp(codec)
    raw_a, raw_t = curves.mean_scores(metric, anchor), curves.mean_scores(metric, codec)
    ranges = f"anchor {anchor} {key} {_span(raw_a, metric)}{_unit(metric)}, {codec} {_span(raw_t, metric)}"
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if hi <= lo:
        return None, [f"curves do not overlap: {ranges}"]
    overlap = (hi - lo) / (max(qa.max(), qt.max()) - min(qa.min(), qt.min()))
    if overlap < MIN_OVERLAP:
        notes.append(
            f"curves overlap over only {overlap:.0%} of their joint range ({ranges}): "
            "the BD-rate averages over that part only"
        )
    monotone = [n for n in (_monotone_note(curves, metric, c, q, method) for c, q in ((anchor, qa), (codec, qt))) if n]
    notes += monotone
    if monotone and method in _STRICT:
        return None, notes
    value, why = bjontegaard_bd_rate(ra, qa, rt, qt, method)
    return (value, notes) if np.isfinite(value) else (None, [*notes, why])


def bd_rate_table(
    curves: RDCurves, anchor: str, *, method: str = "akima", bootstrap: int = 1000, seed: int = 0
) -> dict:
    """BD-rate (%) of every codec against ``anchor`` for every metric, with 95 % bootstrap intervals over images.

    Returns (strict JSON: ``None`` for undefined values) ``{"anchor", "method", "bd_rate": {metric: {codec:
    percent}}, "bd_rate_ci95": {metric: {codec: [low, high]}}, "n_images", "bootstrap", "direction": {metric:
    "higher" | "lower"}, "notes": {metric: {codec: reason}}}``. The anchor's entry is 0.0. ``bootstrap=0``: no
    intervals. An entry is ``None``, with a note, where the curves do not overlap, a mean curve is not monotone
    (akima, pchip), an image lacks a score or bjontegaard fails; a partial overlap or failed resamples add notes.
    """
    if anchor not in curves.codecs:
        raise ConfigError(f"anchor {anchor!r} is not one of the codecs: {', '.join(curves.codecs)}")
    if method not in METHODS:
        raise ConfigError(f"BD-rate method must be one of {', '.join(METHODS)}, got {method!r}")
    if bootstrap < 0:
        raise ConfigError(f"bootstrap must be >= 0 resamples, got {bootstrap}")
    n_images = len(curves.images)
    weights = group_resample_counts(n_images, bootstrap, seed) / n_images if bootstrap else None
    boot_bpp = {c: weights @ curves.bpp[c] for c in curves.codecs} if bootstrap else {}
    table: dict = {"anchor": anchor, "method": method, "bd_rate": {}, "bd_rate_ci95": {}, "n_images": n_images}
    table |= {"bootstrap": bootstrap, "direction": {}, "notes": {}}
    for metric in curves.scores:
        sign = 1.0 if curves.higher_better[metric] else -1.0
        table["direction"][metric] = "higher" if curves.higher_better[metric] else "lower"
        values, intervals, notes = {}, {}, {}
        for codec in curves.codecs:
            if codec == anchor:
                values[codec], intervals[codec] = 0.0, ([0.0, 0.0] if bootstrap else None)
                continue
            estimate, codec_notes = _pair(curves, metric, anchor, codec, method)
            values[codec], intervals[codec] = estimate, None
            if estimate is not None and bootstrap:
                boot = _replicates(
                    method,
                    boot_bpp[anchor], weights @ (sign * curves.scores[metric][anchor]),
                    boot_bpp[codec], weights @ (sign * curves.scores[metric][codec]),
                )  # fmt: skip
                interval = percentile_interval(estimate, boot, LEVEL, n_images, n_images)
                intervals[codec] = ci95(interval)
                if interval.n_failed:
                    codec_notes.append(
                        f"{interval.n_failed} of {bootstrap} resamples gave no BD-rate (curves not monotone or not "
                        "overlapping there) and are left out of the interval"
                    )
            if codec_notes:
                notes[codec] = "; ".join(codec_notes)
        table["bd_rate"][metric], table["bd_rate_ci95"][metric], table["notes"][metric] = values, intervals, notes
    return table
