"""Triplets of the simulated codec set (:mod:`prfnet.synth.codec_set`): which codec pairs become triplets, their
simulated votes as CLIC rows, and what the hidden judge and PSNR score on them.

The input is the list of :class:`Encoded` results of each reference (one per codec and target bpp). A triplet
is (O, X, Y, kind): reference O and two different codecs X, Y at the same target, of kind ``psnr_close``
(|PSNR(X) - PSNR(Y)| < :data:`CLOSE_DB` dB) or ``psnr_apart``. Rows are CLIC's: validation (O, A, B), kinds
(O, A, B, kind) and oracle (O, A, B, T) with T = 0 when A is closer to O, T = 1 when B is; votes are drawn from
:func:`prfnet.synth.judge.simulate_votes`, :data:`VOTES_MIN`..:data:`VOTES_MAX` per triplet. Every draw comes
from the generator passed in or seeded here, in a fixed order, so the same input gives the same rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..stats.bootstrap import paired_difference
from ..stats.ceilings import clic_correct, clic_noise_ceiling, judge_ceiling, official_dict
from . import judge as jd
from .common import orientation_flags

KINDS = ("psnr_close", "psnr_apart")
CLOSE_DB = 1.0  # |PSNR(A) - PSNR(B)| below this: kind psnr_close, else psnr_apart
NEAR_DB = 2.0  # pairs within this are preferred when choosing triplets (psnr_close first, then 1..2 dB)
EASY_FRACTION = 0.25  # share of each reference's triplets drawn from pairs >= NEAR_DB apart
VOTES_MIN, VOTES_MAX = 3, 15
SWAPPED_FRACTION = 1 / 3  # triplets with some of their votes written as (O, B, A, 1 - T)


class Encoded(NamedTuple):
    """One codec encode of one reference: ``name`` of the PNG written, None when the target was not reached."""

    codec: str
    target_bpp: float
    quality: float
    bpp: float
    psnr: float  # dB on RGB, rounded to 4 decimals (the value written to files.csv)
    judge_distance: float  # rounded to 6 decimals (the value written to files.csv and used for the votes)
    name: str | None
    reason: str = ""


def pair_kind(x: Encoded, y: Encoded) -> str:
    """``psnr_close`` when the PSNRs of ``x`` and ``y`` are within :data:`CLOSE_DB` dB, else ``psnr_apart``."""
    return "psnr_close" if abs(x.psnr - y.psnr) < CLOSE_DB else "psnr_apart"


def choose_pairs(encodes: list[Encoded], n: int, rng: np.random.Generator) -> list[tuple[Encoded, Encoded]]:
    """Up to ``n`` pairs of two different codecs at the same target: ``n - round(EASY_FRACTION * n)`` from
    the pairs within NEAR_DB (those within CLOSE_DB first), the rest from pairs further apart; a short pool
    is filled from the others. Random order within each pool."""
    usable = [e for e in encodes if e.name is not None]
    pools: dict[str, list[tuple[int, int]]] = {"close": [], "near": [], "apart": []}
    for i, x in enumerate(usable):
        for j in range(i + 1, len(usable)):
            y = usable[j]
            if x.target_bpp != y.target_bpp or x.codec == y.codec:
                continue
            gap = abs(x.psnr - y.psnr)
            pools["close" if gap < CLOSE_DB else "near" if gap < NEAR_DB else "apart"].append((i, j))
    for name in pools:
        pools[name] = [pools[name][k] for k in rng.permutation(len(pools[name]))]
    easy = round(EASY_FRACTION * n)
    chosen = (pools["close"] + pools["near"])[: n - easy]
    chosen += pools["apart"][: n - len(chosen)]
    rest = [p for p in pools["close"] + pools["near"] + pools["apart"] if p not in chosen]
    return [(usable[i], usable[j]) for i, j in chosen + rest[: n - len(chosen)]]


def clic_rows(
    triplets: list[tuple[str, str, str, str]],
    distance: dict[tuple[str, str], float],
    seed: int,
    slope: float,
    lapse: float,
):
    """(O, X, Y, kind) -> validation rows (O,A,B), kinds rows (O,A,B,kind), shuffled oracle rows (O,A,B,T).

    Per kind, half of the triplets have the judge's closer image as A. Each triplet gets 3..15 votes from
    :func:`judge.simulate_votes`; a SWAPPED_FRACTION of the triplets get 1..n-1 of their n votes written as
    (O, B, A, 1 - T), and validation/kinds then list both orientations.
    """
    rng = np.random.default_rng([seed, 8])
    judge_closer_first, swapped = orientation_flags([t[3] for t in triplets], KINDS, SWAPPED_FRACTION, rng)

    validation, kinds_rows, oracle = [], [], []
    for i, (o, x, y, kind) in enumerate(triplets):
        x_first = (distance[(o, x)] <= distance[(o, y)]) == judge_closer_first[i]
        a, b = (x, y) if x_first else (y, x)
        votes = jd.simulate_votes(distance[(o, a)], distance[(o, b)], rng, slope, lapse, VOTES_MIN, VOTES_MAX)
        flip = np.zeros(len(votes), dtype=bool)
        if swapped[i]:
            flip[rng.permutation(len(votes))[: int(rng.integers(1, len(votes)))]] = True
        keys = [(o, a, b)] + ([(o, b, a)] if swapped[i] else [])
        validation += keys
        kinds_rows += [(*k, kind) for k in keys]
        oracle += [(o, b, a, 1 - t) if f else (o, a, b, t) for t, f in zip(votes, flip, strict=True)]
    return validation, kinds_rows, [oracle[i] for i in rng.permutation(len(oracle))]


def accuracies(rows: list[tuple[str, str, str, int]], distance: dict, psnr: dict, slope: float, lapse: float) -> dict:
    """Noise ceiling, hidden judge and PSNR under the official scorer on ``rows`` (see prfnet.stats.ceilings),
    judge minus PSNR on the same keys with a 95% interval resampling references, and the expected accuracies:
    the mean over keys of the probability that the key's (last) vote names the image the predictor names."""
    judge = judge_ceiling(rows, distance)
    by_psnr = judge_ceiling(rows, lambda o, x: -psnr[(o, x)])
    keys = official_dict(rows)
    judge_correct, groups = clic_correct(
        rows, {(o, a, b): int(distance[(o, a)] > distance[(o, b)]) for o, a, b in keys}
    )
    p_a = {(o, a, b): jd.psychometric(distance[(o, a)], distance[(o, b)], slope, lapse) for o, a, b in keys}
    psnr_correct, _ = clic_correct(rows, {(o, a, b): int(psnr[(o, a)] < psnr[(o, b)]) for o, a, b in keys})
    return {
        "n_keys": judge["n_keys"],
        "n_rows": len(rows),
        "noise_ceiling": clic_noise_ceiling(rows),
        "judge": judge,
        "psnr": by_psnr,
        "judge_minus_psnr": paired_difference(judge_correct, psnr_correct, groups, n_boot=2000, seed=0),
        "expected_accuracy": {
            "judge": float(
                np.mean([p if distance[(o, a)] <= distance[(o, b)] else 1 - p for (o, a, b), p in p_a.items()])
            ),
            "psnr": float(np.mean([p if psnr[(o, a)] >= psnr[(o, b)] else 1 - p for (o, a, b), p in p_a.items()])),
        },
    }
