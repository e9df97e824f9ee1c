"""The catalog of ``prfnet view``: one output set of prfnet read into the viewer's document (:class:`ViewData`).

Which set a folder holds is read from its ``manifest.json`` (a ``kind`` entry, else the recorded command line, else
the files it lists, for runs made from Python): ``prfnet demo``, ``eval clic|bapps|mos|jnd``, ``rd`` or ``tune``.
The document (format ``prfnet-view``, version 1) is strict JSON; what a set does not hold is ``null`` and said in
its ``notes``. Conventions: A and B of a triplet as the run oriented them; ``p_a`` the fraction of judges who found A
closer (in [0, 1]); a metric's decision ``"A"``, ``"B"`` or ``"tie"`` in its own direction; ``prfnet_p`` PRFNet's
P(A closer) = sigmoid(d_B - d_A) from its distances (>= 0, lower = closer) in the run's score store.

Nothing is written and no image is decoded (sizes come from file headers); the triplet tables, the RD curves and the
MOS points come from the run's own files, the per-item scores from its score store where one was kept.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..store import STORE_NAME
from .curves import jnd_part, mos_part, rd_part
from .sources import (
    Command,
    Images,
    Inputs,
    OutputSetContext,
    StoreReader,
    metric_entries,
    read_json,
    read_labels,
    read_manifest,
    set_kind,
    started_in,
    vote_fractions,
)
from .tuned import tune_part

BAPPS_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class ViewData:
    """What the viewer serves of one output set.

    ``document``: the page's JSON document (strict JSON, see the module and the contract of issue 18); ``files``:
    image id (``"f0"``...) -> absolute resolved path of a file the document names, each under one of ``roots``;
    ``roots``: the resolved folders a served file must lie under (the set, its data folders, the folders its inputs
    name); ``model``: the checkpoint that computes score maps, or ``None`` (the document's ``maps`` says why)."""

    document: dict
    files: dict[str, Path] = field(default_factory=dict)
    roots: list[Path] = field(default_factory=list)
    model: Path | None = None


def build_view(out: str | Path) -> ViewData:
    """Read the output set in ``out`` into a :class:`ViewData` (reads files and the score store; writes nothing,
    decodes no image). :class:`InputError` (one line) for a folder that does not exist, is not a complete prfnet
    output set, or holds a kind of set the viewer does not know."""
    paused = gc.isenabled()
    gc.disable()  # hundreds of thousands of small rows: the cyclic collector would scan the heap again and again
    try:
        return _build(Path(os.path.abspath(Path(out).expanduser())))
    finally:
        if paused:
            gc.enable()


def _build(out: Path) -> ViewData:
    manifest = read_manifest(out)
    kind = set_kind(out, manifest)
    ctx = OutputSetContext(out, manifest, Command(manifest.get("command")), kind, Images([out]))
    builder: Callable[[OutputSetContext], dict] = {
        "demo": _demo,
        "eval clic": _clic,
        "eval bapps": _bapps,
        "eval mos": _mos,
        "eval jnd": _jnd,
        "rd": _rd,
        "tune": _tune,
    }[kind]
    part = builder(ctx)
    model, how = _model(ctx)
    document = {
        "format": "prfnet-view",
        "version": 1,
        "kind": part.pop("view"),
        "title": part.pop("title"),
        "source": {
            "out": str(out.resolve()),
            "command": manifest.get("command"),
            "run_id": manifest.get("run_id"),
            "created_utc": manifest.get("created_utc"),
            "set": kind,
        },
        "maps": {"available": model is not None, "how": how},
        **part,
        "images": ctx.images.document(),
        "notes": ctx.notes,
    }
    return ViewData(document, dict(ctx.images.files), list(ctx.images.roots), model)


def _model(ctx: OutputSetContext) -> tuple[Path | None, str]:
    """The checkpoint that computes PRFNet's score maps for this set, and one line saying how maps are made."""
    if ctx.kind == "demo":
        path = ctx.out / "model.safetensors"
        if path.is_file():
            return path.resolve(), f"computed on demand with {path} (the demo's trained model)"
        return None, f"no score maps: the demo's model {path} is missing"
    if ctx.command.flag("--random-init"):
        return None, "no score maps: the run scored a randomly initialised PRFNet (--random-init), not a checkpoint"
    given = ctx.command.option("-c", "--checkpoint")
    if given is None:
        return None, "no score maps: the command names no checkpoint (-c), so which model the run used is not known"
    path = ctx.inputs.path(given) if ctx.inputs is not None else None
    if path is None or not path.is_file():
        return None, f"no score maps: the run's checkpoint {given} is not found"
    return path.resolve(), f"computed on demand with {path} (the run's checkpoint)"


def _store(ctx: OutputSetContext) -> StoreReader | None:
    """The score store of an eval or demo run: ``--store``, none with ``--no-store``, else ``OUT/scores.sqlite``."""
    if ctx.command.flag("--no-store"):
        ctx.notes.append("the run kept no score store (--no-store): per-triplet scores are not known")
        return None
    given = ctx.command.option("--store")
    path = (ctx.inputs.path(given) if ctx.inputs is not None else None) if given else ctx.out / STORE_NAME
    store = StoreReader.open(path)
    if store is None:
        ctx.notes.append(f"no score store {given or path} to read: per-triplet scores are not known")
    return store


def _eval_results(ctx: OutputSetContext, path: Path) -> tuple[dict, list[str]]:
    """(results.json of an evaluation, the names of its available metrics in the run's order)."""
    results = read_json(path, "results")
    names = [n for n, e in results.items() if isinstance(e, dict) and e.get("available")]
    for name, entry in results.items():
        if isinstance(entry, dict) and entry.get("available") is False:
            ctx.notes.append(f"{name} was not scored: {entry.get('reason', 'unavailable')}")
    return results, names


def _demo(ctx: OutputSetContext) -> dict:
    data = ctx.out / "data"
    ctx.images.add_root(data)
    results, names = _eval_results(ctx, ctx.out / "eval" / "results.json")
    ctx.inputs = Inputs(ctx.out, None)
    part = _triplets(
        ctx, results, names, ctx.out / "eval", data / "images", data / "test_oracle.csv", data / "test_kinds.csv"
    )
    part["title"] = f"prfnet demo: {len(part['triplets'])} held-out triplets (simulated votes, not human judgments)"
    return part


def _clic(ctx: OutputSetContext) -> dict:
    results, names = _eval_results(ctx, ctx.out / "results.json")
    recorded = next((results[n].get("submission") for n in names if results[n].get("submission")), None)
    cwd = started_in(recorded, ctx.out / f"submission_{names[0]}.csv") if names else None
    ctx.inputs = Inputs(ctx.out, cwd or started_in(_out_option(ctx, "prfnet-eval/clic"), ctx.out))
    arg = {name: ctx.command.option(f"--{name}") for name in ("root", "oracle", "kinds", "csv")}
    root = ctx.inputs.path(arg["root"])
    if root is None:
        why = f"its image folder {arg['root']} is not found" if arg["root"] else "the run did not record its images"
        ctx.notes.append(f"images not shown: {why}")
    ctx.images.add_root(root)
    paths = {k: ctx.inputs.path(arg[k]) for k in ("oracle", "kinds")}
    for k in ("oracle", "kinds"):
        if arg[k] and paths[k] is None:
            ctx.notes.append(f"the --{k} file {arg[k]} is not found")
    part = _triplets(ctx, results, names, ctx.out, root, paths["oracle"], paths["kinds"])
    source = f" of {Path(arg['csv']).name}" if arg["csv"] else ""
    part["title"] = f"prfnet eval clic: {len(part['triplets'])} triplets{source}"
    return part


def _out_option(ctx: OutputSetContext, default: str) -> str:
    """The output folder as the command line gave it (``default`` when it gave none)."""
    return ctx.command.option("--out", "-o", "--out-dir") or default


#: a decision by its code: 1 A closer, -1 B closer, 0 a tie
DECISIONS = np.array(["tie", "A", "B"], dtype=object)


def _codes(a: np.ndarray, b: np.ndarray, higher_better: bool) -> np.ndarray:
    """Per pair of scores (A's, B's, in the metric's own direction): 1 where A is closer, -1 where B is, 0 on a tie
    (equal scores, or a NaN on either side)."""
    a_wins, b_wins = (a > b, b > a) if higher_better else (a < b, b < a)
    return a_wins.astype(np.int8) - b_wins.astype(np.int8)


def _probabilities(d_a: np.ndarray, d_b: np.ndarray) -> list[float | None]:
    """PRFNet's P(A closer) = sigmoid(d_B - d_A) in (0, 1) per triplet (``None`` for a NaN distance)."""
    x = d_b - d_a
    e = np.exp(-np.abs(x))
    p = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return [None if math.isnan(v) else v for v in p.tolist()]


def _stored_decisions(store, names, pairs, results, n: int, reproduces) -> tuple[dict[str, list[str]], list | None]:
    """Decisions ("A"/"B"/"tie" per triplet) of each metric in ``names`` whose stored scores of ``pairs`` (the n
    (R, A) pairs, then the n (R, B) pairs) pass ``reproduces(name, higher_better)(scores)`` (they are the run's), and
    PRFNet's probabilities when its scores are among them; closes ``store``."""
    decisions, prob = {}, None
    for name in names if pairs is not None else []:
        hb = bool(results[name]["higher_better"])
        found = store.find(name, pairs, reproduces(name, hb))
        if found is not None:
            values = found[0]
            decisions[name] = DECISIONS[_codes(values[:n], values[n:], hb)].tolist()
            if name == "prfnet":
                prob = _probabilities(values[:n], values[n:])
    store.close()
    return decisions, prob


def _majority(p_a: float | None) -> str | None:
    return None if p_a is None else "A" if p_a > 0.5 else "B" if p_a < 0.5 else "tie"


def _triplets(ctx, results, names, sub_dir: Path, root: Path | None, oracle: Path | None, kinds: Path | None) -> dict:
    """The ``triplets`` part of a CLIC evaluation (or the demo's): one row per row of the submissions (the
    ``--csv`` order), decisions from ``submission_<metric>.csv`` (T = 0: A), ties and PRFNet's probability from the
    score store where it holds the run's scores (checked against the submissions), votes from the oracle."""
    names = [n for n in names if (sub_dir / f"submission_{n}.csv").is_file()]
    if not names:
        raise InputError(f"{sub_dir}: no submission_<metric>.csv of a scored metric: no triplets to show")
    submitted = {n: read_labels(sub_dir / f"submission_{n}.csv") for n in names}
    keys = [row[:3] for row in submitted[names[0]]]
    for name in names[1:]:
        if [row[:3] for row in submitted[name]] != keys:
            raise InputError(f"{sub_dir / f'submission_{name}.csv'}: not the triplets of submission_{names[0]}.csv")
    base = os.fspath(root) if root is not None else None
    ids: dict[str, str] = {}  # in order of first use: ids are stable from one build to the next
    for name in (n for key in keys for n in key if n not in ids):
        ids[name] = ctx.images.id(os.path.join(base, name) if base else None, name, "the run's image folder is unknown")
    decisions = {n: ["A" if row[3] == "0" else "B" for row in submitted[n]] for n in names}
    stored, prob = {}, None
    store = _store(ctx) if base else None
    if store is not None:
        path = {name: os.path.join(base, name) for name in ids}
        pairs = store.pairs([(path[key[0]], path[key[side]]) for side in (1, 2) for key in keys])
        n = len(keys)

        def reproduces(name, hb):  # the submission's choices of B, exactly
            b_chosen = np.array([row[3] == "1" for row in submitted[name]])
            return lambda v: bool(((_codes(v[:n], v[n:], hb) == -1) == b_chosen).all())

        stored, prob = _stored_decisions(store, names, pairs, results, n, reproduces)
    decisions.update(stored)
    plain = [n for n in names if n not in stored]
    if plain:
        ctx.notes.append(
            f"decisions of {', '.join(plain)} from the submissions, where a tie (equal scores) is written as T = 0, so "
            "it shows as A (the score store does not hold the run's scores of these metrics)"
        )
    if "prfnet" in names and prob is None:
        ctx.notes.append("prfnet_p is null: PRFNet's distances of this run are not in a score store it can read")
    votes = vote_fractions(read_labels(oracle)) if oracle is not None else None
    if votes is None:
        ctx.notes.append("p_a, votes and majority are null: the run had no oracle (human votes) to read")
    kind_of = {tuple(row[:3]): row[3] for row in read_labels(kinds, ())} if kinds is not None else {}
    rows = []
    for i, (o, a, b) in enumerate(keys):
        p_a = count = None
        hit = votes.get((o, frozenset((a, b)))) if votes is not None else None
        if hit is not None:
            first, hits, count = hit
            p_a = hits / count if first == a else 1.0 - hits / count
        rows.append(
            {
                "id": i, "ref": ids[o], "a": ids[a], "b": ids[b], "group": o,
                "kind": kind_of.get((o, a, b)) or kind_of.get((o, b, a)),
                "p_a": p_a, "votes": count, "majority": _majority(p_a),
                "decisions": {n: decisions[n][i] for n in names},
                "prfnet_p": prob[i] if prob is not None else None,
            }
        )  # fmt: skip
    return {"view": "triplets", "metrics": metric_entries(names, results), "triplets": rows}


def _bapps_subset(folder: Path) -> list[tuple[str, str, str, float]]:
    """(ref, p0, p1 as resolved paths, p_a = 1 - judge) of a BAPPS subset folder, paired by file stem."""
    found = {}
    for part in ("ref", "p0", "p1", "judge"):
        suffixes = {".npy"} if part == "judge" else BAPPS_SUFFIXES
        try:
            files = [p for p in (folder / part).iterdir() if p.suffix.lower() in suffixes]
        except OSError as exc:
            raise InputError(f"{folder / part}: cannot list the BAPPS folder ({exc.strerror or exc})") from None
        found[part] = {p.stem: p for p in files}
        if set(found[part]) != set(found["ref"]):
            raise InputError(f"{folder}: ref/ and {part}/ do not hold the same names (the set changed since the run)")
    items = []
    for stem in sorted(found["ref"]):
        try:
            judge = float(np.load(found["judge"][stem], allow_pickle=False).reshape(-1)[0])
        except (OSError, ValueError, IndexError, EOFError):
            judge = math.nan
        paths = [os.path.realpath(found[part][stem]) for part in ("ref", "p0", "p1")]
        items.append((*paths, 1.0 - judge if 0.0 <= judge <= 1.0 else math.nan))
    return items


def _bapps(ctx: OutputSetContext) -> dict:
    results, names = _eval_results(ctx, ctx.out / "results.json")
    ctx.inputs = Inputs(ctx.out, started_in(_out_option(ctx, "prfnet-eval/bapps"), ctx.out))
    given = ctx.command.option("--root")
    root = ctx.inputs.path(given)
    if root is None or not names:
        why = "no metric was scored" if root is not None else f"its BAPPS folder {given or '(not recorded)'} is gone"
        raise InputError(f"{ctx.out}: nothing to show of this BAPPS run: {why} (the judgments are only there)")
    ctx.images.add_root(root)
    subsets = list(results[names[0]].get("subsets") or {})
    single = (root / "ref").is_dir()
    items = {name: _bapps_subset(root if single else root / name) for name in subsets}
    flat = [(name, item) for name, group in items.items() for item in group]
    decisions: dict[str, list[str]] = {}
    prob = None
    store = _store(ctx)
    if store is not None:
        pairs = store.pairs([(it[0], it[i]) for i in (1, 2) for _, it in flat])
        n, subset, p_a = len(flat), np.array([k for k, _ in flat]), np.array([it[3] for _, it in flat])

        def reproduces(name, hb):  # the per-subset 2AFC scores of results.json
            expected = results[name].get("subsets") or {}

            def agrees(values) -> bool:
                codes = _codes(values[:n], values[n:], hb)
                chosen = np.where(codes == 1, 1.0, np.where(codes == -1, 0.0, 0.5))
                agreement = chosen * p_a + (1.0 - chosen) * (1.0 - p_a)
                means = {k: agreement[subset == k].mean() for k in set(subset.tolist())}
                return all(abs(m - float(expected.get(k, math.nan))) < 1e-9 for k, m in means.items())

            return agrees

        decisions, prob = _stored_decisions(store, names, pairs, results, n, reproduces)
    missing = [n for n in names if n not in decisions]
    if missing:
        ctx.notes.append(
            f"no decisions of {', '.join(missing)}: a BAPPS run writes no per-triplet outputs, and the score store "
            "does not hold this run's scores of these metrics"
        )
    ctx.notes.append("votes are null: BAPPS keeps only the fraction of judges (p_a = 1 - judge), not their number")
    rows = []
    for i, (subset, (ref, p0, p1, p_a)) in enumerate(flat):
        p = p_a if not math.isnan(p_a) else None
        rows.append(
            {
                "id": i, "ref": ctx.images.id(ref), "a": ctx.images.id(p0), "b": ctx.images.id(p1),
                "group": f"{subset}/{os.path.basename(ref)}", "kind": subset, "p_a": p, "votes": None,
                "majority": _majority(p), "decisions": {n: d[i] for n, d in decisions.items()},
                "prfnet_p": prob[i] if prob is not None else None,
            }
        )  # fmt: skip
    title = f"prfnet eval bapps: {len(rows)} triplets in {len(subsets)} subset{'s' if len(subsets) != 1 else ''}"
    return {"view": "triplets", "title": title, "metrics": metric_entries(names, results), "triplets": rows}


def _mos(ctx: OutputSetContext) -> dict:
    results, names = _eval_results(ctx, ctx.out / "results.json")
    ctx.inputs = Inputs(ctx.out, started_in(_out_option(ctx, "prfnet-eval/mos"), ctx.out))
    return mos_part(ctx, results, names)


def _rd(ctx: OutputSetContext) -> dict:
    summary = read_json(ctx.out / "rd.json", "RD summary")
    recorded = (summary.get("outputs") or {}).get("summary")
    cwd = started_in(recorded, ctx.out / "rd.json") or started_in(_out_option(ctx, "prfnet-rd"), ctx.out)
    ctx.inputs = Inputs(ctx.out, cwd)
    return rd_part(ctx, summary)


def _tune(ctx: OutputSetContext) -> dict:
    ctx.inputs = Inputs(ctx.out, started_in(_out_option(ctx, "prfnet-tune"), ctx.out))
    return tune_part(ctx)


def _jnd(ctx: OutputSetContext) -> dict:
    results, names = _eval_results(ctx, ctx.out / "results.json")
    ctx.inputs = Inputs(ctx.out, started_in(_out_option(ctx, "prfnet-eval/jnd"), ctx.out))
    return jnd_part(ctx, results, names)
