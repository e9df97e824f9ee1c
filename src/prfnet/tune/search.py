"""Metric-targeted encoding of one image: the fewest bits whose distance meets a target (bisection).

A codec's rate parameter (:class:`prfnet.synth.codecs.Codec`) is laid out as a **ladder** of settings ordered from
the fewest bits to the most: every integer quality (JPEG 1..95, WebP/AVIF 0..100, JPEG XL 1..99), or for JPEG 2000
100 compression ratios spaced evenly on log(ratio) from 400 down to 2. :func:`tune_image` bisects the ladder for
the lowest rung whose decoded image *meets* the target (distance <= target for a distance such as PRFNet or FLIP,
score >= target for a similarity such as PSNR or SSIMULACRA 2).

Monotonicity: bisection assumes that a higher rung is never further from the reference. It keeps the bracket
invariant "``low`` fails, ``high`` meets", so the chosen setting always meets the target; where the curve is not
monotone a cheaper rung below ``low`` may meet it too, which bisection cannot see. Every (setting, bytes, distance)
tried is kept: the choice is the tried encode with the fewest bytes that meets the target (bytes are not strictly
monotone in quality either), and ``violations`` counts neighbouring tried rungs where the higher one is further
from the reference (or smaller), so a report can say where the search's assumption failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..synth.codecs import Codec, bits_per_pixel, encode, get_codec

Array = np.ndarray
#: rungs of the JPEG 2000 ladder (compression ratios from ``high`` to ``low``, evenly spaced on a log scale)
RATIO_RUNGS = 100
#: default bound on encodes per image and codec (a 99-rung ladder needs 2 + 7)
MAX_ENCODES = 12
_SETTING = re.compile(r"^(?P<codec>[a-z0-9_]+):(?P<prefix>[qr]?)(?P<value>[0-9]+(?:\.[0-9]+)?)$")


def ladder(codec: Codec) -> list[float | int]:
    """The settings of ``codec`` from the fewest bits to the most (see the module docstring)."""
    if codec.integer:
        values = list(range(int(codec.low), int(codec.high) + 1))
    else:
        ratios = np.exp(np.linspace(math.log(codec.high), math.log(codec.low), RATIO_RUNGS))
        values = [float(f"{r:.4g}") for r in ratios]
    return values if codec.more_bits_when_higher else sorted(values, reverse=True)


def setting_label(codec: Codec, setting: float) -> str:
    """``q85`` for a quality, ``r20`` for a JPEG 2000 compression ratio."""
    return f"{'r' if codec.param == 'ratio' else 'q'}{setting:g}"


@dataclass(frozen=True)
class Encoding:
    """A codec at one setting: ``jpeg420:q85`` (quality 85), ``jpeg2000:r20`` (compression ratio 20)."""

    codec: str
    setting: float

    @property
    def label(self) -> str:
        return f"{self.codec}:{setting_label(get_codec(self.codec), self.setting)}"


def parse_encoding(text: str) -> Encoding:
    """``"jpeg420:q85"`` -> :class:`Encoding`; :class:`ConfigError` (one line) for a malformed text, an unknown or
    unavailable codec (:class:`~prfnet.synth.codecs.CodecUnavailable`) or a setting outside the codec's range."""
    match = _SETTING.match(str(text).strip().lower())
    if match is None:
        raise ConfigError(f"--match takes CODEC:SETTING such as jpeg420:q85 or jpeg2000:r20, got {text!r}")
    codec = get_codec(match["codec"])
    value = float(match["value"])
    prefix = match["prefix"] or ("r" if codec.param == "ratio" else "q")
    if (prefix == "r") != (codec.param == "ratio"):
        raise ConfigError(f"{codec.name} sets its rate by {codec.param}: write {codec.name}:"
                          f"{'r' if codec.param == 'ratio' else 'q'}{value:g}")  # fmt: skip
    if not codec.low <= value <= codec.high or (codec.integer and value != int(value)):
        kind = "an integer" if codec.integer else "a number"
        span = f"[{codec.low:g}, {codec.high:g}]"
        raise ConfigError(f"{codec.name} {codec.param} must be {kind} in {span}, got {value:g}")
    return Encoding(codec.name, int(value) if codec.integer else value)


@dataclass(frozen=True)
class Trial:
    """One encode of the search: its setting, file size, bpp and distance (the metric's raw value)."""

    setting: float
    bytes: int
    bpp: float
    distance: float


@dataclass
class TuneResult:
    """The search's outcome for one image and codec.

    ``status``: ``"met"`` (the chosen encode meets the target) or ``"unreachable"`` (not even the codec's highest
    setting meets it: the chosen encode is then the closest one tried). ``converged``: the bracket closed on two
    neighbouring rungs (False when ``max_encodes`` ran out first: the choice meets the target but may not be the
    cheapest). ``data``/``decoded``: the chosen file's bytes and its decoded uint8 (H, W, 3).
    """

    codec: str
    target: float
    status: str
    chosen: Trial
    trials: list[Trial] = field(default_factory=list)
    converged: bool = True
    violations: int = 0
    data: bytes = field(default=b"", repr=False)
    decoded: Array | None = field(default=None, repr=False)

    @property
    def encodes(self) -> int:
        return len(self.trials)


def meets(distance: float, target: float, higher_better: bool) -> bool:
    """Whether ``distance`` is at least as close as ``target`` (>= for a similarity, <= for a distance)."""
    return distance >= target if higher_better else distance <= target


def count_violations(trials: list[Trial], higher_better: bool, ladder_values: list) -> int:
    """Neighbouring tried rungs (in ladder order) where the higher one is further from the reference or smaller."""
    order = {value: i for i, value in enumerate(ladder_values)}
    seen = sorted(trials, key=lambda t: order[t.setting])
    worse = 0
    for lower, higher in zip(seen, seen[1:], strict=False):
        further = higher.distance < lower.distance if higher_better else higher.distance > lower.distance
        worse += int(further or higher.bytes < lower.bytes)
    return worse


def tune_image(
    image: Array,
    codec: str | Codec,
    distance: Callable[[Array], float],
    target: float,
    higher_better: bool,
    max_encodes: int = MAX_ENCODES,
) -> TuneResult:
    """The fewest-bytes setting of ``codec`` whose decoded ``image`` meets ``target`` in ``distance``.

    ``image``: uint8 (H, W, 3); ``distance(decoded)`` -> the metric's raw value against ``image`` (the caller keeps
    the reference's features); ``higher_better``: the metric's direction. Encodes the top rung first (is the target
    reachable at all?), then the bottom rung, then bisects; at most ``max_encodes`` (>= 2) encodes.
    """
    codec = get_codec(codec)
    if max_encodes < 2:
        raise ConfigError(f"max_encodes must be >= 2 (the two ends of the ladder), got {max_encodes}")
    if not math.isfinite(target):
        raise ConfigError(f"the target must be a finite number, got {target}")
    rungs = ladder(codec)
    trials: dict[int, Trial] = {}
    kept: dict[int, tuple[bytes, Array]] = {}

    def trial(index: int) -> Trial:
        if index not in trials:
            data, decoded = encode(image, codec, rungs[index])
            value = float(distance(decoded))
            trials[index] = Trial(rungs[index], len(data), bits_per_pixel(data, image.shape), value)
            kept[index] = (data, decoded)
        return trials[index]

    def ok(index: int) -> bool:
        return meets(trial(index).distance, target, higher_better)

    low, high = 0, len(rungs) - 1
    converged = True
    if not ok(high):
        status = "unreachable"
    else:
        status = "met"
        if ok(low):
            high = low
        while high - low > 1:
            if len(trials) >= max_encodes:
                converged = False
                break
            middle = (low + high) // 2
            if ok(middle):
                high = middle
            else:
                low = middle
    passing = [i for i, t in trials.items() if meets(t.distance, target, higher_better)]
    if passing:
        best = min(passing, key=lambda i: (trials[i].bytes, i))
    else:  # unreachable: the closest encode tried
        best = max(trials, key=lambda i: trials[i].distance if higher_better else -trials[i].distance)
    data, decoded = kept[best]
    ordered = [trials[i] for i in sorted(trials)]
    return TuneResult(
        codec.name, float(target), status, trials[best], ordered, converged,
        count_violations(ordered, higher_better, rungs), data, decoded,
    )  # fmt: skip


def encode_once(image: Array, encoding: Encoding, distance: Callable[[Array], float]) -> tuple[Trial, bytes]:
    """The :class:`Trial` of one fixed encoding (the ``--match`` encoding of an image) and its bitstream."""
    data, decoded = encode(image, encoding.codec, encoding.setting)
    return Trial(encoding.setting, len(data), bits_per_pixel(data, image.shape), float(distance(decoded))), data
