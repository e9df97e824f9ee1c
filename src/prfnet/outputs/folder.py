"""The output folder itself: checked before work (:func:`check_output_dir`), locked while a set moves in, signals
held during the move, staging folders of dead runs recognised, and the command line recorded for manifests."""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import OutputError

try:
    import fcntl
except ImportError:  # Windows: staging folders are judged by their age
    fcntl = None

STAGING_PREFIX = ".run-"
PROBE_PREFIX = ".prfnet-probe-"
STALE_AFTER_S = 6 * 3600  # without flock: a staging folder this old belongs to a dead run
TMP_FILE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{16}\.tmp$")  # prfnet.ioutil.atomic_write's temporaries
TRASH_PREFIX = ".old-"

#: what produced the outputs: the CLI sets the command line, the Python API leaves a description
_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("prfnet_command", default=None)


def command() -> str | None:
    """The command line of this run (``None`` from Python)."""
    return _COMMAND.get()


def set_command(command: str | None) -> contextvars.Token:
    """Record the command line written into manifests (``prfnet.cli.main`` calls it)."""
    return _COMMAND.set(command)


def reset_command(token: contextvars.Token) -> None:
    _COMMAND.reset(token)


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Make sure ``path`` can hold outputs, before any work: it is (or can be created as) a folder in which a file
    can be created and removed. Folders created for the probe are removed again, so a run that fails later leaves
    nothing behind. :class:`OutputError` (one line, naming the folder) otherwise."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{what} {path} is a file, not a folder: choose another folder")
        created = []
        parent = path
        while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
            created.append(parent)
            parent = parent.parent
    except OSError as exc:
        raise OutputError(f"{what} {path} cannot be used: {reason(exc)}") from None
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in reversed(created) if p.parent.exists() and not p.parent.is_dir()), None)
            if isinstance(exc, FileExistsError | NotADirectoryError) or blocker is not None:
                why = reason(exc)
                raise OutputError(f"{what} {path} cannot be created: a file is in the way ({why})") from None
            raise OutputError(f"{what} {path} cannot be created: {reason(exc)}") from None
        probe = path / f"{PROBE_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fd, b"prfnet")
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(f"{what} {path} is not writable: {reason(exc)}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    finally:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return path


def files_below(base: Path, name: str) -> list[str]:
    """Relative POSIX paths of the regular files of ``base/name`` (a file or a folder), links left out."""
    top = base / name
    if top.is_symlink():
        return []
    if top.is_file():
        return [name]
    found = []
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for file in sorted(files):
            full = Path(folder) / file
            if not full.is_symlink() and full.is_file():
                found.append(full.relative_to(base).as_posix())
    return found


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """An exclusive advisory lock on an open folder (a no-op without flock)."""
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then reach their own handlers (in the main thread; elsewhere
    a no-op). Python-level handlers, not a signal mask: a signal sent to the process may be taken by any of its
    threads (torch's, a DataLoader's), but its Python handler always runs in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for signum in dict.fromkeys((signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT))):
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python, which cannot be restored
            previous[signum] = signal.signal(signum, lambda got, _frame: pending.append(got))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)  # now, to the handler the block found


def open_dir(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def staging_is_dead(folder: Path) -> bool:
    """Whether the run that owns the staging folder has ended (its flock is free), or, without flock, it is old."""
    if fcntl is None:
        try:
            return time.time() - folder.stat().st_mtime > STALE_AFTER_S
        except OSError:
            return False
    fd = open_dir(folder)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live run holds it
    finally:
        os.close(fd)  # closing releases the probe's own lock
    return True


def new_run_id() -> str:
    """``<UTC time>-<pid>-<6 hex>``: sortable by time, unique across processes."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{os.getpid()}-{secrets.token_hex(3)}"
