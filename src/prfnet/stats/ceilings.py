"""Ceilings of the CLIC protocol: the official scorer's noise ceiling of any consistent predictor, and a judge's.

CLIC conventions: ``T = 0`` means A is closer to O, ``T = 1`` B; the official scorer keys a dict on
``"O,A,B"`` where the last row of a repeated key wins (``docs/evaluation.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Array = np.ndarray
Key = tuple[str, str, str]


def _oracle_rows(oracle_rows) -> list[tuple[str, str, str, int]]:
    """``(O, A, B, T)`` rows (T as 0/1) from 4-tuples or ``(Triplet, T)`` pairs (``ClicOracle.rows``)."""
    out = []
    for row in oracle_rows:
        if len(row) == 2:
            triplet, t = row
            o, a, b = triplet.names() if hasattr(triplet, "names") else triplet
        else:
            o, a, b, t = row
        if int(t) not in (0, 1):
            raise ValueError(f"T must be 0 or 1, got {t!r} in row {row!r}")
        out.append((str(o), str(a), str(b), int(t)))
    return out


def official_dict(oracle_rows) -> dict[Key, int]:
    """The official scorer's dict: ``(O, A, B) -> T`` where the last row of a repeated key wins."""
    return {(o, a, b): t for o, a, b, t in _oracle_rows(oracle_rows)}


def clic_noise_ceiling(oracle_rows) -> dict:
    """The best official-scorer accuracy of any deterministic predictor that answers both orientations of a
    triplet consistently (choosing one image of {A, B} per reference, so ``T(O,A,B) = 1 - T(O,B,A)``).

    Per unordered triplet {O, {A, B}}: when only one orientation is an oracle key, its last vote can always
    be matched. When both ``O,A,B`` and ``O,B,A`` are keys, their last votes either name the same image
    (``T1 != T2``: both matched) or **conflict** (``T1 == T2``: they name different images, and a
    consistent predictor matches exactly one of the two). So ``ceiling = (keys - conflicts) / keys``.

    Also returned: ``ceiling_with_ties`` for a predictor allowed to tie: the devkit submits a tie as
    ``T = 0`` in both orientations, which matches both keys of a conflict whose last votes are both 0 (and
    none of one whose votes are both 1); ``votes_ceiling``: the best fraction of individual rows
    (``accuracy_votes``) a consistent predictor can match, sum over triplets of max(votes for A, votes
    for B) / rows. Counts: ``n_keys``, ``n_triplets``, ``n_both_orientations``, ``n_conflicts``, ``n_rows``.
    """
    rows = _oracle_rows(oracle_rows)
    if not rows:
        raise ValueError("the oracle has no rows")
    official = official_dict(rows)
    votes: dict[tuple[str, frozenset], dict[str, int]] = {}
    for o, a, b, t in rows:
        closer = a if t == 0 else b
        tally = votes.setdefault((o, frozenset((a, b))), {})
        tally[closer] = tally.get(closer, 0) + 1
    conflicts = conflicts_at_0 = both = 0
    seen: set[Key] = set()
    for (o, a, b), t in official.items():
        counted = (o, b, a) in seen  # the pair was counted at its other orientation
        seen.add((o, a, b))
        if a == b or (o, b, a) not in official or counted:
            continue
        both += 1
        if official[(o, b, a)] == t:
            conflicts += 1
            conflicts_at_0 += t == 0
    n_keys = len(official)
    return {
        "ceiling": (n_keys - conflicts) / n_keys,
        "ceiling_with_ties": (n_keys - conflicts + conflicts_at_0) / n_keys,
        "votes_ceiling": sum(max(tally.values()) for tally in votes.values()) / len(rows),
        "n_keys": n_keys,
        "n_triplets": len(votes),
        "n_both_orientations": both,
        "n_conflicts": conflicts,
        "n_rows": len(rows),
    }


def clic_correct(oracle_rows, submission: Mapping[Key, int]) -> tuple[Array, list[str]]:
    """Per official key (oracle order): 1.0 where ``submission[(O, A, B)]`` equals the key's last vote, else 0.0;
    and each key's reference O (the group for :func:`accuracy_ci`). Their mean is the official accuracy."""
    official = official_dict(oracle_rows)
    missing = [k for k in official if k not in submission]
    if missing:
        raise KeyError(f"{len(missing)} oracle keys are not in the submission (first: {','.join(missing[0])})")
    correct = np.array([float(int(submission[k]) == t) for k, t in official.items()])
    return correct, [k[0] for k in official]


def judge_ceiling(oracle_rows, distance: Mapping[tuple[str, str], float] | Callable[[str, str], float]) -> dict:
    """Official-scorer accuracy of a distance-based predictor such as the hidden judge.

    ``distance``: ``(O, X) -> float`` (lower = closer), a mapping or a function. For each oracle key the
    predictor submits ``T = 1`` when d(O, A) > d(O, B), else ``T = 0`` (ties to 0, as the devkit).
    Returns ``{"accuracy", "n_keys", "ties", "accuracy_votes"}`` (``accuracy_votes``: fraction of rows matched).
    """
    rows = _oracle_rows(oracle_rows)
    dist = distance if callable(distance) else (lambda o, x: distance[(o, x)])
    keys = {(o, a, b) for o, a, b, _ in rows}
    d = {k: (dist(k[0], k[1]), dist(k[0], k[2])) for k in keys}
    submission = {k: int(da > db) for k, (da, db) in d.items()}
    correct, _ = clic_correct(rows, submission)
    return {
        "accuracy": float(correct.mean()),
        "n_keys": len(correct),
        "ties": int(sum(da == db for da, db in d.values())),
        "accuracy_votes": float(np.mean([submission[(o, a, b)] == t for o, a, b, t in rows])),
    }
