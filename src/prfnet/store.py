"""Persistent score store: image-quality scores cached in an SQLite database (``docs/store.md``).

A score is keyed by the metric identity (a string the caller builds) and the SHA-256 content digests of the
reference and the distorted file, so a re-run scores only what is new. Writes are one transaction per batch in
WAL mode: a process killed with SIGKILL loses at most the batch in flight, and several processes on one host can
write into one store at once. The store knows hashes and rows, never models. Imports only the standard library,
:mod:`prfnet.errors`, :mod:`prfnet.ioutil` and :mod:`prfnet.sqlite_file`.

Which store a run uses is decided here, once, for ``eval``, ``rd`` and the demo (:func:`resolve_store`): the default
:data:`DEFAULT_STORE` is ``<output folder>/scores.sqlite`` (outside the run's output set: it persists between runs),
``None`` is no store, a path or an open :class:`ScoreStore` is that store.

The connection plumbing (one connection per process, forked children, pickled copies, all-or-nothing
transactions) is in :class:`prfnet.sqlite_file.SQLiteFile`, the base of :class:`ScoreStore`; this module holds the
store's schema, the errors its failures become, and its API.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from .errors import DataError, ImageReadError, OutputError
from .ioutil import file_sha256
from .sqlite_file import BUSY_CODES, NOTADB_CODES, SQLiteFile, result_code

SCHEMA_VERSION = 1
FORMAT_MARKER = "prfnet-score-store"
STORE_NAME = "scores.sqlite"  # the default store's file name in a run's output folder
_CHUNK = 500  # paths per IN query, below SQLite's 999-parameter floor

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS scores(metric TEXT NOT NULL, ref TEXT NOT NULL, dist TEXT NOT NULL, score REAL,"
    " PRIMARY KEY(metric, ref, dist)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INT NOT NULL, mtime_ns INT NOT NULL,"
    " digest TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS metrics(metric TEXT PRIMARY KEY, description TEXT, created_utc TEXT)",
)


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of the file's bytes (:func:`prfnet.ioutil.file_sha256`); :class:`ImageReadError` when it
    cannot be read."""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None


class ScoreStore(SQLiteFile):
    """Scores of ``(metric_id, ref_digest, dist_digest)`` keys in the SQLite file ``path`` (opened or created).

    ``timeout_s`` is how long a write waits for another process's write to finish before failing. Safe to use
    from several threads (calls are serialized), in forked children and in unpickled copies (both open their own
    connection on first use).
    """

    def __init__(self, path: str | Path, timeout_s: float = 60.0, wal: bool = True):
        super().__init__(path, timeout_s, wal)
        if self.path.is_dir():
            raise DataError(
                f"{self.path}: is a folder, not a score store file; pass a file path such as {path}/scores.db"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{self.path}: cannot create its folder {self.path.parent} ({exc.strerror or exc})"
            ) from None
        self._connect()

    # -- connection ------------------------------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> Exception:
        code = result_code(exc)
        if code in NOTADB_CODES:
            return DataError(f"{self.path}: not an SQLite database or damaged ({exc}); remove it or pass another path")
        if code in BUSY_CODES:
            return OutputError(
                f"{self.path}: still locked by another process after {self.timeout_s:g} s while trying to {action};"
                " raise timeout_s or give each writer its own store"
            )
        return OutputError(
            f"{self.path}: cannot {action} ({exc}); the folder must be writable on a local file system (not NFS)"
        )

    def _connect(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            self._conn = conn
            self._check_schema(conn, fresh_ok=True)  # before WAL: never change a database that is not ours
            wanted = "wal" if self.wal else "delete"
            mode = conn.execute(f"PRAGMA journal_mode={wanted.upper()}").fetchone()[0]
            if str(mode).lower() != wanted:
                raise OutputError(
                    f"{self.path}: cannot use WAL journaling (got {mode!r}); put the store on a local disk"
                )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            with self._tx(conn, "create the store", write=True):
                if self._check_schema(conn, fresh_ok=True):
                    for sql in _SCHEMA:
                        conn.execute(sql)
                    conn.executemany(
                        "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                        [("format", FORMAT_MARKER), ("schema_version", str(SCHEMA_VERSION))],
                    )
        except BaseException as exc:
            self._conn = None
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "open the store") from None
            raise

    def _check_schema(self, conn: sqlite3.Connection, fresh_ok: bool) -> bool:
        """True for an empty database (to be created); raises DataError for one that is not a store of ours."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and fresh_ok:
            return True
        meta = dict(conn.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("format") != FORMAT_MARKER:
            raise DataError(
                f"{self.path}: an SQLite database but not a prfnet score store (no {FORMAT_MARKER!r} marker);"
                " pass a new file path"
            )
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION:
            raise DataError(
                f"{self.path}: written by a newer prfnet (store schema {version}, this prfnet reads"
                f" {SCHEMA_VERSION}); upgrade prfnet or pass another store path"
            )
        if version != SCHEMA_VERSION:
            raise DataError(f"{self.path}: unsupported store schema {meta.get('schema_version')!r}; pass a new path")
        return False

    # -- public API ------------------------------------------------------------------------------------------------

    def digests(self, paths: Iterable[str | Path]) -> dict[str, str]:
        """``str(path)`` (as given) -> SHA-256 digest of the file's content. Digests are cached by (absolute path,
        size, mtime_ns): an unchanged file is not read again, a changed one is re-hashed."""
        stats: dict[str, tuple[str, int, int]] = {}  # given -> (absolute path, size, mtime_ns)
        for p in paths:
            given = str(p)
            if given in stats:
                continue
            try:
                st = os.stat(given)
            except OSError as exc:
                raise ImageReadError(f"{given}: cannot read ({exc.strerror or exc})") from None
            stats[given] = (os.path.abspath(given), st.st_size, st.st_mtime_ns)
        absolute = sorted({a for a, _, _ in stats.values()})
        cached: dict[str, tuple[int, int, str]] = {}
        with self._transaction("read the file digests") as conn:
            for i in range(0, len(absolute), _CHUNK):
                chunk = absolute[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT path, size, mtime_ns, digest FROM files WHERE path IN ({marks})"
                cached.update((r[0], (r[1], r[2], r[3])) for r in conn.execute(sql, chunk))
        fresh: dict[str, tuple[int, int, str]] = {}
        out = {}
        for given, (a, size, mtime_ns) in stats.items():
            hit = fresh.get(a) or cached.get(a)
            if hit is None or hit[:2] != (size, mtime_ns):
                hit = fresh[a] = (size, mtime_ns, file_digest(given))
            out[given] = hit[2]
        if fresh:
            with self._transaction("cache the file digests", write=True) as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO files(path, size, mtime_ns, digest) VALUES (?, ?, ?, ?)",
                    [(a, s, m, d) for a, (s, m, d) in fresh.items()],
                )
        return out

    def register_metric(self, metric_id: str, description: str) -> None:
        """Record a metric identity (kept as first registered: INSERT OR IGNORE)."""
        _check_id(metric_id)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._transaction("register a metric", write=True) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO metrics(metric, description, created_utc) VALUES (?, ?, ?)",
                (metric_id, str(description), now),
            )

    def lookup(self, metric_id: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """``(ref_digest, dist_digest)`` -> stored score for the keys that are stored (others are absent); a
        stored NaN comes back as ``float("nan")``."""
        _check_id(metric_id)
        unique = list(dict.fromkeys((str(r), str(d)) for r, d in keys))
        out: dict[tuple[str, str], float] = {}
        with self._transaction("look up scores") as conn:
            # a temporary table joined on the primary key: one indexed search per key (a row-value IN list is not)
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS lookup_keys(ref TEXT, dist TEXT)")
            try:
                conn.executemany("INSERT INTO lookup_keys(ref, dist) VALUES (?, ?)", unique)
                sql = (
                    "SELECT s.ref, s.dist, s.score FROM lookup_keys k JOIN scores s"
                    " ON s.metric = ? AND s.ref = k.ref AND s.dist = k.dist"
                )
                for ref, dist, score in conn.execute(sql, (metric_id,)):
                    out[(ref, dist)] = math.nan if score is None else float(score)
            finally:
                conn.execute("DELETE FROM lookup_keys")
        return out

    def add(self, metric_rows: Iterable[tuple[str, str, str, float]]) -> int:
        """Write ``(metric_id, ref_digest, dist_digest, score)`` rows in one transaction (all or nothing). A key
        already stored keeps its first score. Returns the number of new rows."""
        rows = []
        for metric_id, ref, dist, score in metric_rows:
            _check_id(metric_id)
            value = float(score)
            rows.append((metric_id, str(ref), str(dist), None if math.isnan(value) else value))
        if not rows:
            return 0
        with self._transaction("add scores", write=True) as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO scores(metric, ref, dist, score) VALUES (?, ?, ?, ?)", rows)
            return conn.total_changes - before

    def merge(self, other: str | Path) -> int:
        """Copy every score and metric of the store file ``other`` (e.g. a process's shard) into this one, in one
        transaction; a key already here keeps its score. Returns the number of new scores."""
        ScoreStore(other, self.timeout_s, wal=False).close()  # a DataError unless it is a store of ours
        self._after_fork()
        with self._lock:
            conn = self._db()
            try:
                conn.execute("ATTACH DATABASE ? AS shard", (str(other),))  # not allowed inside a transaction
            except sqlite3.Error as exc:
                raise self._error(exc, f"read the shard {other}") from None
            try:
                with self._tx(conn, "merge a shard", write=True):
                    before = conn.total_changes
                    conn.execute("INSERT OR IGNORE INTO scores SELECT metric, ref, dist, score FROM shard.scores")
                    added = conn.total_changes - before
                    conn.execute("INSERT OR IGNORE INTO metrics SELECT * FROM shard.metrics")
            finally:
                conn.execute("DETACH DATABASE shard")
        return added

    def shard_path(self, rank: int) -> Path:
        """The file process ``rank`` of a multi-process run writes its scores to (merged by :meth:`absorb_shards`)."""
        return self.shard_path_of(self.path, rank)

    @staticmethod
    def shard_path_of(path: str | Path, rank: int) -> Path:
        path = Path(path)
        return path.with_name(f"{path.name}.rank-{rank:04d}")

    def absorb_shards(self) -> int:
        """Merge every shard beside this store (:meth:`shard_path`: left by a multi-process run, finished or killed)
        into it and delete the shard files. Returns the number of new scores."""
        added = 0
        for shard in sorted(self.path.parent.glob(f"{self.path.name}.rank-[0-9][0-9][0-9][0-9]")):
            added += self.merge(shard)
            for leftover in (shard, shard.with_name(shard.name + "-journal")):
                leftover.unlink(missing_ok=True)
        return added

    def count(self, metric_id: str | None = None) -> int:
        """Number of stored scores, of one metric or of all."""
        with self._transaction("count scores") as conn:
            if metric_id is None:
                return conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            return conn.execute("SELECT COUNT(*) FROM scores WHERE metric = ?", (metric_id,)).fetchone()[0]

    def metrics(self) -> dict[str, int]:
        """metric_id -> number of stored scores, for every registered metric and every metric with scores."""
        with self._transaction("list the metrics") as conn:
            out = {m: 0 for (m,) in conn.execute("SELECT metric FROM metrics")}
            out.update(conn.execute("SELECT metric, COUNT(*) FROM scores GROUP BY metric"))
        return dict(sorted(out.items()))

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.path)!r})"


def _check_id(metric_id: str) -> None:
    if not isinstance(metric_id, str) or not metric_id:
        raise ValueError(f"a metric id must be a non-empty string, got {metric_id!r}")


class _DefaultStore:
    """The type of :data:`DEFAULT_STORE` (one instance)."""

    def __repr__(self) -> str:
        return "DEFAULT_STORE"

    def __reduce__(self) -> str:
        return "DEFAULT_STORE"  # a pickled copy is the same sentinel


#: ``store=`` default of ``evaluate_clic|bapps|mos``, ``run_rd`` and ``run_demo``: ``<output folder>/scores.sqlite``
#: (no store when the run writes no output folder)
DEFAULT_STORE = _DefaultStore()


def resolve_store(store, out_dir: str | Path | None, check: bool = True) -> ScoreStore | Path | None:
    """The store of a run writing to ``out_dir`` (``None``: a run that writes no folder): :data:`DEFAULT_STORE` ->
    ``out_dir/scores.sqlite`` (``None`` without ``out_dir``); ``None`` -> no store; a path -> that path; an open
    :class:`ScoreStore` as it is. With ``check``, a path that cannot be a store is refused now, before anything is read
    or any model loads (:func:`check_store_path`)."""
    if store is DEFAULT_STORE:
        if out_dir is None:
            return None
        store = Path(out_dir) / STORE_NAME
    if store is None or isinstance(store, ScoreStore):
        return store
    path = Path(store)
    if check:
        check_store_path(path)
    return path


def check_store_path(path: str | Path) -> None:
    """One-line error for a store path that cannot be used, creating nothing (the store is created when the first
    scores are looked up): an existing file is opened as a store (a folder, a foreign or damaged database, a newer
    schema are refused and left unchanged); a new one needs a writable folder or a folder that can be created."""
    path = Path(path)
    try:
        if path.exists():
            ScoreStore(path).close()
            return
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
    except OSError as exc:
        raise OutputError(f"{path}: cannot be used as the score store ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot create the score store: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot create the score store: {folder} is not writable")
