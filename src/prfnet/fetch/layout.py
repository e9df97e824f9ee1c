"""From an unpacked tree to the layout the readers take: the files are found wherever they are in the archives.

CLIC: the O,A,B file (3 fields a row) and the O,A,B,T oracle (4, T in 0/1) are told apart by their content; every
image a CSV names goes to ``images/<name as in the CSV>`` (so ``images / name`` is the file, as the readers and
``--config clic2022`` resolve it), found by its path in the archive or, failing that, by its file name; images no
CSV names go to ``images/<file name>``. BAPPS: every folder holding ``ref/ p0/ p1/ judge/`` (2AFC) or
``p0/ p1/ same/`` (JND) is a subset and goes to ``2afc/<split>/<subset>`` or ``jnd/<split>/<subset>``.

:func:`apply_moves` checks every destination before it moves anything: a file already there with the same bytes is
left alone (an earlier, interrupted run put it there), any other is the user's: an :class:`OutputError`.
"""

from __future__ import annotations

import filecmp
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, OutputError
from ..ioutil import copy_file
from .catalog import DataSet
from .unpack import safe_member_path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
BAPPS_SUBSETS = {"bapps-2afc": ("2afc", ("ref", "p0", "p1", "judge")), "bapps-jnd": ("jnd", ("p0", "p1", "same"))}


@dataclass(frozen=True)
class Move:
    """Put ``src`` at ``dest`` (a copy when ``copy``: the same file is needed twice)."""

    src: Path
    dest: Path
    copy: bool = False


def _junk(path: Path) -> bool:
    return path.name.startswith("._") or "__MACOSX" in path.parts or path.name == ".DS_Store"


def _files(roots: list[Path]) -> list[tuple[Path, str]]:
    """(file, its path relative to its unpacked root, POSIX) of every file under ``roots``, sorted."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not _junk(path.relative_to(root)):
                found.append((path, path.relative_to(root).as_posix()))
    return found


def _csv_kind(path: Path) -> str | None:
    """``triplets`` (O,A,B rows), ``oracle`` (O,A,B,T) or None, from the first row."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = next((line for line in f if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return None
    fields = [x.strip() for x in first.split(",")]
    if len(fields) == 3 and all("." in x for x in fields):
        return "triplets"
    if len(fields) == 4 and all("." in x for x in fields[:3]) and fields[3] in ("0", "1"):
        return "oracle"
    return None


def _one(found: list[Path], what: str, ds: DataSet, prefer: tuple[str, ...]) -> Path | None:
    if len(found) > 1:
        preferred = [p for p in found if p.name.lower() in prefer]
        if len(preferred) != 1:
            names = ", ".join(p.name for p in found[:4])
            raise DataError(f"{ds.name}: the archives hold {len(found)} {what} files ({names}); expected one")
        return preferred[0]
    return found[0] if found else None


def _names(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig") as f:
        return [x.strip() for line in f if line.strip() for x in line.split(",")[:3]]


def clic_moves(ds: DataSet, roots: list[Path], target: Path) -> list[Move]:
    """The moves that lay a CLIC set out under ``target`` (see the module doc)."""
    files = _files(roots)
    csvs = [p for p, rel in files if p.suffix.lower() == ".csv"]
    kinds = {p: _csv_kind(p) for p in csvs}
    triplets = _one([p for p in csvs if kinds[p] == "triplets"], "O,A,B triplet", ds, ("validation.csv", "test.csv"))
    oracle = _one([p for p in csvs if kinds[p] == "oracle"], "O,A,B,T oracle", ds, ("oracle.csv",))
    if triplets is None and oracle is None:
        raise DataError(f"{ds.name}: no CLIC CSV (O,A,B rows) found in the downloaded archives")
    if ds.oracle and oracle is None:
        raise DataError(f"{ds.name}: no O,A,B,T oracle CSV found in the downloaded archives")
    moves = [Move(p, target / name, copy=True) for p, name in ((triplets, ds.triplets), (oracle, "oracle.csv")) if p]
    images = [(p, rel) for p, rel in files if p.suffix.lower() in IMAGE_SUFFIXES]
    by_suffix: dict[str, Path] = {}  # "c.png", "b/c.png", "a/b/c.png" -> a/b/c.png: first one (sorted) wins
    for p, rel in images:
        parts = rel.split("/")
        for i in range(len(parts)):
            by_suffix.setdefault("/".join(parts[i:]), p)
    used: set[Path] = set()
    placed: set[str] = set()
    missing = []
    for name in dict.fromkeys(n for csv in (triplets, oracle) if csv for n in _names(csv)):
        relative = safe_member_path(name, triplets or oracle)  # names from the internet: never outside images/
        src = by_suffix.get(relative.as_posix()) or by_suffix.get(relative.name)
        if src is None:
            missing.append(name)
            continue
        moves.append(Move(src, target / "images" / relative, copy=src in used))
        used.add(src)
        placed.add(relative.as_posix())
    if missing:
        raise DataError(f"{ds.name}: {len(missing)} images named in the CSV files are not in the archives "
                        f"(first: {missing[0]})")  # fmt: skip
    for p, _ in images:  # the images no CSV names: kept, under their file names
        if p not in used and p.name not in placed:
            moves.append(Move(p, target / "images" / p.name))
            placed.add(p.name)
    return moves


def bapps_moves(ds: DataSet, roots: list[Path], target: Path) -> list[Move]:
    """The moves that lay a BAPPS split out under ``target`` (see the module doc)."""
    kind, folders = BAPPS_SUBSETS[ds.kind]
    subsets: dict[str, Path] = {}
    for root in roots:
        for folder in sorted(p for p in root.rglob("*") if p.is_dir() and not _junk(p.relative_to(root))):
            if all((folder / name).is_dir() for name in folders):
                if folder.name in subsets:
                    raise DataError(f"{ds.name}: two subsets named {folder.name!r} in the archives")
                subsets[folder.name] = folder
    if not subsets:
        raise DataError(f"{ds.name}: no subset folder holding {'/, '.join(folders)}/ found in the archives")
    base = target / kind / ds.split
    return [
        Move(path, base / name / path.relative_to(folder))
        for name, folder in subsets.items()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not _junk(path.relative_to(folder))
    ]


def layout_moves(ds: DataSet, roots: list[Path], target: Path) -> list[Move]:
    return clic_moves(ds, roots, target) if ds.kind == "clic" else bapps_moves(ds, roots, target)


def _in_the_way(dest: Path, stop: Path) -> Path | None:
    """A file (not a folder) where ``dest``'s folder or one above it (up to ``stop``) must be."""
    for parent in dest.parents:
        if parent == stop.parent:
            break
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def apply_moves(moves: list[Move], target: Path) -> int:
    """Check every destination, then move (or copy) the files into place -> how many are now in place.

    :class:`OutputError` (one line, before anything moves) when a destination holds anything but the same bytes.
    """
    todo = []
    for move in moves:
        blocker = _in_the_way(move.dest, target)
        if blocker is not None:
            raise OutputError(f"{blocker}: a file is where the fetched data set needs a folder; move it away "
                              "(prfnet never deletes a file it did not write)")  # fmt: skip
        if move.dest.is_symlink() or move.dest.exists():
            same = move.dest.is_file() and not move.dest.is_symlink()
            if not (same and filecmp.cmp(move.src, move.dest, shallow=False)):
                raise OutputError(f"{move.dest}: already there and not the file prfnet would put there; move it "
                                  "away (prfnet never overwrites a file it did not write)")  # fmt: skip
            continue  # the same bytes: put there by an earlier, interrupted run
        todo.append(move)
    try:
        for move in todo:
            move.dest.parent.mkdir(parents=True, exist_ok=True)
            if move.copy:
                copy_file(move.src, move.dest)
            else:
                os.replace(move.src, move.dest)
    except OSError as exc:
        raise OutputError(f"{target}: cannot lay the data set out ({exc.strerror or exc})") from None
    return len(moves)
