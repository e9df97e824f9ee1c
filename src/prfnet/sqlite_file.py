"""An SQLite file shared by threads, forked children and pickled copies: the connection plumbing of :mod:`prfnet.store`.

:class:`SQLiteFile` keeps one connection per process, opened on first use (a parent's connection seen in a forked
child is never used nor closed), serializes calls with a lock, and runs each call as one transaction, all or nothing.
What the file holds (its schema, checked when the connection opens) and which errors its failures become are the
subclass's: :meth:`SQLiteFile._connect` and :meth:`SQLiteFile._error`. Imports only the standard library.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

_ABANDONED: list[sqlite3.Connection] = []  # a parent's connections, seen in a forked child: never used nor closed

# SQLite primary result codes (the low byte of an extended code)
NOTADB_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


def result_code(exc: sqlite3.Error) -> int | None:
    """The primary result code of an SQLite error (read from its message before Python 3.11); ``None``: unknown."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text:
        return 26
    if "locked" in text or "busy" in text:
        return 5
    return None


class SQLiteFile:
    """The SQLite file ``path``, opened by the subclass's :meth:`_connect` on first use in each process.

    ``timeout_s`` is how long a write waits for another process's write to finish before failing; ``wal`` chooses
    the journal the subclass sets up. Safe to use from several threads (calls are serialized), in forked children
    and in unpickled copies (both open their own connection on first use).
    """

    def __init__(self, path: str | Path, timeout_s: float, wal: bool):
        self.path = Path(path)
        self.timeout_s = float(timeout_s)
        self.wal = wal  # False: rollback journal, for a file one process writes on a shared file system (shards)
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._closed = False

    def _connect(self) -> None:
        """Open the connection ``self._conn`` (checking or creating the schema), or raise :meth:`_error`'s error."""
        raise NotImplementedError

    def _error(self, exc: sqlite3.Error, action: str) -> Exception:
        """The exception to raise for ``exc``, which happened while trying to ``action``."""
        raise NotImplementedError

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise ValueError(f"{self.path}: the score store is closed")
        if self._conn is None:
            self._connect()
        assert self._conn is not None
        return self._conn

    def _after_fork(self) -> None:
        """In a forked child (DataLoader workers), drop the parent's connection and lock: never used nor closed
        here (closing it could release the parent's locks); the next call opens the child's own connection."""
        if os.getpid() != self._pid:
            if self._conn is not None:
                _ABANDONED.append(self._conn)
            self._conn = None
            self._pid = os.getpid()
            self._lock = threading.RLock()

    @contextmanager
    def _tx(self, conn: sqlite3.Connection, action: str, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: BEGIN IMMEDIATE (a write: waits up to timeout_s for other writers) or BEGIN (a
        consistent snapshot) ... COMMIT; ROLLBACK on any error, so a write is all or nothing."""
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise self._error(exc, action) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, action) from None
            raise

    @contextmanager
    def _transaction(self, action: str, write: bool = False) -> Iterator[sqlite3.Connection]:
        self._after_fork()
        with self._lock, self._tx(self._db(), action, write) as conn:
            yield conn

    def close(self) -> None:
        """Close this process's connection (a parent's connection seen in a forked child is left alone)."""
        self._after_fork()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._closed = True

    def __getstate__(self) -> dict:  # pickled (spawned DataLoader workers): the copy opens its own connection
        return {"path": self.path, "timeout_s": self.timeout_s, "wal": self.wal, "_closed": self._closed}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._conn, self._pid, self._lock = None, os.getpid(), threading.RLock()
