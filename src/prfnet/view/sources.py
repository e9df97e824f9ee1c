"""What the catalog reads besides an output set's own JSON: the manifest, its command line and the kind of set,
input paths recorded relative to the folder the run started in, the images (ids, roots, header sizes), CLIC-format
CSVs (fast readers) and the run's score store, opened read-only.

Standard library, NumPy and Pillow only (no torch): ``prfnet view`` shows its first page before any model loads.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from ..errors import InputError
from ..ioutil import file_sha256
from ..outputs import MANIFEST

MANIFEST_FORMAT = "prfnet-outputs"
#: at most this many distinct image files get their width and height read (from the header) into the document
HEADER_LIMIT = 5000
#: at most this many bytes are hashed to find files the score store does not know by path (a moved set)
HASH_BUDGET = 256 * 2**20
_PNG = b"\x89PNG\r\n\x1a\n"
#: the output sets the viewer shows, by the command that wrote them
SETS = ("demo", "eval clic", "eval bapps", "eval mos", "eval jnd", "rd", "tune")
LABELS = {"prfnet": "PRFNet", "ms_ssim": "MS-SSIM", "ms_ssim_rgb": "MS-SSIM (RGB)", "haarpsi": "HaarPSI"}


def read_json(path: Path, what: str) -> dict:
    """The JSON object in ``path``; :class:`InputError` (one line) when it is missing or not a JSON object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing ({what} of this output set)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object ({what})")
    return value


def read_manifest(out: Path) -> dict:
    """``out/manifest.json``, checked to be a prfnet manifest; :class:`InputError` (one line) for a folder that does
    not exist, a file, or a folder without a complete prfnet output set."""
    if not out.exists():
        raise InputError(f"{out}: no such folder")
    if not out.is_dir():
        raise InputError(f"{out}: a file, not the output folder of a prfnet run")
    if not (out / MANIFEST).is_file():
        raise InputError(
            f"{out}: not a prfnet output set (no {MANIFEST}; a run writes it last, so an interrupted run leaves none)"
        )
    manifest = read_json(out / MANIFEST, "manifest")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{out / MANIFEST}: not a prfnet outputs manifest")
    return manifest


class Command:
    """The command line a manifest records (``"prfnet eval clic --csv v.csv ..."``; ``"python"`` from the API)."""

    def __init__(self, text: str | None):
        self.text = text or ""
        try:
            self.words = shlex.split(self.text)
        except ValueError:
            self.words = self.text.split()

    @property
    def name(self) -> str:
        """The subcommand (``"demo"``, ``"eval clic"``, ``"rd"``), ``""`` when not a prfnet command line."""
        if not self.words or Path(self.words[0]).name not in ("prfnet", "prfnet.exe", "__main__.py"):
            return ""
        words = [w for w in self.words[1:] if not w.startswith("-")]
        if words[:1] == ["eval"]:
            return " ".join(words[:2])
        return words[0] if words else ""

    def option(self, *names: str) -> str | None:
        """The value of the last of the options ``names`` (``--out X`` or ``--out=X``), ``None`` if not given."""
        found = None
        for i, word in enumerate(self.words):
            for name in names:
                if word == name and i + 1 < len(self.words):
                    found = self.words[i + 1]
                elif word.startswith(name + "="):
                    found = word[len(name) + 1 :]
        return found

    def flag(self, name: str) -> bool:
        return name in self.words


def set_kind(out: Path, manifest: dict) -> str:
    """One of :data:`SETS`: the manifest's ``kind``, else its command line's subcommand, else (a run from Python)
    told by the files it lists. :class:`InputError` for a set of another kind."""
    if manifest.get("kind") in SETS:
        return manifest["kind"]
    command = Command(manifest.get("command"))
    if command.name in SETS:
        return command.name
    listed = {f.get("path") for f in manifest.get("files", []) if isinstance(f, dict)}
    if not command.name:
        if "rd.json" in listed:
            return "rd"
        if "tune.json" in listed:
            return "tune"
        if {"eval/results.json", "results.json"} <= listed:
            return "demo"
        if "scores.csv" in listed:
            with open(out / "scores.csv", encoding="utf-8", errors="replace") as f:
                return "eval jnd" if f.readline().startswith("subset,p0,p1,same") else "eval mos"
        if any(str(p).startswith("submission_") for p in listed):
            return "eval clic"
        if "results.json" in listed:
            results = read_json(out / "results.json", "results")
            if any(isinstance(e, dict) and "subsets" in e for e in results.values()):
                return "eval bapps"
    what = f"`{command.text}`" if command.text else "an unknown command"
    raise InputError(
        f"{out}: outputs of {what}, which prfnet view does not show "
        "(it shows prfnet demo, eval clic|bapps|mos|jnd, rd, tune)"
    )


def started_in(recorded: str | None, actual: Path) -> Path | None:
    """The folder a run started in, from a relative path it recorded (``"out/results.json"``) and where that file is
    now (``actual``); ``None`` when the recorded path is absolute, missing, or does not end like ``actual``."""
    if not recorded or Path(recorded).is_absolute():
        return None
    base = Path(os.path.abspath(actual))
    for part in reversed(Path(recorded).parts):
        if part == ".":
            continue
        if part != base.name:
            return None
        base = base.parent
    return base


class Inputs:
    """Input paths of a run as its command line or JSON recorded them: absolute ones as they are, relative ones
    against the folder the run started in (``cwd``, when known), else the output folder's parent, else the output
    folder (a set moved together with its inputs). ``path`` returns an absolute (not resolved) path that exists, or
    ``None``."""

    def __init__(self, out: Path, cwd: Path | None):
        self.out, self.cwd = Path(os.path.abspath(out)), cwd

    def path(self, recorded: str | None) -> Path | None:
        if not recorded:
            return None
        given = Path(recorded).expanduser()
        bases = [Path("/")] if given.is_absolute() else [*([self.cwd] if self.cwd else []), self.out.parent, self.out]
        for base in bases:
            candidate = Path(os.path.abspath(base / given))
            if candidate.exists():
                return candidate
        return None


def _under(real: str, roots: list[str]) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header (PNG: its first 24 bytes; others: Pillow), ``None`` if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
        if head[:8] == _PNG and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        with Image.open(path) as img:  # reads the header only; a decompression bomb is refused: no size then
            return img.size
    except Exception:  # noqa: BLE001 - any unreadable header means "size unknown", never a failure of the catalog
        return None


class Images:
    """Image ids ``"f0"``, ``"f1"``, ... in order of first use, one per distinct file (by resolved path); the
    document's ``images`` entries (``name``, ``width``, ``height``; ``error`` for a file that cannot be shown) and the
    files the server may send (``files``: id -> resolved path, each under one of ``roots``)."""

    def __init__(self, roots: list[Path]):
        self.roots: list[Path] = []
        self._roots: list[str] = []
        self.entries: dict[str, dict] = {}
        self.files: dict[str, Path] = {}
        self._by_real: dict[str, str] = {}
        self._by_given: dict[str, str] = {}
        for root in roots:
            self.add_root(root)

    def add_root(self, root: Path | str | None) -> None:
        """Declare a folder whose files may be shown (resolved; ignored when ``None`` or already covered)."""
        if root is None:
            return
        real = Path(os.path.realpath(root))
        if not any(real == r or r in real.parents for r in self.roots):
            self.roots = [r for r in self.roots if real not in r.parents] + [real]
            self._roots = [str(r) for r in self.roots]

    def id(self, path: str | Path | None, name: str | None = None, unknown: str | None = None) -> str:
        """The id of the image file ``path`` (shown as ``name``, default its file name). ``path=None``: an image
        whose file is not known (``unknown`` says why), one id per ``name``."""
        given = os.fspath(path) if path is not None else f"\0{name}"
        found = self._by_given.get(given)
        if found is not None:
            return found
        real = os.path.realpath(given) if path is not None else given
        found = self._by_real.get(real)
        if found is None:
            found = self._by_real[real] = f"f{len(self.entries)}"
            entry = self.entries[found] = {"name": name or os.path.basename(given)}
            if path is None:
                entry["error"] = unknown or "the file of this image is not known"
            elif not _under(real, self._roots):
                entry["error"] = "outside the folders of this result set (a link out of them?): not shown"
            elif not os.path.isfile(real):
                entry["error"] = f"file not found: {real}"
            else:
                self.files[found] = Path(real)
        self._by_given[given] = found
        return found

    def document(self) -> dict[str, dict]:
        """The ``images`` of the document; width and height read from the headers when there are at most
        :data:`HEADER_LIMIT` files (``null`` otherwise, or when unreadable)."""
        sized = len(self.files) <= HEADER_LIMIT
        for image_id, entry in self.entries.items():
            path = self.files.get(image_id)
            size = header_size(str(path)) if sized and path is not None else None
            entry["width"], entry["height"] = size if size is not None else (None, None)
        return self.entries


def read_labels(path: Path, labels: tuple[str, ...] = ("0", "1")) -> list[list[str]]:
    """The rows ``[O, A, B, X]`` of a headerless CLIC submission or oracle (``labels``: the values X may take;
    ``()``: any, for a ``kinds.csv``). Image names hold no commas (:mod:`prfnet.data.clic`): lines are split on
    ``,`` (the csv module only for a file with quotes or spaces). :class:`InputError` naming the file and the row for
    a malformed one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    if '"' in text or " " in text or "\t" in text:
        fields = csv.reader(text.splitlines())
        rows = [[f.strip() for f in row] for row in fields if any(f.strip() for f in row)]
    else:
        rows = [line.split(",") for line in text.splitlines() if line]
    for number, row in enumerate(rows, start=1):
        if len(row) != 4 or not all(row) or (labels and row[3] not in labels):
            raise InputError(f"{path}, row {number}: expected O,A,B,{'T (0 or 1)' if labels else 'kind'}: {row}")
    return rows


def vote_fractions(rows: list[list[str]]) -> dict[tuple[str, frozenset], tuple[str, int, int]]:
    """Oracle rows (T = 0: A closer) -> per unordered triplet ``(O, {A, B})``: (the A first seen, votes for it, all
    votes), as :func:`prfnet.data.clic.aggregate_votes` counts them (a swapped row votes for the other image)."""
    counts: dict[tuple[str, frozenset], list] = {}
    for ref, a, b, t in rows:
        key = (ref, frozenset((a, b)))
        entry = counts.setdefault(key, [a, 0, 0])
        entry[1] += (t == "0") == (a == entry[0])
        entry[2] += 1
    return {key: (first, hits, total) for key, (first, hits, total) in counts.items()}


def finite(value) -> float | None:
    """``value`` as a float, ``None`` for a missing, unparsable, NaN or infinite value (strict JSON)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class StoreReader:
    """A prfnet score store (``scores.sqlite``, :mod:`prfnet.store`) opened read-only: no write, and no lock or
    journal file left beside it (``immutable`` unless a write-ahead log holds data a run has not checkpointed yet).
    Scores are keyed by metric identity (``"<metric>/<hash>"``, PRFNet: ``"prfnet/<checkpoint sha256[:16]>/..."``) and
    the SHA-256 of the reference and distorted files."""

    def __init__(self, path: Path):
        self.path = path
        wal = path.with_name(path.name + "-wal")
        mode = "mode=ro" if wal.is_file() and wal.stat().st_size > 0 else "immutable=1"
        self.conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True, check_same_thread=False)
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        if meta.get("format") != "prfnet-score-store":
            raise sqlite3.DatabaseError("not a prfnet score store")
        self._hashed = 0
        self._digests: dict[str, str | None] = {}

    @classmethod
    def open(cls, path: Path | None) -> StoreReader | None:
        """The store at ``path``, or ``None`` when there is none or it cannot be read as a prfnet store."""
        if path is None or not path.is_file():
            return None
        try:
            return cls(path)
        except (sqlite3.Error, OSError):
            return None

    def identities(self, metric: str) -> list[str]:
        """The stored identities of the metric named ``metric``, newest first."""
        rows = self.conn.execute(
            "SELECT metric FROM metrics WHERE substr(metric, 1, ?) = ? ORDER BY created_utc DESC, metric",
            (len(metric) + 1, metric + "/"),
        )
        return [r[0] for r in rows]

    def digests(self, paths: list[str]) -> dict[str, str]:
        """Absolute path -> SHA-256 of the file, from the store's cache of digests where the file's size and mtime
        still match, else by hashing it (at most :data:`HASH_BUDGET` bytes in all); missing files are left out."""
        known: dict[str, tuple[int, int, str]] = {}
        unique = [p for p in dict.fromkeys(paths) if p not in self._digests]
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            sql = f"SELECT path, size, mtime_ns, digest FROM files WHERE path IN ({','.join('?' * len(chunk))})"
            known.update((p, (s, m, d)) for p, s, m, d in self.conn.execute(sql, chunk))
        for path in unique:
            self._digests[path] = self._digest(path, known.get(path))
        return {p: d for p in dict.fromkeys(paths) if (d := self._digests.get(p)) is not None}

    def _digest(self, path: str, known: tuple[int, int, str] | None) -> str | None:
        try:
            st = os.stat(path)
            if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
                return known[2]
            if self._hashed + st.st_size > HASH_BUDGET:
                return None
            self._hashed += st.st_size
            return file_sha256(path)
        except OSError:
            return None

    def scores(self, identity: str) -> dict[tuple[str, str], float]:
        """(reference digest, distorted digest) -> score of one metric identity (NaN for a stored NULL)."""
        rows = self.conn.execute("SELECT ref, dist, score FROM scores WHERE metric = ?", (identity,))
        return {(r, d): math.nan if s is None else float(s) for r, d, s in rows}

    def pairs(self, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], np.ndarray] | None:
        """(the distinct (reference, distorted) digest pairs, the index of each of ``pairs`` among them) for
        :meth:`find`; ``None`` when a file's digest is not known (missing, or beyond the hashing budget)."""
        paths = list({p: None for pair in pairs for p in pair})
        digest = self.digests(paths)
        if len(digest) < len(paths):
            return None
        position: dict[tuple[str, str], int] = {}
        index = np.fromiter(
            (position.setdefault((digest[r], digest[d]), len(position)) for r, d in pairs), np.intp, len(pairs)
        )
        return list(position), index

    def find(self, metric: str, keys: tuple[list[tuple[str, str]], np.ndarray], check) -> tuple[np.ndarray, str] | None:
        """The scores of the pairs of :meth:`pairs` (float64 array in their order, NaN for a stored NULL) under the
        newest identity of ``metric`` that has them all and for which ``check(scores)`` holds (the run's own outputs
        agree), with that identity; ``None`` if none."""
        distinct, index = keys
        for identity in self.identities(metric):
            table = self.scores(identity)
            values = [table.get(key) for key in distinct]
            if None not in values:
                scores = np.array(values, dtype=np.float64)[index]
                if check(scores):
                    return scores, identity
        return None

    def close(self) -> None:
        self.conn.close()


def metric_label(name: str) -> str:
    """How the page names a metric (``prfnet`` -> ``PRFNet``, ``psnr`` -> ``PSNR``, ``psnr-rgb`` -> ``PSNR-RGB``)."""
    return LABELS.get(name) or name.upper().replace("_", "-")


def metric_entries(names: list[str], results: dict) -> list[dict]:
    """The document's ``metrics``: name, label and direction of each metric, in the run's order."""
    return [{"name": n, "label": metric_label(n), "higher_better": bool(results[n]["higher_better"])} for n in names]


@dataclass
class OutputSetContext:
    """One output set being read: its folder (absolute), manifest, command line, images and the notes so far."""

    out: Path
    manifest: dict
    command: Command
    kind: str
    images: Images
    notes: list[str] = field(default_factory=list)
    inputs: Inputs | None = None
