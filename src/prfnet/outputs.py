"""Output folders written as one consistent set per run: staged, moved into place, ``manifest.json`` last.

Every set of outputs (``prfnet eval``, ``rd``, ``demo``, ``ablate``) goes through :class:`OutputSet`: its folder
is checked once, before any work (:meth:`OutputSet.check`); every output is written into a hidden staging folder
``OUT/.run-<run id>/`` and, once all are written (and fsynced), moved into ``OUT``, ``OUT/manifest.json`` last::

    {"format": "prfnet-outputs", "version": 1, "run_id": "20250101T120000Z-4242-1a2b3c", "created_utc": "...",
     "command": "prfnet eval clic ...", "files": [{"path": "results.json", "size": 1234, "sha256": "..."}, ...]}

A reader trusts only the files the manifest lists, with their sizes and SHA-256 (:func:`verify_outputs`). While a
run moves its files into place the previous manifest is gone, so a folder without ``manifest.json`` holds no
trusted set. Files of the same kinds that the new set does not list (``submission_ssim.csv`` of an earlier run
with other metrics) are removed. Staging folders of runs that died (SIGKILL, power loss) and the hidden
``.<name>.<16 hex>.tmp`` files of :func:`prfnet.ioutil.atomic_write` left by them are removed by the next run
into the same folder; a staging folder is known to be alive by an advisory lock (``flock``) its run holds on it
(where there is no ``flock``: by being younger than :data:`STALE_AFTER_S`). Moves into place are serialised by a
lock on ``OUT`` itself, and SIGINT/SIGTERM are held back while they happen, so two runs into one folder leave the
set of one of them, whole.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import json
import os
import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from .errors import DataError, OutputError
from .ioutil import atomic_write, file_sha256, fsync_directory

try:
    import fcntl
except ImportError:  # Windows: staging folders are judged by their age
    fcntl = None

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "prfnet-outputs"
MANIFEST_VERSION = 1
STAGING_PREFIX = ".run-"
PROBE_PREFIX = ".prfnet-probe-"
STALE_AFTER_S = 6 * 3600  # without flock: a staging folder this old belongs to a dead run
_TMP_FILE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{16}\.tmp$")  # prfnet.ioutil.atomic_write's temporaries
_TRASH_PREFIX = ".old-"

#: what produced the outputs: the CLI sets the command line, the Python API leaves a description
_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("prfnet_command", default=None)


def set_command(command: str | None) -> contextvars.Token:
    """Record the command line written into manifests (``prfnet.cli.main`` calls it)."""
    return _COMMAND.set(command)


def reset_command(token: contextvars.Token) -> None:
    _COMMAND.reset(token)


def _reason(exc: OSError) -> str:
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
        raise OutputError(f"{what} {path} cannot be used: {_reason(exc)}") from None
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in reversed(created) if p.parent.exists() and not p.parent.is_dir()), None)
            if isinstance(exc, FileExistsError | NotADirectoryError) or blocker is not None:
                why = _reason(exc)
                raise OutputError(f"{what} {path} cannot be created: a file is in the way ({why})") from None
            raise OutputError(f"{what} {path} cannot be created: {_reason(exc)}") from None
        probe = path / f"{PROBE_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fd, b"prfnet")
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(f"{what} {path} is not writable: {_reason(exc)}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    finally:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return path


def _files_below(base: Path, name: str) -> list[str]:
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
def _locked(fd: int) -> Iterator[None]:
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
def _signals_held() -> Iterator[None]:
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


def _open_dir(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def _staging_is_dead(folder: Path) -> bool:
    """Whether the run that owns the staging folder has ended (its flock is free), or, without flock, it is old."""
    if fcntl is None:
        try:
            return time.time() - folder.stat().st_mtime > STALE_AFTER_S
        except OSError:
            return False
    fd = _open_dir(folder)
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


class OutputSet:
    """The outputs of one run into the folder ``root``, staged in ``root/.run-<id>/`` and published together.

    ``own``: glob patterns of the top-level names this kind of run writes (``results.json``, ``submission_*.csv``,
    ``data``); files and folders matching them that the new set does not contain are removed when it is published.
    :meth:`check` the folder when the run starts, before any work (once: :meth:`open` checks only an unchecked set).
    Use as a context manager (or :meth:`open` / :meth:`commit` / :meth:`abort`): the staging folder is created on
    entry, published on a normal exit and removed on an exception. An ``OSError`` raised inside the block (a full
    disk) becomes an :class:`OutputError`; the previous set in ``root`` is then left as it was.

    Write a file of the set to :meth:`path` (``name`` relative to ``root``, may hold ``/``); :meth:`final` is where it
    will be once published. :meth:`publish_now` moves a finished folder into place early (the demo's data, whose
    absolute path the training run records).
    """

    def __init__(self, root: str | Path, own: Sequence[str]):
        self.root = Path(root)
        self.own = tuple(own)
        self.run_id = new_run_id()
        self.staging = self.root / f"{STAGING_PREFIX}{self.run_id}"
        self.checked = False
        self._fd: int | None = None
        self._published: list[str] = []  # names moved into place early (publish_now)
        self._created_root = False

    # -- writing ------------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Where to write ``name`` now (inside the staging folder; its parent folders are created)."""
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def final(self, name: str) -> Path:
        """Where ``name`` will be once the set is published."""
        return self.root / name

    def sub(self, prefix: str) -> OutputView:
        """A view whose names are below ``prefix/`` (the demo's ``eval/``), published with this set."""
        return OutputView(self, prefix)

    # -- life cycle ---------------------------------------------------------------------------------------------
    def check(self, what: str = "output folder") -> OutputSet:
        """:func:`check_output_dir` of ``root`` (an :class:`OutputError` now, before any work); returns the set."""
        check_output_dir(self.root, what)
        self.checked = True
        return self

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputSet]:
        """``with outputs.writing() as sink: write(sink.path(name))``: staged, published on success, discarded on
        an error (the same protocol as :meth:`OutputView.writing`)."""
        with self as sink:
            yield sink

    def open(self) -> OutputSet:
        if not self.checked:
            self.check()
        self._created_root = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        try:
            self.staging.mkdir()
        except OSError as exc:
            why = _reason(exc)
            raise OutputError(f"output folder {self.root}: cannot create {self.staging.name}: {why}") from None
        self._fd = _open_dir(self.staging)
        if fcntl is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alive while held (released when we die)
        return self

    def __enter__(self) -> OutputSet:
        return self.open()

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            try:
                self.commit()
            except BaseException:  # Ctrl-C while hashing, or let through once the move is done: staging goes
                self.abort()
                raise
            return False
        self.abort()
        if self._created_root:  # a new folder that received nothing goes too
            with contextlib.suppress(OSError):
                self.root.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise OutputError(
                f"writing the outputs to {self.root} failed: {_reason(exc)}{where}; the previous outputs there "
                "are unchanged"
            ) from None
        return False

    def abort(self) -> None:
        """Discard the staged files (the folder ``root`` keeps its previous set)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def publish_now(self, name: str) -> Path:
        """Move the staged top-level ``name`` into place at once (replacing the old one) and invalidate the
        previous set (its manifest is removed). It is listed in the manifest when the set is committed."""
        root_fd = _open_dir(self.root)
        try:
            with _locked(root_fd) if root_fd is not None else contextlib.nullcontext(), _signals_held():
                (self.root / MANIFEST).unlink(missing_ok=True)
                self._move_into_place(name)
                fsync_directory(self.root)
        finally:
            if root_fd is not None:
                os.close(root_fd)
        self._published.append(name)
        return self.root / name

    def commit(self) -> dict:
        """Publish: move every staged entry into place, drop stale entries of our kinds, put the manifest last."""
        names = sorted(p.name for p in self.staging.iterdir() if not p.name.startswith("."))
        files = []
        for name in names:  # hashed in the staging folder, before anything in root changes
            files += [self._entry(self.staging, rel) for rel in _files_below(self.staging, name)]
        for name in self._published:
            files += [self._entry(self.root, rel) for rel in _files_below(self.root, name)]
        files.sort(key=lambda f: f["path"])
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "run_id": self.run_id,
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": _COMMAND.get() or "python",
            "files": files,
        }
        with atomic_write(self.staging / f".{MANIFEST}", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, allow_nan=False)
            f.write("\n")
        keep = {*names, *self._published}
        root_fd = _open_dir(self.root)
        try:
            with _locked(root_fd) if root_fd is not None else contextlib.nullcontext(), _signals_held():
                (self.root / MANIFEST).unlink(missing_ok=True)
                for name in names:
                    self._move_into_place(name)
                self._remove_stale(keep)
                os.replace(self.staging / f".{MANIFEST}", self.root / MANIFEST)  # last: the set is complete
                fsync_directory(self.root)
        except OSError as exc:
            self.abort()
            raise OutputError(f"publishing the outputs in {self.root} failed: {_reason(exc)}") from None
        finally:
            if root_fd is not None:
                os.close(root_fd)
        self.abort()  # the staging folder now holds only the replaced folders
        return manifest

    # -- helpers ------------------------------------------------------------------------------------------------
    @staticmethod
    def _entry(base: Path, rel: str) -> dict:
        path = base / rel
        return {"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)}

    def _move_into_place(self, name: str) -> None:
        source, target = self.staging / name, self.root / name
        if source.is_dir() and not source.is_symlink():
            if target.is_dir() and not target.is_symlink():
                target.rename(self.staging / f"{_TRASH_PREFIX}{name}")  # removed with the staging folder
            elif target.exists() or target.is_symlink():
                target.unlink()
            source.rename(target)
        else:
            if target.is_dir() and not target.is_symlink():
                raise OutputError(f"output folder {self.root}: {name} is a folder, where the output file {name} goes")
            os.replace(source, target)

    def _is_own(self, name: str) -> bool:
        return name == MANIFEST or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.own)

    def _remove_stale(self, keep: set[str]) -> None:
        """Entries of our kinds that the new set does not contain, and temporaries of atomic_write for them."""
        for entry in self.root.iterdir():
            name = entry.name
            tmp = _TMP_FILE.match(name)
            if tmp and self._is_own(tmp.group("name")):
                entry.unlink(missing_ok=True)
            elif name not in keep and name != MANIFEST and self._is_own(name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _clean_stale(self) -> None:
        """Staging folders of dead runs and the temporaries they left (under the lock on ``root``)."""
        root_fd = _open_dir(self.root)
        try:
            with _locked(root_fd) if root_fd is not None else contextlib.nullcontext():
                for entry in self.root.iterdir():
                    if entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and _staging_is_dead(entry):
                        shutil.rmtree(entry, ignore_errors=True)
                    elif (tmp := _TMP_FILE.match(entry.name)) and self._is_own(tmp.group("name")):
                        entry.unlink(missing_ok=True)  # no commit runs now: nobody is writing it
        except OSError as exc:
            raise OutputError(f"output folder {self.root}: {_reason(exc)}") from None
        finally:
            if root_fd is not None:
                os.close(root_fd)


class OutputView:
    """The part of an :class:`OutputSet` below ``prefix/``; written by a callee, published by the set's owner."""

    def __init__(self, owner: OutputSet, prefix: str):
        self.owner = owner
        self.prefix = prefix.strip("/")

    def path(self, name: str) -> Path:
        return self.owner.path(f"{self.prefix}/{name}")

    def final(self, name: str) -> Path:
        return self.owner.final(f"{self.prefix}/{name}")

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputView]:
        yield self  # the owner publishes


def verify_outputs(root: str | Path) -> dict:
    """The manifest of ``root`` after checking that every file it lists is there with its size and SHA-256.

    :class:`DataError` when there is no manifest (no complete set: a run was interrupted while publishing) or a
    listed file is missing or differs (it belongs to another run)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{root}: no {MANIFEST}, so no complete set of outputs") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{root / MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{root / MANIFEST}: not a prfnet outputs manifest")
    for entry in manifest.get("files", []):
        path = root / entry["path"]
        try:
            same = path.stat().st_size == entry["size"] and file_sha256(path) == entry["sha256"]
        except OSError:
            same = False
        if not same:
            raise DataError(f"{path}: missing or not the file of run {manifest.get('run_id')} ({root / MANIFEST})")
    return manifest


__all__ = ["MANIFEST", "OutputSet", "OutputView", "check_output_dir", "set_command", "verify_outputs"]
