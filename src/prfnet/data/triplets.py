"""Triplet records shared by every reader, and the reference-disjoint train/held-out split.

Label convention: ``p_a`` is the fraction of judges who found A closer to the reference R, in [0, 1];
``label`` is the majority label (1.0: A closer, 0.0: B closer, 0.5: tie).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class Triplet:
    """A reference ``ref`` and two distorted versions ``a``, ``b`` (names/paths as written in the source file)."""

    ref: str
    a: str
    b: str

    def key(self) -> str:
        """``"ref,a,b"``: the key of the official CLIC scorer's dict, for messages and CSV rows. prfnet keys its
        own dicts on :meth:`names` (CLIC readers refuse names with commas, so the two are one-to-one there)."""
        return f"{self.ref},{self.a},{self.b}"

    def names(self) -> tuple[str, str, str]:
        """``(ref, a, b)``: the key of every prfnet dict of triplets (no joined string that names could alias)."""
        return (self.ref, self.a, self.b)


@dataclass(frozen=True)
class LabeledTriplet:
    """A triplet with a human judgement: ``p_a`` = fraction of ``votes`` judges who found A closer to ``ref``."""

    ref: str
    a: str
    b: str
    p_a: float
    votes: int = 1
    kind: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.p_a, int | float) and math.isfinite(self.p_a) and 0.0 <= self.p_a <= 1.0):
            raise DataError(f"triplet {self.ref},{self.a},{self.b}: p_a must be a number in [0, 1], got {self.p_a!r}")
        if self.votes < 1:
            raise DataError(f"triplet {self.ref},{self.a},{self.b}: votes must be >= 1, got {self.votes}")

    @property
    def label(self) -> float:
        """Majority label: 1.0 if ``p_a > 0.5`` (A closer), 0.0 if ``p_a < 0.5`` (B closer), 0.5 on a tie."""
        return majority_label(self.p_a)

    def triplet(self) -> Triplet:
        """The unlabelled :class:`Triplet` (same orientation)."""
        return Triplet(self.ref, self.a, self.b)

    def swapped(self) -> LabeledTriplet:
        """The same judgement with A and B exchanged (``p_a -> 1 - p_a``)."""
        return LabeledTriplet(self.ref, self.b, self.a, 1.0 - self.p_a, self.votes, self.kind)


def majority_label(p_a: float) -> float:
    """1.0 if ``p_a > 0.5``, 0.0 if ``p_a < 0.5``, 0.5 when exactly 0.5 (and NaN for an unlabelled item)."""
    if p_a > 0.5:
        return 1.0
    if p_a < 0.5:
        return 0.0
    return 0.5 if p_a == 0.5 else math.nan


T = TypeVar("T", LabeledTriplet, Triplet)


def split_by_reference(items: Sequence[T], holdout_fraction: float, seed: int = 0) -> tuple[list[T], list[T]]:
    """Split ``items`` into (train, heldout) lists so that no reference appears in both.

    ``round(holdout_fraction * n_refs)`` references are held out, chosen by a seeded shuffle of the sorted
    reference names (deterministic given ``seed``); with 0 < fraction < 1 and at least two references, each
    part gets at least one. Items keep their input order within each part.
    """
    if not 0.0 <= holdout_fraction <= 1.0:
        raise ConfigError(f"holdout_fraction must be in [0, 1], got {holdout_fraction}")
    refs = sorted({item.ref for item in items})
    n_held = round(holdout_fraction * len(refs))
    if 0.0 < holdout_fraction < 1.0 and len(refs) >= 2:
        n_held = min(max(n_held, 1), len(refs) - 1)
    order = np.random.default_rng(seed).permutation(len(refs))
    held_refs = {refs[i] for i in order[:n_held]}
    train = [item for item in items if item.ref not in held_refs]
    heldout = [item for item in items if item.ref in held_refs]
    return train, heldout
