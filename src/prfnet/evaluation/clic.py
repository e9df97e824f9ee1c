"""CLIC perceptual track (2AFC) evaluation with the official scorer's semantics.

Label convention (CLIC devkit): ``T = 0`` means A is closer to the reference O, ``T = 1`` means B.
A metric decides in its own direction (:func:`prfnet.baselines.prefers_a`); a tie (equal scores)
becomes ``T = 0``, as in the devkit's PSNR baseline (``T = 1`` only when PSNR(O, A) < PSNR(O, B)).

Keys: the official scorer keys its dicts on the string ``"O,A,B"``; here every dict is keyed on the tuple
``(O, A, B)`` (:meth:`prfnet.data.Triplet.names`), with the same semantics (the last row of a repeated key
wins, a swapped row is another key). The two agree because CLIC readers refuse image names with commas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..baselines import prefers_a
from ..data import read_clic_oracle, read_clic_triplets, write_clic_csv
from ..data.clic import read_kinds
from ..errors import DataError
from ..images import DEFAULT_MAX_PIXELS
from ..protocol import EVAL_OUTPUTS, ProtocolRun
from ..report.html import Report
from ..report.plots import TripletExample
from ..scoring.metrics import PRFNET, PRFNetMetric
from ..stats.intervals import clic_uncertainty
from ..store import DEFAULT_STORE, ScoreStore
from .pages import clic_report

log = logging.getLogger(__name__)

T_A_CLOSER, T_B_CLOSER = 0, 1
UNTAGGED = "untagged"


Key = tuple[str, str, str]


def swapped_key(key: Key) -> Key:
    """``(O, A, B)`` -> ``(O, B, A)`` (the same triplet with A and B exchanged)."""
    ref, a, b = key
    return (ref, b, a)


def _shown(key) -> str:
    return ",".join(key) if isinstance(key, tuple) else str(key)


def decisions(score_a: np.ndarray, score_b: np.ndarray, higher_better: bool) -> np.ndarray:
    """CLIC labels T (int array): 0 where the metric finds A closer or the scores tie, 1 where B is closer."""
    pref = prefers_a(torch.as_tensor(score_a), torch.as_tensor(score_b), higher_better)
    return np.where(np.asarray(pref.cpu(), dtype=float) >= 0.5, T_A_CLOSER, T_B_CLOSER)


def missing_keys(submission: Mapping[Key, int] | set[Key], official: Mapping[Key, int]) -> list[Key]:
    """Oracle keys (``(O, A, B)``) that a submission lacks, in oracle order."""
    return [k for k in official if k not in submission]


def check_covered(submission: Mapping[Key, int] | set[Key], official: Mapping[Key, int], source: str) -> None:
    """:class:`DataError` unless every oracle key is in the submission (the official scorer fails too)."""
    if not official:
        raise DataError(f"{source}: the oracle has no rows")
    lacking = missing_keys(submission, official)
    if lacking:
        raise DataError(
            f"{source}: {len(lacking)} of {len(official)} oracle triplets are not in the submission "
            f"(first: {_shown(lacking[0])!r}); the triplet CSV must list every oracle triplet in the same A/B order"
        )


def official_accuracy(submission: Mapping[Key, int], official: Mapping[Key, int], source: str = "the oracle") -> float:
    """Accuracy as the CLIC scorer computes it: matches / number of oracle keys.

    ``official``: oracle dict keyed ``(O, A, B)`` where the last row of a repeated key wins
    (:attr:`ClicOracle.official`); ``submission``: the same for the predictions (any hashable keys work, as
    long as both dicts use the same kind). Every oracle key must be in the submission, else a :class:`DataError`.
    """
    check_covered(submission, official, source)
    return sum(int(submission[k] == t) for k, t in official.items()) / len(official)


def vote_accuracy(submission: Mapping[Key, int], rows: Sequence[tuple]) -> float:
    """Fraction of individual oracle rows (human judgments) the submission (keyed ``(O, A, B)``) agrees with."""
    return float(np.mean([submission[t.names()] == label for t, label in rows])) if rows else float("nan")


def majority_accuracy(decision_t: Sequence[int], labels: Sequence[float]) -> tuple[float, int]:
    """Accuracy against per-triplet majority labels (1.0: A closer, 0.0: B, 0.5: tie), ties excluded.

    ``decision_t``: the metric's T per triplet (same orientation as the labels). Returns (accuracy,
    number of triplets counted); NaN when every triplet is a tie.
    """
    t, label = np.asarray(decision_t), np.asarray(labels, dtype=float)
    decided = label != 0.5
    if not decided.any():
        return float("nan"), 0
    agree = (t[decided] == T_A_CLOSER) == (label[decided] == 1.0)
    return float(agree.mean()), int(decided.sum())


def key_kind(key: Key, kinds: Mapping[Key, str]) -> str:
    """The kind of an oracle key, looked up as ``(O, A, B)`` or ``(O, B, A)``; ``"untagged"`` without one."""
    return kinds.get(key) or kinds.get(swapped_key(key)) or UNTAGGED


def accuracy_by_kind(
    submission: Mapping[Key, int], official: Mapping[Key, int], kinds: Mapping[Key, str]
) -> dict[str, float]:
    """Official accuracy restricted to the oracle keys of each kind (:func:`key_kind`)."""
    groups: dict[str, list[bool]] = {}
    for key, t in official.items():
        groups.setdefault(key_kind(key, kinds), []).append(submission[key] == t)
    return {kind: float(np.mean(hits)) for kind, hits in sorted(groups.items())}


def write_submission(path: str | Path, triplets: Sequence, decision_t: Sequence[int]) -> Path:
    """Official 4-column CSV ``O,A,B,T`` (one row per triplet, CSV order), written atomically."""
    write_clic_csv(path, [(t, int(d)) for t, d in zip(triplets, decision_t, strict=True)])
    return Path(path)


def score_submission(submission_csv: str | Path, oracle_csv: str | Path) -> float:
    """Official accuracy of an existing submission file against an oracle file (both ``O,A,B,T``)."""
    submission = read_clic_oracle(submission_csv).official
    return official_accuracy(submission, read_clic_oracle(oracle_csv).official, str(oracle_csv))


def _resolve(root: Path, name: str) -> str:
    return str(root / name)


def evaluate_clic(
    csv: str | Path,
    root: str | Path | None,
    oracle: str | Path | None = None,
    metrics: Sequence = ("all",),
    model=None,
    kinds: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    batch_size: int = 8,
    report_path: str | Path | None = None,
    report_title: str | None = None,
    extend_report: Callable[[Report], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    *,
    store: ScoreStore | str | Path | None = DEFAULT_STORE,
    workers: int = 0,
) -> dict:
    """Evaluate metrics on CLIC-format 2AFC triplets.

    Args:
        csv: headerless ``O,A,B`` triplets (``validation.csv``); every one gets a decision.
        root: folder the image names resolve against (``None``: the CSV's folder).
        oracle: headerless ``O,A,B,T`` human labels; enables the accuracies.
        metrics: names (``"prfnet"``, baseline names, ``"all"``, ``"baselines"``) or metric objects.
        model: the PRFNet for ``"prfnet"``, or a function returning it, called only if needed
            (default: :func:`prfnet.api.load_model`, i.e. ``$PRFNET_CHECKPOINT``).
        kinds: ``O,A,B,kind`` file (synthetic data) for ``accuracy_by_kind``.
        out_dir: if given, writes ``submission_<metric>.csv``, ``results.json`` and ``report.html`` as one set with
            ``manifest.json`` (:mod:`prfnet.outputs`); checked for writability before anything is read or scored
            (:class:`prfnet.protocol.ProtocolRun`).
        report_path, report_title: where the report goes (default ``out_dir/report.html``) and its title.
        extend_report: called with the report before it is written, to add sections (the demo's curves).
        max_pixels: the largest image decoded (:func:`prfnet.load_image`; ``None``: no limit).
        store: the score store (:func:`prfnet.store.resolve_store`): by default ``out_dir/scores.sqlite`` (none
            without ``out_dir``), ``None`` for none, or a :class:`~prfnet.store.ScoreStore` or its path. Scores
            stored for the same image contents and metric identity are read, not computed, and new ones are
            committed per chunk (:func:`prfnet.scoring.engine.score_pairs`).
        workers: ``DataLoader`` processes decoding the images (0: in this process).

    Returns ``{metric: {...}}``; an available metric has ``accuracy`` (official scorer),
    ``accuracy_majority`` (per unordered triplet, majority vote, ties excluded), ``accuracy_votes``
    (per oracle row), ``accuracy_by_kind`` and counts (``None`` where there is no oracle / kinds file), each
    accuracy with its reference-bootstrap interval ``<figure>_ci95`` and ``n_references``, the votes'
    ``noise_ceiling``, per baseline the ``paired_difference`` to PRFNet and for PRFNet ``brier``, ``ece`` and
    ``calibration`` (:mod:`prfnet.stats.intervals`); an unavailable one has ``available: False`` and
    ``reason``.
    """
    run = ProtocolRun(out_dir, EVAL_OUTPUTS, store)  # an unwritable out_dir fails now, not after the scoring
    csv = Path(csv)
    root = Path(root) if root is not None else csv.parent
    triplets = read_clic_triplets(csv)
    if not triplets:
        raise DataError(f"{csv}: no triplets")
    submission_keys = {t.names() for t in triplets}
    oracle_data = read_clic_oracle(oracle) if oracle is not None else None
    if oracle_data is not None:  # fail before any scoring
        check_covered(submission_keys, oracle_data.official, f"{oracle} (triplets from {csv})")
    kind_map = None
    if kinds is not None:
        kind_map = read_kinds(kinds)
        if oracle_data is None:
            log.warning("--kinds %s is ignored without an oracle (accuracy_by_kind needs labels)", kinds)

    labeled = oracle_data.triplets if oracle_data is not None else []
    pairs = [(_resolve(root, t.ref), _resolve(root, x)) for t in [*triplets, *labeled] for x in (t.a, t.b)]
    selection, scores = run.score(
        pairs, str(csv), metrics, model=model, device=device, batch_size=batch_size, progress=progress,
        max_pixels=max_pixels, workers=workers,
    )  # fmt: skip

    def pair_scores(metric_name: str, items: Sequence) -> tuple[np.ndarray, np.ndarray]:
        return tuple(
            scores.lookup(metric_name, [(_resolve(root, t.ref), _resolve(root, getattr(t, x))) for t in items])
            for x in ("a", "b")
        )

    decided: dict[str, np.ndarray] = {}
    submissions: dict[str, dict[Key, int]] = {}
    labeled_decisions: dict[str, np.ndarray] = {}

    def entry(metric) -> dict:
        score_a, score_b = pair_scores(metric.name, triplets)
        t_csv = decided[metric.name] = decisions(score_a, score_b, metric.higher_better)
        submission = submissions[metric.name] = {t.names(): int(d) for t, d in zip(triplets, t_csv, strict=True)}
        t_labeled = decisions(*pair_scores(metric.name, labeled), metric.higher_better) if labeled else None
        labeled_decisions[metric.name] = t_labeled
        path = run.final(f"submission_{metric.name}.csv")
        return {
            "n_triplets": len(triplets),
            "ties_predicted": int(np.sum(score_a == score_b)),
            "submission": str(path) if path is not None else None,
            **_oracle_fields(submission, oracle_data, t_labeled, kind_map, str(oracle)),
        }

    def intervals(results: dict) -> None:
        prob = prfnet_probabilities(*pair_scores(PRFNET, labeled)) if PRFNET in submissions and labeled else None
        key_kinds = None
        if kind_map is not None and oracle_data is not None:
            key_kinds = [key_kind(k, kind_map) for k in oracle_data.official]
        clic_uncertainty(results, oracle_data, submissions, labeled_decisions, key_kinds, prob)

    results = run.entries(selection, entry, intervals)
    if run.outputs is not None:
        model = next((m.model for m in selection.metrics if isinstance(m, PRFNetMetric)), None)
        report = _build_report(results, csv, oracle, triplets, labeled, pair_scores, root, model)
        if report_title:
            report.title = report_title
        if extend_report is not None:
            extend_report(report)

        def write_submissions(sink) -> None:
            for name, t_csv in decided.items():
                write_submission(sink.path(f"submission_{name}.csv"), triplets, t_csv)

        # staged, then moved into place with manifest.json last; report_path: the report goes outside the set
        run.publish(results, report if report_path is None else None, write_submissions)
        if report_path is not None:
            report.write(report_path)
    return results


def _oracle_fields(submission, oracle_data, t_labeled, kind_map, source: str) -> dict:
    """The accuracy fields of one metric's result (``None`` without an oracle / kinds file)."""
    fields = dict.fromkeys(
        ("accuracy", "n_keys", "accuracy_majority", "n_majority", "accuracy_votes", "accuracy_by_kind")
    )
    if oracle_data is None:
        return fields
    acc_majority, n_majority = majority_accuracy(t_labeled, [t.label for t in oracle_data.triplets])
    fields.update(
        accuracy=official_accuracy(submission, oracle_data.official, source),
        n_keys=len(oracle_data.official),
        accuracy_majority=acc_majority,
        n_majority=n_majority,
        accuracy_votes=vote_accuracy(submission, oracle_data.rows),
    )
    if kind_map is not None:
        fields["accuracy_by_kind"] = accuracy_by_kind(submission, oracle_data.official, kind_map)
    return fields


def _build_report(results, csv, oracle, triplets, labeled, pair_scores, root, model=None) -> Report:
    """report.html: table, bars, PRFNet reliability (with an oracle), example triplets and, with ``model`` (the
    evaluated PRFNet), its per-pixel maps of those triplets."""
    available = [name for name, r in results.items() if r["available"]]
    shown = PRFNET if PRFNET in available else (available[0] if available else None)
    reliability = None
    if shown == PRFNET and labeled:
        reliability = (prfnet_probabilities(*pair_scores(PRFNET, labeled)), np.array([t.p_a for t in labeled]))
    examples = []
    if shown is not None:
        score_a, score_b = pair_scores(shown, labeled or triplets)
        examples = _examples(shown, results[shown]["higher_better"], labeled or triplets, score_a, score_b, root)
    return clic_report(
        results,
        csv=csv,
        oracle=oracle,
        shown=shown,
        reliability=reliability,
        examples=examples,
        model=model if shown == PRFNET else None,
    )


def _examples(metric_name, higher_better, items, score_a, score_b, root, per_outcome: int = 3) -> list:
    """With labels: the first ``per_outcome`` triplets the metric gets right and the first it gets wrong
    (ties excluded); without labels: the first ``per_outcome`` triplets."""
    labeled = bool(items) and hasattr(items[0], "label")
    prob = prfnet_probabilities(score_a, score_b) if metric_name == PRFNET else None
    t_pred = decisions(score_a, score_b, higher_better)
    chosen: dict[str, list] = {"right": [], "wrong": [], "unlabeled": []}
    for i, item in enumerate(items):
        decision = "A" if t_pred[i] == T_A_CLOSER else "B"
        truth = ({1.0: "A", 0.0: "B"}.get(item.label, "tie")) if labeled else ""
        outcome = "unlabeled" if not labeled else "right" if truth == decision else "wrong" if truth != "tie" else ""
        if outcome and len(chosen[outcome]) < per_outcome:
            example = TripletExample(
                *(_resolve(root, name) for name in (item.ref, item.a, item.b)),
                decision=decision,
                truth=truth,
                prob_a=float(prob[i]) if prob is not None else None,
                human_p_a=float(item.p_a) if labeled else None,
            )
            chosen[outcome].append(example)
    return chosen["right"] + chosen["wrong"] + chosen["unlabeled"]


def prfnet_probabilities(score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
    """PRFNet's P(A closer) per triplet from its two distances (float64 array in (0, 1))."""
    return PRFNetMetric.probability_a(torch.as_tensor(score_a), torch.as_tensor(score_b)).numpy()
