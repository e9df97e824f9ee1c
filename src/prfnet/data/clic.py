"""CLIC perceptual-track CSVs (headerless): ``O,A,B`` triplets and ``O,A,B,T`` oracle / submission rows.

``T = 0``: humans found A closer to the original O; ``T = 1``: B closer. The oracle holds one row per
human vote, so a triplet may repeat, appear with A and B swapped (label flipped) and disagree with itself.

Image names must not contain commas: the CLIC devkit reads these files without CSV quoting (it splits each
line on ``,`` and keys its dict on the string ``"O,A,B"``), so a name with a comma cannot be written in a
way it reads back, and two different triplets could share a key. Readers and writers refuse such names with a
:class:`DataError` naming the file, line and name. prfnet's own dicts are keyed on ``(O, A, B)`` tuples.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..ioutil import write_csv
from ._files import csv_rows, require_file
from .triplets import LabeledTriplet, Triplet

# Words that betray a header row in a headerless CLIC file (compared lower-case).
HEADER_WORDS = {
    "o", "a", "b", "t", "r", "ref", "reference", "orig", "original", "image_a", "image_b", "img_a", "img_b",
    "dist_a", "dist_b", "a_path", "b_path", "p0", "p1", "label", "target", "winner", "choice", "preference",
}  # fmt: skip


def _reject_header(path: Path, rows: list[tuple[int, list[str]]]) -> None:
    """DataError if the first row looks like a header: column words only, an alphabetic T, or no file
    names (no ``.``) above a row of file names."""
    if not rows:
        return
    line, fields = rows[0]
    words = all(f.lower() in HEADER_WORDS for f in fields)
    alpha_t = len(fields) == 4 and fields[3].isalpha()
    has_dot = [all("." in f for f in row[:3]) for _, row in rows[:2]]
    no_names = not any("." in f for f in fields[:3]) and len(has_dot) == 2 and has_dot[1]
    if words or alpha_t or no_names:
        raise DataError(
            f"{path}, line {line}: looks like a header row ({','.join(fields)}); CLIC files are headerless "
            "(every row is O,A,B or O,A,B,T): remove the header line"
        )


def check_name(name: str, where: str) -> None:
    """:class:`DataError` if an image name cannot stand in a CLIC file (it contains a comma)."""
    if "," in name:
        raise DataError(
            f"{where}: image name {name!r} contains a comma; CLIC files have no quoting (the official scorer "
            "splits lines on ',' and keys on 'O,A,B'), so names with commas are refused: rename the file"
        )


def _triplet(path: Path, line: int, fields: list[str]) -> Triplet:
    if any(not f for f in fields[:3]):
        raise DataError(f"{path}, line {line}: empty image name in {','.join(fields)!r}")
    for name in fields[:3]:
        check_name(name, f"{path}, line {line}")
    return Triplet(fields[0], fields[1], fields[2])


def read_clic_triplets(csv_path: str | Path) -> list[Triplet]:
    """Read a headerless ``O,A,B`` file (CLIC ``validation.csv``): one :class:`Triplet` per row, file order.

    Blank lines and whitespace around fields are ignored; anything else malformed is a :class:`DataError`
    naming the file and line.
    """
    path = require_file(csv_path, "CLIC triplet file")
    rows = list(csv_rows(path))
    _reject_header(path, rows)
    triplets = []
    for line, fields in rows:
        if len(fields) != 3:
            hint = " (this looks like an O,A,B,T oracle/submission file: read it with read_clic_oracle)"
            raise DataError(
                f"{path}, line {line}: expected 3 fields O,A,B, got {len(fields)}{hint if len(fields) == 4 else ''}"
            )
        triplets.append(_triplet(path, line, fields))
    return triplets


@dataclass
class ClicOracle:
    """An ``O,A,B,T`` file in three views.

    ``rows``: every (triplet, T) in file order. ``official``: key ``(O, A, B)`` -> T where the last row of a
    repeated key wins: the dict the official scorer builds, keyed on the tuple of names instead of the string
    ``"O,A,B"`` (the same keys, since names with commas are refused). ``triplets``: one
    :class:`LabeledTriplet` per unordered triplet {O, {A, B}} in the orientation first seen, with
    ``p_a`` = fraction of its votes (rows) saying A is closer and ``votes`` = its number of rows.
    """

    rows: list[tuple[Triplet, int]] = field(default_factory=list)
    official: dict[tuple[str, str, str], int] = field(default_factory=dict)
    triplets: list[LabeledTriplet] = field(default_factory=list)


def aggregate_votes(rows: Iterable[tuple[Triplet, int]]) -> list[LabeledTriplet]:
    """Aggregate per-vote rows (T = 0: A closer) into one :class:`LabeledTriplet` per unordered triplet.

    A row with A and B swapped counts for the other image; the orientation is the first one seen.
    """
    votes_for_a: dict[tuple[str, frozenset[str]], list[int]] = {}  # key -> [votes for first-seen A, total]
    first_seen: dict[tuple[str, frozenset[str]], Triplet] = {}
    for triplet, t in rows:
        key = (triplet.ref, frozenset((triplet.a, triplet.b)))
        if key not in first_seen:
            first_seen[key] = triplet
            votes_for_a[key] = [0, 0]
        same_orientation = triplet.a == first_seen[key].a
        counts = votes_for_a[key]
        counts[0] += (t == 0) if same_orientation else (t == 1)  # a vote for the first-seen A
        counts[1] += 1
    return [
        LabeledTriplet(
            trip.ref, trip.a, trip.b, p_a=votes_for_a[key][0] / votes_for_a[key][1], votes=votes_for_a[key][1]
        )
        for key, trip in first_seen.items()
    ]


def read_clic_oracle(csv_path: str | Path) -> ClicOracle:
    """Read a headerless ``O,A,B,T`` file (CLIC ``oracle.csv`` or a submission); T must be 0 or 1.

    See :class:`ClicOracle` for the three views. Malformed rows are a :class:`DataError` naming file and line.
    """
    path = require_file(csv_path, "CLIC oracle file")
    rows = list(csv_rows(path))
    _reject_header(path, rows)
    oracle = ClicOracle()
    for line, fields in rows:
        if len(fields) != 4:
            raise DataError(f"{path}, line {line}: expected 4 fields O,A,B,T, got {len(fields)}")
        if fields[3] not in ("0", "1"):
            raise DataError(f"{path}, line {line}: T must be 0 (A closer) or 1 (B closer), got {fields[3]!r}")
        triplet, t = _triplet(path, line, fields), int(fields[3])
        oracle.rows.append((triplet, t))
        oracle.official[triplet.names()] = t
    oracle.triplets = aggregate_votes(oracle.rows)
    return oracle


def write_clic_csv(path: str | Path, rows: Iterable[tuple[Triplet, int]]) -> None:
    """Write headerless ``O,A,B,T`` rows (T = 0: A closer, 1: B closer) atomically, e.g. a CLIC submission."""
    rows = list(rows)
    for i, (triplet, t) in enumerate(rows):
        if t not in (0, 1):
            raise DataError(f"{path}: row {i + 1} ({triplet.key()}): T must be 0 or 1, got {t!r}")
        for name in triplet.names():
            check_name(name, f"{path}: row {i + 1}")
    write_csv(path, ([triplet.ref, triplet.a, triplet.b, int(t)] for triplet, t in rows))


def read_kinds(path: str | Path) -> dict[tuple[str, str, str], str]:
    """``kinds.csv`` (headerless ``O,A,B,kind``) -> {(O, A, B): kind}. DataError names the file and line;
    image names with commas are refused, as in every CLIC file (:mod:`prfnet.data.clic`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    kinds: dict[tuple[str, str, str], str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                where = f"{path}, line {reader.line_num}"
                if len(row) != 4:
                    raise DataError(f"{where}: expected 4 columns O,A,B,kind, found {len(row)}")
                o, a, b, kind = (c.strip() for c in row)
                if not all((o, a, b, kind)):
                    raise DataError(f"{where}: empty field in {','.join(row)!r}")
                for name in (o, a, b):
                    check_name(name, where)
                key = (o, a, b)
                if kinds.get(key, kind) != kind:
                    raise DataError(f"{where}: {o},{a},{b} tagged {kind!r} here and {kinds[key]!r} before")
                kinds[key] = kind
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    return kinds
