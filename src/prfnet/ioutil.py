"""Atomic file writes, strict JSON and file hashes: the lowest room of prfnet (standard library only).

Every output file prfnet writes (CSV, JSON, YAML, HTML, PNG, safetensors) goes through :func:`atomic_write` (a
download's ``.part`` file through :func:`part_file`, renamed into place once verified); every
JSON file through :func:`write_json`; every file hash (the score store's digests, the outputs manifest) is
:func:`file_sha256`.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterable, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

_TMP_ATTEMPTS = 100
_BLOCK = 1 << 20  # file_sha256 reads 1 MiB at a time
# errors of fsync on a directory that mean "not supported here" rather than "the data may be lost"
_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, errno.EACCES, errno.EPERM, errno.EISDIR}
_DIR_FSYNC_UNSUPPORTED |= {getattr(errno, name) for name in ("ENOTSUP", "EOPNOTSUPP") if hasattr(errno, name)}


def _create_temporary(path: Path) -> tuple[int, Path]:
    """Create a new, empty ``.name.<random>.tmp`` beside ``path``; the OS applies the umask to 0o666."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no unused temporary file name beside {path}")


def fsync_directory(directory: str | Path) -> None:
    """Make a rename inside ``directory`` durable. A no-op where directories cannot be opened (Windows) or
    the file system does not support fsync on them; other errors (e.g. EIO) are raised."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **kwargs):
    """Write ``path`` all or nothing: yields the file object of a new temporary file beside ``path``.

    ``mode`` is ``"w"`` (text; ``kwargs`` go to :func:`open`, e.g. ``encoding``, ``newline``) or ``"wb"``.
    On success the file is flushed and fsynced, renamed over ``path`` (:func:`os.replace`), and the directory
    is fsynced; on any error the temporary file is removed and ``path`` is left as it was. The new file gets
    the permissions ``open(path, "w")`` would give (0o666 minus the umask); the process umask is never changed.
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        try:
            f = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def copy_file(src: str | Path, dest: str | Path) -> Path:
    """Copy ``src`` to ``dest`` through :func:`atomic_write` (``dest`` is whole or untouched) -> ``dest``."""
    with open(src, "rb") as f, atomic_write(dest, "wb") as out:
        while block := f.read(_BLOCK):
            out.write(block)
    return Path(dest)


@contextmanager
def part_file(path: str | Path, resume: bool):
    """The ``.part`` file of a download, the one writer besides :func:`atomic_write`: opened for appending when
    ``resume`` (an interrupted download goes on), else truncated; flushed and fsynced on a normal exit. Its owner
    (:func:`prfnet.hub.download`) renames it into place only once it is whole and verified."""
    with open(path, "ab" if resume else "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of the file's bytes, read in 1 MiB blocks (``OSError`` when it cannot be read)."""
    return file_digest(path, "sha256")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of the file's bytes with ``hashlib``'s ``algorithm`` ("sha256", "md5"), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def json_safe(value):
    """``value`` as strict JSON data: NaN/inf floats -> ``None``, numpy (and 0-d tensor) scalars -> Python numbers,
    paths -> strings, tuples -> lists, dict keys -> strings; recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if not isinstance(value, str | bytes) and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy scalar types (np.float32, np.int64, np.bool_) without importing numpy
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | Path, obj) -> Path:
    """``obj`` (through :func:`json_safe`) as indented strict JSON (``allow_nan=False``) with a final newline,
    written atomically. Returns ``path``."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False)
    with atomic_write(path, encoding="utf-8") as f:
        f.write(text + "\n")
    return Path(path)


def write_csv(path: str | Path, rows: Iterable[Sequence], header: Sequence[str] | None = None) -> Path:
    """CSV rows (UTF-8, ``\\n`` line ends; ``header`` first when given), written atomically. Returns ``path``."""
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return Path(path)
