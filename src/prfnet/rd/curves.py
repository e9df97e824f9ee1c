"""Rate-distortion curves: validation of the items before scoring, per-codec arrays, CompressAI results JSON.

Every codec's rate points are ordered by their mean bpp over the images (ascending); a curve is one value per
(image, rate point), and the RD curve of a codec is the mean over images at each rate point (``docs/rd.md``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, ImageReadError
from ..images import image_size
from .inputs import RDItem

#: Metric name -> key of a CompressAI results JSON. Any other metric: its name with "_" -> "-".
COMPRESSAI_KEYS = {"psnr": "psnr-rgb", "ms_ssim_rgb": "ms-ssim-rgb", "ms_ssim": "ms-ssim-y"}
MS_SSIM_DB_KEY = "ms-ssim-rgb-db"
MIN_BD_RATE_POINTS = 4
NO_BD_RATE_OPTION = "--no-bd-rate"
_MAX_PROBLEMS = 30  # lines of a DataError of check_rd_items


def result_key(metric: str) -> str:
    """The CompressAI results key of a metric: ``psnr`` -> ``psnr-rgb``, ``ms_ssim_rgb`` -> ``ms-ssim-rgb``,
    ``ms_ssim`` (BT.601 luma) -> ``ms-ssim-y``, any other name with "_" -> "-" (``prfnet``, ``lpips``)."""
    return COMPRESSAI_KEYS.get(metric, metric.replace("_", "-"))


def _rate_order(items: Iterable[RDItem]) -> dict[str, list[tuple[str, float]]]:
    """codec (first-appearance order) -> [(rate point, mean bpp over its items)] ordered by mean bpp (stable)."""
    sums: dict[str, dict[str, list[float]]] = {}
    for item in items:
        sums.setdefault(item.codec, {}).setdefault(item.rate_point, []).append(item.bpp)
    return {
        codec: sorted(((label, float(np.mean(b))) for label, b in rates.items()), key=lambda pair: pair[1])
        for codec, rates in sums.items()
    }


# --------------------------------------------------------------------------------------------------- validation


def _file_problems(items: Sequence[RDItem]) -> list[str]:
    """Missing files and decoded images whose size differs from their original's (headers only)."""
    sizes: dict[Path, tuple[int, int] | str] = {}

    def size(path: Path) -> tuple[int, int] | str:
        if path not in sizes:
            try:
                sizes[path] = image_size(path)
            except ImageReadError as exc:
                sizes[path] = str(exc)
        return sizes[path]

    problems = []
    for it in items:
        where = f"codec {it.codec}, rate point {it.rate_point}"
        both = []
        for what, path in (("decoded", it.decoded), ("original", it.original)):
            got = size(path)
            if isinstance(got, str):
                problems.append(f"{where}: {what} {path}: {got.removeprefix(f'{path}: ')}")
            both.append(got)
        decoded, original = both
        if not isinstance(decoded, str) and not isinstance(original, str) and decoded != original:
            problems.append(
                f"{where}: {it.decoded} is {decoded[0]}x{decoded[1]} but its original {it.original} is "
                f"{original[0]}x{original[1]}"
            )
    return problems


def _coverage_problems(items: Sequence[RDItem]) -> tuple[list[str], set[str]]:
    """A rate point lacking an image its codec has elsewhere; codecs that do not cover the same images. Also the
    codecs with a rate point lacking an image (their mean bpp are not comparable, so their order is not checked)."""
    by_codec: dict[str, dict[str, dict[str, RDItem]]] = {}
    originals: dict[str, Path] = {}
    for it in items:
        by_codec.setdefault(it.codec, {}).setdefault(it.rate_point, {})[it.image] = it
        originals.setdefault(it.image, it.original)
    problems, incomplete = [], set()
    images_of = {codec: set().union(*rates.values()) for codec, rates in by_codec.items()}
    for codec, rates in by_codec.items():
        for label, present in rates.items():
            for image in sorted(images_of[codec] - set(present)):
                incomplete.add(codec)
                others = ", ".join(r for r, p in rates.items() if image in p)
                problems.append(
                    f"codec {codec}, rate point {label}: no decoded image of {image!r} (original "
                    f"{originals[image]}), which the codec has at rate point(s) {others}"
                )
    every = set().union(*images_of.values())
    for codec, images in images_of.items():
        missing = sorted(every - images)
        if missing:
            shown = ", ".join(f"{m!r} ({originals[m]})" for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            problems.append(
                f"codec {codec}, every rate point: lacks {len(missing)} image(s) other codecs have: {shown}; "
                "BD-rate compares averages over the same images, so every codec needs every image"
            )
    return problems, incomplete


def _positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def _bpp_problems(items: Sequence[RDItem], min_rate_points: int | None, skip: set[str]) -> list[str]:
    problems = []
    by_key: dict[tuple[str, str, str], RDItem] = {}
    for it in items:
        key = (it.codec, it.rate_point, it.image)
        if key in by_key:
            problems.append(f"codec {it.codec}, rate point {it.rate_point}: image {it.image!r} twice: {it.decoded}")
        by_key[key] = it
        if not _positive(it.bpp):
            problems.append(f"codec {it.codec}, rate point {it.rate_point}: bpp {it.bpp!r} of {it.decoded} is not > 0")
    if problems:
        return problems
    images_of: dict[str, set[str]] = {}
    for it in items:
        images_of.setdefault(it.codec, set()).add(it.image)
    for codec, order in _rate_order(items).items():
        for (low, low_mean), (high, high_mean) in zip(order, order[1:], strict=False):
            if codec in skip:
                break
            if low_mean == high_mean:
                problems.append(f"codec {codec}, rate points {low} and {high}: the same mean bpp {low_mean:.6g}")
                continue
            for image in sorted(images_of[codec]):
                a, b = by_key.get((codec, low, image)), by_key.get((codec, high, image))
                if a is not None and b is not None and not b.bpp > a.bpp:
                    problems.append(
                        f"codec {codec}, rate point {high}: {b.decoded} has {b.bpp:.6g} bpp, not more than "
                        f"{a.bpp:.6g} at rate point {low} ({a.decoded}), though rate point {high} has the higher "
                        f"mean bpp ({high_mean:.6g} > {low_mean:.6g}): every image's bpp must rise with the rate point"
                    )
        if min_rate_points is not None and len(order) < min_rate_points:
            labels = ", ".join(label for label, _ in order)
            problems.append(
                f"codec {codec}, rate points {labels}: only {len(order)}; BD-rate needs at least {min_rate_points} "
                f"rate points per codec (skip BD-rate with {NO_BD_RATE_OPTION} to plot fewer)"
            )
    return problems


def check_rd_items(items: Sequence[RDItem], *, anchor: str | None, min_rate_points: int | None = 4) -> None:
    """Check the items before any scoring (file existence and header sizes; nothing is decoded).

    One :class:`DataError` listing every problem, one line each naming the codec, rate point and file: a missing
    decoded or original file; a decoded image whose size differs from its original; a rate point lacking an image
    its codec has at other rate points, or codecs that do not cover the same images; bpp that does not rise
    strictly with the rate point for every image (rate points ordered by mean bpp; two with equal means are an
    error); fewer than ``min_rate_points`` rate points in a codec (``None``: no minimum, BD-rate skipped);
    ``anchor`` not among the codecs. :class:`ConfigError` for no items at all.
    """
    if not items:
        raise ConfigError("no RD items to check: the CSV or the decoded-images folder gave no decoded image")
    codecs = list(dict.fromkeys(it.codec for it in items))
    problems = []
    if anchor is not None and anchor not in codecs:
        problems.append(f"anchor {anchor!r} is not one of the codecs: {', '.join(codecs)}")
    coverage, incomplete = _coverage_problems(items)
    problems += coverage + _bpp_problems(items, min_rate_points, incomplete) + _file_problems(items)
    if len(problems) == 1:
        raise DataError(problems[0])
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise DataError(f"{len(problems)} problems in the RD inputs:\n  " + "\n  ".join(shown) + more)


# ------------------------------------------------------------------------------------------------------- curves


@dataclass
class RDCurves:
    """Per codec, one row per image (``images``, sorted) and one column per rate point (ordered by mean bpp).

    ``bpp[codec]`` and ``scores[metric][codec]`` are (n_images, n_rates) float64, NaN where an image was not
    decoded or not scored; ``higher_better[metric]``: the direction of the raw score (``False`` for distances).
    """

    codecs: list[str]
    images: list[str]
    rate_points: dict[str, list[str]]
    bpp: dict[str, np.ndarray]
    scores: dict[str, dict[str, np.ndarray]]
    higher_better: dict[str, bool]

    @property
    def metrics(self) -> list[str]:
        return list(self.scores)

    def mean_bpp(self, codec: str) -> np.ndarray:
        """(n_rates,) mean bpp over images per rate point (NaN where an image is missing)."""
        return self.bpp[codec].mean(axis=0)

    def mean_scores(self, metric: str, codec: str) -> np.ndarray:
        """(n_rates,) mean raw score over images per rate point (NaN where any image has no score)."""
        return self.scores[metric][codec].mean(axis=0)


def build_curves(
    items: Sequence[RDItem], scores: dict[str, Sequence[float]], higher_better: dict[str, bool]
) -> RDCurves:
    """Arrange per-item scores (``scores[metric][i]`` belongs to ``items[i]``) into :class:`RDCurves`."""
    if not items:
        raise ConfigError("no RD items: nothing to build curves of")
    for metric, values in scores.items():
        if len(values) != len(items):
            raise ValueError(f"scores[{metric!r}] has {len(values)} values for {len(items)} items")
        if metric not in higher_better:
            raise ValueError(f"higher_better has no direction for metric {metric!r}")
    images = sorted({it.image for it in items})
    row = {image: i for i, image in enumerate(images)}
    order = _rate_order(items)
    rate_points = {codec: [label for label, _ in rates] for codec, rates in order.items()}
    column = {codec: {label: j for j, label in enumerate(labels)} for codec, labels in rate_points.items()}
    shape = {codec: (len(images), len(labels)) for codec, labels in rate_points.items()}
    bpp = {codec: np.full(shape[codec], np.nan) for codec in rate_points}
    arrays = {m: {codec: np.full(shape[codec], np.nan) for codec in rate_points} for m in scores}
    seen = set()
    for i, it in enumerate(items):
        key = (it.codec, it.image, it.rate_point)
        if key in seen:
            raise DataError(f"codec {it.codec}, rate point {it.rate_point}: image {it.image!r} twice: {it.decoded}")
        seen.add(key)
        r, c = row[it.image], column[it.codec][it.rate_point]
        bpp[it.codec][r, c] = it.bpp
        for metric, values in scores.items():
            value = values[i]
            arrays[metric][it.codec][r, c] = np.nan if value is None else float(value)
    return RDCurves(list(rate_points), images, rate_points, bpp, arrays, {m: bool(higher_better[m]) for m in scores})


def _json_list(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def compressai_results(curves: RDCurves, codec: str, description: str = "", ms_ssim_db: bool = False) -> dict:
    """One codec's curves as a CompressAI results JSON: ``{"name", "description", "results": {"bpp": [...],
    key: [...]}}``, one value per rate point (ascending bpp) = the mean over images; ``None`` (JSON null) where
    an image has no score. Keys from :func:`result_key`; with ``ms_ssim_db`` and ``ms_ssim_rgb`` scored, also
    ``"ms-ssim-rgb-db"`` = -10 log10(1 - mean MS-SSIM), as CompressAI's plot script draws it."""
    if codec not in curves.bpp:
        raise ConfigError(f"codec {codec!r} is not one of the codecs: {', '.join(curves.codecs)}")
    results: dict[str, list[float | None]] = {"bpp": _json_list(curves.mean_bpp(codec))}
    for metric in curves.scores:
        mean = curves.mean_scores(metric, codec)
        results[result_key(metric)] = _json_list(mean)
        if ms_ssim_db and metric == "ms_ssim_rgb":
            with np.errstate(divide="ignore", invalid="ignore"):
                results[MS_SSIM_DB_KEY] = _json_list(-10.0 * np.log10(1.0 - mean))
    return {"name": codec, "description": description, "results": results}
