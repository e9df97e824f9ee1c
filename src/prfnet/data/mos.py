"""Mean-opinion-score sets (KADID-10k, PIPAL, TID2013, a generic CSV) and their conversion to 2AFC pairs.

A :class:`MosSet` holds one score per distorted image; ``higher_better`` says which way the score goes
(True for all four readers here: MOS/DMOS-as-published/ELO, higher = better quality = closer to the reference).
Item paths are relative to ``MosSet.root`` (or absolute) and are checked to exist when read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._files import (
    DECIMAL_COMMA_HINT,
    CaseInsensitiveFolder,
    check_field_count,
    csv_rows,
    parse_float,
    read_lines,
    require_dir,
    require_file,
)
from .triplets import LabeledTriplet


@dataclass(frozen=True)
class MosItem:
    """A distorted image ``dist`` of reference ``ref`` (paths relative to the set's root) and its score."""

    ref: str
    dist: str
    score: float


@dataclass
class MosSet:
    """Scored distorted images; ``higher_better``: a higher score means better quality (closer to ``ref``)."""

    items: list[MosItem]
    higher_better: bool
    root: Path
    name: str = ""


def _header_columns(
    path: Path, rows: Iterator[tuple[int, list[str]]], required: tuple[str, ...]
) -> tuple[dict[str, int], list[str], int]:
    """Read the header row: (each required column name (case-insensitive) -> its index, the header's fields, its
    line)."""
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty file (expected a header with columns {','.join(required)})")
    line, fields = first
    names = [f.lower() for f in fields]
    missing = [name for name in required if name not in names]
    if missing:
        raise DataError(
            f"{path}, line {line}: header must name the columns {','.join(required)}; missing {','.join(missing)} "
            f"(got {','.join(fields)})"
        )
    return {name: names.index(name) for name in required}, fields, line


def _field(path: Path, line: int, fields: list[str], index: int, column: str) -> str:
    if index >= len(fields) or not fields[index]:
        raise DataError(f"{path}, line {line}: missing value for column {column!r}")
    return fields[index]


def _named_rows(path: Path, columns: tuple[str, str, str]) -> Iterator[tuple[int, str, str, float]]:
    """(line, first, second, score) of each row of a CSV whose header names ``columns`` (two image columns, then
    the score column; any order in the file, extra columns ignored; every row as many fields as the header); fields
    checked in the order of ``columns``."""
    rows = csv_rows(path)
    cols, header, header_line = _header_columns(path, rows, columns)
    first, second, score = columns
    for line, fields in rows:
        check_field_count(path, line, fields, header, header_line)
        a, b = (_field(path, line, fields, cols[c], c) for c in (first, second))
        yield line, a, b, parse_float(_field(path, line, fields, cols[score], score), path, line, score)


def _found(found: Path | None, root: Path, name: str, path: Path, line: int) -> str:
    """``found`` relative to ``root`` (posix), or a DataError naming the label file, line and image."""
    if found is None or not found.is_file():
        raise DataError(f"{path}, line {line}: image {name!r} not found under {root}")
    return found.relative_to(root).as_posix()


def read_kadid(root: str | Path) -> MosSet:
    """KADID-10k: ``root/dmos.csv`` (header ``dist_img,ref_img,dmos,var``), images in ``root/images/``.

    Score = ``dmos`` as published (1..5, higher = better quality).
    """
    root = require_dir(root, "KADID-10k folder").resolve()
    path = require_file(root / "dmos.csv", "KADID-10k dmos.csv")
    images = CaseInsensitiveFolder(require_dir(root / "images", "KADID-10k images folder"))
    items = []
    for line, dist, ref, score in _named_rows(path, ("dist_img", "ref_img", "dmos")):
        ref_rel, dist_rel = (_found(images.find(n), root, n, path, line) for n in (ref, dist))
        items.append(MosItem(ref_rel, dist_rel, score))
    return MosSet(items, higher_better=True, root=root, name="kadid")


PIPAL_REF_DIRS = ("Reference", "Train_Ref", "Ref", "Val_Ref")


def read_pipal(root: str | Path, label_dir: str = "Train_Label") -> MosSet:
    """PIPAL: ``root/<label_dir>/*.txt`` with headerless lines ``A0001_00_00.bmp,<ELO>`` (higher = better).

    The reference is the first 5 characters of the distorted name plus its extension (``A0001.bmp``), looked
    up in the first of ``Reference/``, ``Train_Ref/``, ``Ref/``, ``Val_Ref/`` that holds it. Distorted
    images are looked up in every other sub-folder of ``root`` (``Train_Dis/``, ``Distortion_1/``, ...),
    sorted by name, first match wins. File names match case-insensitively.
    """
    root = require_dir(root, "PIPAL folder").resolve()
    labels = root / label_dir
    if not labels.is_dir():
        raise DataError(f"{root}: unknown PIPAL layout: no {label_dir}/ folder of *.txt label files")
    ref_dirs = [CaseInsensitiveFolder(root / d) for d in PIPAL_REF_DIRS if (root / d).is_dir()]
    if not ref_dirs:
        raise DataError(f"{root}: unknown PIPAL layout: no reference folder ({', '.join(PIPAL_REF_DIRS)})")
    skip = {*PIPAL_REF_DIRS, label_dir}
    dist_dirs = [
        CaseInsensitiveFolder(d)
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name not in skip and not d.name.endswith("_Label")
    ]
    label_files = sorted(labels.glob("*.txt"))
    if not label_files:
        raise DataError(f"{labels}: no PIPAL label files (*.txt)")
    items = []
    for path in label_files:
        for line, fields in csv_rows(path):
            if len(fields) != 2:
                hint = DECIMAL_COMMA_HINT if len(fields) > 2 else ""
                raise DataError(
                    f"{path}, line {line}: expected 2 fields <distorted name>,<ELO>, got {len(fields)}{hint}"
                )
            dist, score = fields[0], parse_float(fields[1], path, line, "ELO score")
            if len(Path(dist).stem) < 5:
                raise DataError(f"{path}, line {line}: distorted name {dist!r} is shorter than a PIPAL reference id")
            ref = dist[:5] + Path(dist).suffix
            ref_path = next((p for p in (d.find(ref) for d in ref_dirs) if p is not None), None)
            dist_path = next((p for p in (d.find(dist) for d in dist_dirs) if p is not None), None)
            items.append(
                MosItem(_found(ref_path, root, ref, path, line), _found(dist_path, root, dist, path, line), score)
            )
    return MosSet(items, higher_better=True, root=root, name="pipal")


def read_tid2013(root: str | Path) -> MosSet:
    """TID2013: ``root/mos_with_names.txt`` with lines ``<mos> <name>`` (e.g. ``5.51429 i01_01_1.bmp``).

    Reference ``I01.BMP`` (from the first 3 characters) under ``reference_images/``, distorted images under
    ``distorted_images/``, both found case-insensitively. MOS 0..9, higher = better.
    """
    root = require_dir(root, "TID2013 folder").resolve()
    path = require_file(root / "mos_with_names.txt", "TID2013 mos_with_names.txt")
    refs = CaseInsensitiveFolder(require_dir(root / "reference_images", "TID2013 reference_images folder"))
    dists = CaseInsensitiveFolder(require_dir(root / "distorted_images", "TID2013 distorted_images folder"))
    items = []
    for line, text in enumerate(read_lines(path), start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{path}, line {line}: expected '<mos> <name>', got {text.strip()!r}")
        score, dist = parse_float(fields[0], path, line, "MOS"), fields[1]
        ref = f"I{dist[1:3]}.BMP"
        items.append(
            MosItem(
                _found(refs.find(ref), root, ref, path, line), _found(dists.find(dist), root, dist, path, line), score
            )
        )
    return MosSet(items, higher_better=True, root=root, name="tid2013")


def read_mos_csv(path: str | Path, higher_better: bool = True, root: str | Path | None = None) -> MosSet:
    """Generic CSV with a header naming ``ref,dist,score`` (any order, extra columns ignored).

    Image paths are relative to ``root`` (default: the CSV's folder) or absolute. ``higher_better`` gives
    the score direction.
    """
    path = require_file(path, "MOS CSV file").resolve()
    root = require_dir(root, "MOS image root folder").resolve() if root is not None else path.parent
    items = []
    for line, ref, dist, score in _named_rows(path, ("ref", "dist", "score")):
        for name in (ref, dist):
            if not (root / name).is_file():
                raise DataError(f"{path}, line {line}: image {name!r} not found (paths are relative to {root})")
        items.append(MosItem(ref, dist, score))
    return MosSet(items, higher_better=higher_better, root=root, name=path.stem)


def mos_pairs(
    mos: MosSet, min_gap: float = 0.0, max_pairs_per_ref: int | None = None, seed: int = 0
) -> list[LabeledTriplet]:
    """2AFC pairs of distorted images that share a reference, labelled by their scores.

    Every pair with ``|score_a - score_b| >= min_gap`` is kept (at most ``max_pairs_per_ref`` per
    reference, sampled without replacement); A/B order is random. ``p_a`` = 1.0 if A has the better score
    (per ``mos.higher_better``), 0.0 if B, 0.5 if equal. Paths are ``mos.root / path``; ``kind`` is
    ``mos.name`` (or "mos"). Deterministic given ``seed`` (a private numpy Generator).
    """
    if min_gap < 0:
        raise DataError(f"min_gap must be >= 0, got {min_gap}")
    if max_pairs_per_ref is not None and max_pairs_per_ref < 1:
        raise DataError(f"max_pairs_per_ref must be >= 1 or None, got {max_pairs_per_ref}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[MosItem]] = {}
    for item in mos.items:
        groups.setdefault(item.ref, []).append(item)
    sign = 1.0 if mos.higher_better else -1.0
    pairs = []
    for ref, group in groups.items():
        scores = np.array([item.score for item in group])
        first, second = np.triu_indices(len(group), k=1)
        keep = np.abs(scores[first] - scores[second]) >= min_gap
        first, second = first[keep], second[keep]
        if max_pairs_per_ref is not None and len(first) > max_pairs_per_ref:
            chosen = np.sort(rng.choice(len(first), size=max_pairs_per_ref, replace=False))
            first, second = first[chosen], second[chosen]
        swap = rng.random(len(first)) < 0.5
        a_index, b_index = np.where(swap, second, first), np.where(swap, first, second)
        quality_gap = sign * (scores[a_index] - scores[b_index])
        p_a = np.where(quality_gap > 0, 1.0, np.where(quality_gap < 0, 0.0, 0.5))
        ref_path = str(mos.root / ref)
        for i, j, p in zip(a_index.tolist(), b_index.tolist(), p_a.tolist(), strict=True):
            pairs.append(
                LabeledTriplet(
                    ref_path, str(mos.root / group[i].dist), str(mos.root / group[j].dist), p, 1, mos.name or "mos"
                )
            )
    return pairs
