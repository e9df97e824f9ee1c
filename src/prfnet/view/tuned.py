"""The catalog's ``prfnet tune`` sets: per image, each codec's chosen encode beside the ``--match`` encoding and the
original, so that "as good as JPEG q85 in this metric" can be looked at (flicker the match and a codec's choice).

Reads ``tune.json`` only. The originals are the input files the run named (absolute paths) or, for
``--example``, the lossless copies the run wrote (``files/original/<image>.png``); a set written before tune kept
them has no original to show, and its notes say so.
"""

from __future__ import annotations

import os

from .sources import OutputSetContext, finite, metric_label, read_json

#: the per-encode fields the page shows (tune.json's names)
CELL_FIELDS = ("label", "setting", "bpp", "bytes", "distance", "status", "encodes", "saved_percent")


def _original(ctx: OutputSetContext, entry: dict) -> str:
    recorded = entry.get("original")
    if recorded is not None and not os.path.isabs(recorded):
        return ctx.images.id(os.path.join(ctx.out, recorded), entry.get("image"))  # written by the run
    if recorded is None:  # a set of an older prfnet: the input file it named, if it was one
        found = ctx.inputs.path(entry.get("source")) if ctx.inputs is not None else None
        if found is None or not found.is_file():
            return ctx.images.id(None, entry.get("image"), "this tune set kept no copy of its example image")
        recorded = str(found)
    ctx.images.add_root(os.path.dirname(os.path.realpath(recorded)))  # an input the run named
    return ctx.images.id(recorded, entry.get("image"))


def _encode(ctx: OutputSetContext, fields: dict, file: str | None) -> dict:
    cell = {k: finite(fields.get(k)) if k in ("bpp", "distance", "saved_percent") else fields.get(k) for k in
            CELL_FIELDS}  # fmt: skip
    cell["file"] = ctx.images.id(os.path.join(ctx.out, file) if file else None, file and os.path.basename(file),
                                 "this tune set kept no bitstream of it")  # fmt: skip
    return cell


def tune_part(ctx: OutputSetContext) -> dict:
    """The ``tune`` part of the document: the metric (name, label, direction), the target (``{"kind": "match",
    "encoding": "jpeg420:q85"}`` or ``{"kind": "value", "value": v}``), the codecs, each codec's totals (images met,
    mean bpp and bits saved with their 95 % intervals) and one row per image: its original, its target value, the
    match encode (``null`` for a value target) and one cell per codec (chosen setting, bpp, distance, status)."""
    summary = read_json(ctx.out / "tune.json", "tune summary")
    metric = summary.get("metric") or {}
    name = metric.get("name") or "metric"
    entry_metric = {"name": name, "label": metric_label(name), "higher_better": bool(metric.get("higher_better"))}
    codecs = list(summary.get("codecs") or [])
    target = summary.get("target") or {}
    match_label = target.get("encoding")
    rows = []
    for entry in summary.get("images") or []:
        match = entry.get("match")
        if match is not None:
            match = _encode(ctx, match | {"label": match_label, "status": "match"}, match.get("file"))
        cells = {c: _encode(ctx, fields, fields.get("file")) for c, fields in (entry.get("codecs") or {}).items()}
        rows.append({"image": entry.get("image"), "ref": _original(ctx, entry), "target": finite(entry.get("target")),
                     "match": match, "cells": cells})  # fmt: skip
    if any(r["match"] is not None and r["match"]["file"] not in ctx.images.files for r in rows):
        ctx.notes.append(
            "the --match encodes were not kept by this tune run (an older prfnet): only the codecs' are shown"
        )
    aim = (
        f"as close as {match_label}"
        if match_label
        else f"{'>=' if entry_metric['higher_better'] else '<='} {target.get('value')}"
    )
    return {
        "view": "tune",
        "title": f"prfnet tune: {entry_metric['label']} {aim}, {len(rows)} images, {len(codecs)} codecs",
        "metrics": [entry_metric],
        "tune": {
            "metric": entry_metric,
            "target": target,
            "codecs": codecs,
            "rows": rows,
            "totals": summary.get("totals") or {},
        },
    }
