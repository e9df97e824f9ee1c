"""Triplets (prfnet.data.triplets): the vote fraction p_a checked, swapped, and splits by reference."""

from __future__ import annotations

import pytest

from prfnet.data import LabeledTriplet, split_by_reference
from prfnet.errors import DataError


def test_split_by_reference():
    items = [LabeledTriplet(f"r{i % 7}", f"a{i}", f"b{i}", 1.0) for i in range(40)]
    train, held = split_by_reference(items, 0.3, seed=5)
    assert len(train) + len(held) == len(items)
    assert not {t.ref for t in train} & {t.ref for t in held}
    assert len({t.ref for t in held}) == 2  # round(0.3 * 7)
    assert split_by_reference(items, 0.3, seed=5) == (train, held)
    assert train == [t for t in items if t in train]  # input order kept
    tiny_train, tiny_held = split_by_reference(items[:2], 0.01)
    assert len({t.ref for t in tiny_train}) == 1 and len({t.ref for t in tiny_held}) == 1
    assert split_by_reference(items, 0.0) == (items, [])


def test_labeled_triplet_validates_p_a():
    with pytest.raises(DataError, match="p_a"):
        LabeledTriplet("r", "a", "b", 1.5)
    swapped = LabeledTriplet("r", "a", "b", 0.25, votes=4).swapped()
    assert (swapped.a, swapped.b, swapped.p_a, swapped.label) == ("b", "a", 0.75, 1.0)
