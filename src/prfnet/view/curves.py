"""The catalog's sets that are not triplets: ``prfnet rd`` (RD curves, BD-rate, every decoded image behind a point),
``prfnet eval mos`` (each metric against the subjective scores, with the run's logistic fits) and ``prfnet eval jnd``
(each metric's distance of a pair against the fraction of judges who saw no difference, on the same scatter)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..errors import InputError
from .sources import OutputSetContext, StoreReader, finite, header_size, metric_entries, metric_label, read_json

#: decoded images ``prfnet rd`` reads from a folder layout (:mod:`prfnet.rd.inputs`), and those that are their own
#: bitstream when no other file with their stem lies beside them
DECODED_SUFFIXES = (".png", ".ppm", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".jp2", ".j2k", ".avif")
COMPRESSED_SUFFIXES = (".jpg", ".jpeg", ".webp", ".jp2", ".j2k", ".avif")

#: one RD item: (codec, image, rate point, original path, decoded path, bits per pixel or None)
RDRow = tuple[str, str, str, str, str, float | None]


def _declare(ctx: OutputSetContext, paths: list[str]) -> None:
    """Make the folder of every path that lies outside the declared roots a root too (inputs named by the run)."""
    for path in dict.fromkeys(os.path.dirname(os.path.realpath(p)) for p in paths):
        ctx.images.add_root(path)


def _bits_per_pixel(bitstream: str, original: str) -> float | None:
    """8 x bytes of ``bitstream`` / (width x height of ``original`` from its header), as ``prfnet rd`` counts it."""
    size = header_size(original)
    try:
        return 8.0 * os.path.getsize(bitstream) / (size[0] * size[1]) if size else None
    except (OSError, ZeroDivisionError):
        return None


def _rd_csv(path: Path) -> list[RDRow]:
    """The items of an RD CSV (``codec,image,rate_point,decoded_path,original_path`` and ``bpp`` or
    ``bitstream_path``; relative paths against the CSV's folder), as :func:`prfnet.rd.read_rd_csv` reads them."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable RD CSV ({exc})") from None
    if not rows:
        return []
    column = {name.strip().lower(): i for i, name in enumerate(rows[0])}
    folder = path.parent
    items = []
    for row in rows[1:]:
        value = {k: row[i].strip() if i < len(row) else "" for k, i in column.items()}
        original, decoded = (
            os.path.abspath(folder / Path(value.get(k, "")).expanduser()) for k in ("original_path", "decoded_path")
        )
        bpp = finite(value["bpp"]) if value.get("bpp") else None
        if bpp is None and value.get("bitstream_path"):
            bpp = _bits_per_pixel(os.path.abspath(folder / Path(value["bitstream_path"]).expanduser()), original)
        items.append((value.get("codec", ""), value.get("image", ""), value.get("rate_point", ""), original, decoded,
                      bpp))  # fmt: skip
    return items


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _rd_folders(decoded: Path, originals: Path) -> list[RDRow]:
    """The items of the layout ``DECODED/<codec>/<rate point>/<image>.<ext>`` with ``ORIGINALS/<image>.<ext>``, the
    bits from a file with the same stem (``.bin``, ``.bits`` first) or a compressed decoded file itself."""
    by_stem = {p.stem: p for p in _visible(originals) if p.is_file() and p.suffix.lower() in DECODED_SUFFIXES}
    items = []
    for codec in (c for c in _visible(decoded) if c.is_dir()):
        for rate in (r for r in _visible(codec) if r.is_dir()):
            files = [p for p in _visible(rate) if p.is_file()]
            for path in (p for p in files if p.suffix.lower() in DECODED_SUFFIXES):
                original = by_stem.get(path.stem)
                if original is None:
                    continue
                others = [p for p in files if p.stem == path.stem and p.suffix.lower() not in DECODED_SUFFIXES]
                others.sort(key=lambda p: (p.suffix.lower() not in (".bin", ".bits"), p.suffix.lower() != ".bin"))
                bits = others[0] if others else path if path.suffix.lower() in COMPRESSED_SUFFIXES else None
                bpp = _bits_per_pixel(str(bits), str(original)) if bits is not None else None
                items.append((codec.name, path.stem, rate.name, str(original), str(path), bpp))
    return items


def _rd_items(ctx: OutputSetContext, inputs: dict) -> list[RDRow]:
    """The decoded images of an RD run, from the inputs its ``rd.json`` records (a CSV, or decoded and original
    folders); ``[]`` with a note when they are gone. Their folders become roots."""
    assert ctx.inputs is not None
    if inputs.get("csv"):
        path = ctx.inputs.path(inputs["csv"])
        if path is not None:
            items = _rd_csv(path)
            ctx.images.add_root(os.path.dirname(os.path.realpath(path)))
            _declare(ctx, [p for item in items for p in item[3:5]])
            return items
    elif inputs.get("decoded") and inputs.get("originals"):
        decoded, originals = ctx.inputs.path(inputs["decoded"]), ctx.inputs.path(inputs["originals"])
        if decoded is not None and originals is not None:
            ctx.images.add_root(decoded)
            ctx.images.add_root(originals)
            return _rd_folders(decoded, originals)
    named = ", ".join(f"{k} {v}" for k, v in inputs.items()) or "none recorded"
    ctx.notes.append(f"the decoded images behind the points are not shown: the run's inputs ({named}) are not found")
    return []


def _same(mean: float, expected) -> bool:
    if expected is None:
        return math.isnan(mean)
    return math.isclose(mean, float(expected), rel_tol=1e-7, abs_tol=1e-12)


def _item_values(ctx, summary: dict, metrics, items: list[RDRow], results: dict, labels: dict) -> dict:
    """metric name -> the score of every item (``items`` order), from the run's score store when it holds scores
    whose means over images are the run's curves (``results``); metrics without them are left out."""
    store_path = (summary.get("store") or {}).get("path")
    store = StoreReader.open(ctx.inputs.path(store_path)) if store_path and items else None
    if store is None:
        if items:
            ctx.notes.append("per-image values are null: the run kept no score store that can be read")
        return {}
    groups: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((item[0], item[2]), []).append(i)
    pairs = store.pairs([(item[3], item[4]) for item in items])
    values = {}
    for name, key, _ in metrics if pairs is not None else []:

        def agrees(scores, key=key) -> bool:
            for (codec, label), members in groups.items():
                curve, rates = results.get(codec, {}).get(key) or [], labels.get(codec, [])
                j = rates.index(label) if label in rates else len(curve)
                mean = math.fsum(scores[i] for i in members) / len(members)
                if j >= len(curve) or not _same(mean, curve[j]):
                    return False
            return True

        found = store.find(name, pairs, agrees)
        if found is not None:
            values[name] = found[0]
    store.close()
    missing = [key for name, key, _ in metrics if name not in values]
    if missing:
        ctx.notes.append(f"per-image values of {', '.join(missing)} are null: the score store does not hold them")
    return values


def _bd_rate(table: dict) -> dict:
    """``{metric key: {codec: {"value": %, "ci95": [low, high] | None}}}`` of a ``bd_rate.json`` table."""
    out = {}
    for key, per_codec in (table.get("bd_rate") or {}).items():
        intervals = (table.get("bd_rate_ci95") or {}).get(key) or {}
        out[key] = {}
        for codec, value in per_codec.items():
            ci = intervals.get(codec)
            pair = [finite(ci[0]), finite(ci[1])] if isinstance(ci, list) and len(ci) == 2 else None
            out[key][codec] = {"value": finite(value), "ci95": pair if pair and None not in pair else None}
    return out


def rd_part(ctx: OutputSetContext, summary: dict) -> dict:
    """The ``rd`` part of the document: one point per (metric key, codec, rate point), the mean over images as the
    run's ``results/<codec>.json`` (CompressAI format) holds it, with the decoded images behind it (their bpp and
    value per image), the BD-rate table with its intervals (percent; negative = fewer bits) and the run's notes."""
    codecs, anchor = list(summary.get("codecs") or []), summary.get("anchor")
    metrics = []
    for name, entry in (summary.get("metrics") or {}).items():
        if entry.get("available"):
            metrics.append((name, entry.get("key") or name, bool(entry.get("higher_better"))))
        else:
            ctx.notes.append(f"{name} was not scored: {entry.get('reason', 'unavailable')}")
    recorded = (summary.get("outputs") or {}).get("results") or {}
    results = {}
    for codec in codecs:
        path = ctx.out / "results" / (Path(recorded[codec]).name if recorded.get(codec) else f"{codec}.json")
        results[codec] = read_json(path, f"CompressAI results of {codec}").get("results") or {}
    labels = {c: [r.get("label") for r in (summary.get("rate_points") or {}).get(c, [])] for c in codecs}
    items = _rd_items(ctx, summary.get("inputs") or {})
    values = _item_values(ctx, summary, metrics, items, results, labels)
    ids = {path: ctx.images.id(path) for item in items for path in item[3:5]}
    by_point: dict[tuple[str, str], list[int]] = {}
    for item in sorted(range(len(items)), key=lambda k: items[k][1]):
        by_point.setdefault((items[item][0], items[item][2]), []).append(item)
    points = []
    for name, key, _ in metrics:
        per_item = values.get(name)
        for codec in codecs:
            bpp, curve = results[codec].get("bpp") or [], results[codec].get(key) or []
            for j, label in enumerate(labels[codec]):
                members = [
                    {"image": items[i][1], "orig": ids[items[i][3]], "decoded": ids[items[i][4]], "bpp": items[i][5],
                     "value": finite(per_item[i]) if per_item is not None else None}
                    for i in by_point.get((codec, label), [])
                ]  # fmt: skip
                points.append({"metric": key, "codec": codec, "rate_point": label,
                               "bpp": finite(bpp[j]) if j < len(bpp) else None,
                               "value": finite(curve[j]) if j < len(curve) else None, "items": members})  # fmt: skip
    bd_path = ctx.out / "bd_rate.json"
    table = read_json(bd_path, "BD-rate table") if bd_path.is_file() else summary.get("bd_rate") or {}
    notes = [
        f"{key}, {codec}: {note}" for key, per in (table.get("notes") or {}).items() for codec, note in per.items()
    ]
    entries = [
        {"name": key, "label": metric_label(name), "higher_better": hb, "metric": name} for name, key, hb in metrics
    ]
    images = summary.get("n_images", len({item[1] for item in items}))
    return {
        "view": "rd",
        "title": f"prfnet rd: {len(codecs)} codecs on {images} images, BD-rate against {anchor}",
        "metrics": entries,
        "rd": {
            "anchor": anchor,
            "metrics": entries,
            "codecs": codecs,
            "points": points,
            "bd_rate": _bd_rate(table),
            "method": table.get("method"),
            "notes": notes + list(summary.get("notes") or []),
        },
    }


def _read_scores(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a run's ``scores.csv``; :class:`InputError` (one line) when it cannot be read."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None


MOS_LABELS = {"kadid": "KADID-10k DMOS", "pipal": "PIPAL ELO", "tid2013": "TID2013 MOS"}


def mos_part(ctx: OutputSetContext, results: dict, names: list[str]) -> dict:
    """The ``mos`` part: one point per item of the run's ``scores.csv`` (the subjective score and every metric's raw
    score, ``null`` where not finite) and each metric's fit: predicted score = logistic4(x, *params) with
    x = (sign * score - mean) / std, logistic4(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2 (``sign`` -1 where
    the metric's direction is the opposite of the subjective scores')."""
    assert ctx.inputs is not None
    path = ctx.out / "scores.csv"
    columns, rows = _read_scores(path)
    if not {"ref", "dist", "mos"} <= set(columns):
        raise InputError(f"{path}: not the scores.csv of prfnet eval mos (header ref,dist,mos,<metric>...)")
    names = [n for n in names if n in columns]
    dataset = ctx.command.option("--dataset")
    given = ctx.command.option("--csv") if dataset == "csv" else ctx.command.option("--root")
    found = ctx.inputs.path(given)
    root = None if found is None else os.path.dirname(os.path.realpath(found)) if dataset == "csv" else str(found)
    why = f"the run's {'--csv' if dataset == 'csv' else '--root'} {given} is not found" if given else "not recorded"
    if root is None:
        ctx.notes.append(f"images not shown: {why}")
    else:
        ctx.images.add_root(root)
        _declare(ctx, [os.path.join(root, row[k]) for row in rows for k in ("ref", "dist") if os.path.isabs(row[k])])

    def image(name: str) -> str:
        return ctx.images.id(os.path.join(root, name) if root else None, name, f"image folder unknown: {why}")

    points = [
        {"id": i, "ref": image(row["ref"]), "dist": image(row["dist"]), "mos": finite(row["mos"]),
         "scores": {n: finite(row[n]) for n in names}}
        for i, row in enumerate(rows)
    ]  # fmt: skip
    higher = not ctx.command.flag("--lower-better")
    fits = {}
    for name in names:
        entry, fit = results[name], results[name].get("fit") or {}
        fits[name] = {
            "function": "logistic4" if fit.get("converged") else None,
            "params": [finite(p) for p in fit.get("params") or []] if fit.get("converged") else None,
            "mean": finite(fit.get("mean")), "std": finite(fit.get("std")),
            "sign": 1 if bool(entry["higher_better"]) == higher else -1,
            "plcc": finite(entry.get("plcc")), "srocc": finite(entry.get("srcc")), "krcc": finite(entry.get("krcc")),
        }  # fmt: skip
    label = f"{MOS_LABELS.get(dataset or '', 'subjective score')} ({'higher' if higher else 'lower'} = better)"
    return {
        "view": "mos",
        "title": f"prfnet eval mos: {len(points)} images ({dataset or 'MOS set'})",
        "metrics": metric_entries(names, results),
        "mos": {"points": points, "fits": fits, "mos_label": label},
    }


JND_COLUMNS = ("subset", "p0", "p1", "same")


def jnd_part(ctx: OutputSetContext, results: dict, names: list[str]) -> dict:
    """The ``mos`` part for an ``eval jnd`` set: one point per pair of its ``scores.csv`` (p0 as the reference, p1 as
    the distorted image, ``mos`` = the fraction of judges who saw no difference, in [0, 1]) with every metric's raw
    value; no curve (JND is scored by average precision, which each metric's ``summary`` gives per subset)."""
    path = ctx.out / "scores.csv"
    if not path.is_file():
        raise InputError(f"{ctx.out}: this eval jnd set has no per-pair scores.csv (an older prfnet): run it again")
    columns, rows = _read_scores(path)
    if not set(JND_COLUMNS) <= set(columns):
        raise InputError(f"{path}: not the scores.csv of prfnet eval jnd (header subset,p0,p1,same,<metric>...)")
    names = [n for n in names if n in columns]
    _declare(ctx, [row[k] for row in rows for k in ("p0", "p1")])
    points = [
        {"id": i, "ref": ctx.images.id(row["p0"]), "dist": ctx.images.id(row["p1"]), "mos": finite(row["same"]),
         "kind": row["subset"], "scores": {n: finite(row[n]) for n in names}}
        for i, row in enumerate(rows)
    ]  # fmt: skip
    fits = {}
    for name in names:
        ap = results[name].get("subsets") or {}
        per = ", ".join(f"{subset} {value:.3f}" for subset, value in ap.items() if finite(value) is not None)
        fits[name] = {"function": None, "params": None, "summary": f"JND average precision: {per} (higher = better)"}
    subsets = list(dict.fromkeys(row["subset"] for row in rows))
    return {
        "view": "mos",
        "title": f"prfnet eval jnd: {len(points)} pairs in {len(subsets)} subset{'s' if len(subsets) != 1 else ''}",
        "metrics": metric_entries(names, results),
        "mos": {"points": points, "fits": fits, "mos_label": "judges who saw no difference (fraction)"},
    }
