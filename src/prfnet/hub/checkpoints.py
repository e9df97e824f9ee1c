"""Checkpoints by local path, by http(s) URL or by published name (docs/checkpoints.md).

:func:`resolve_checkpoint` turns any of the three into a local file: a path is itself; a URL is downloaded once
(:func:`.download.download`: resume, ``.part``, a file failing its hash kept aside as ``.bad``) into
``<cache>/<sha256(URL)[:16]>/<file name>`` and read from there afterwards, offline too; a name is looked up in
:data:`PUBLISHED`. A pin, ``sha256=HEX`` or ``URL#sha256=HEX``, is checked on every use of the file. Only the
safetensors format is ever read: a downloaded file that is not one is refused and moved aside, never unpickled.

The cache folder is passed in (``cache``) by the caller: the model layer gives ``cache_dir("checkpoints")``, so this
room stays below :mod:`prfnet.cache` and beside it. Torch-free.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import CheckpointError, DownloadError, OutputError
from .download import OFFLINE_ENV, checksum_problem, download, file_digest, human_size, offline

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

#: the sub-folder of prfnet's cache (:func:`prfnet.cache.cache_dir`) that holds downloaded checkpoints
CACHE_FOLDER = "checkpoints"
#: where the published checkpoints and the pin syntax are documented
DOCS = "docs/checkpoints.md"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # no '/', no '.': never a file name with a suffix
_URL = re.compile(r"^https?://", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint prfnet knows by name: where it is, its SHA-256 and what it is."""

    name: str
    url: str
    sha256: str
    description: str
    licence: str  # the licence or terms of use of the weights (and of the data they were trained on)
    config: str  # a summary of what was trained: backbone, data, steps


#: the published checkpoints, by name (none yet: ``PRFNet.from_pretrained(name)`` works the day one is added here)
PUBLISHED: dict[str, PublishedCheckpoint] = {}


def list_checkpoints() -> list[PublishedCheckpoint]:
    """The published checkpoints (:data:`PUBLISHED`), by name; empty until weights are published."""
    return [PUBLISHED[name] for name in sorted(PUBLISHED)]


def split_pin(spec: str) -> tuple[str, str | None]:
    """``URL#sha256=HEX`` -> (URL, HEX); a URL without a fragment -> (URL, None). :class:`CheckpointError` for any
    other fragment."""
    url, hash_mark, fragment = spec.partition("#")
    if not hash_mark:
        return spec, None
    key, _, value = fragment.partition("=")
    if key.lower() != "sha256":
        raise CheckpointError(f"{spec}: unknown URL fragment #{fragment}; the only one read is #sha256=<64 hex digits>")
    return url, _checked_sha256(value, spec)


def _checked_sha256(value: str, where: str) -> str:
    if not _SHA256.match(value.strip()):
        raise CheckpointError(f"{where}: sha256 must be 64 hex digits, got {value!r}")
    return value.strip().lower()


def _pin(spec: str, given: str | None, found: str | None) -> str | None:
    """The one SHA-256 pin of ``spec`` from the argument and the URL (or the published entry); two that differ are
    a :class:`CheckpointError`."""
    given = _checked_sha256(given, spec) if given else None
    if given and found and given != found:
        raise CheckpointError(f"{spec}: two different sha256 pins ({given} and {found}): give one")
    return given or found


def cache_file(url: str, cache: Path) -> Path:
    """Where ``url`` (without its ``#`` fragment) is cached: ``cache/<sha256(url)[:16]>/<file name of the URL>``."""
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    name = name.replace("\\", "_")
    if name in ("", ".", "..") or name.startswith("."):
        name = "checkpoint.safetensors"
    return cache / key / name


def _kind(spec: str | Path) -> str:
    """The kind of ``spec``: url, name or path; :class:`CheckpointError` for a URL not http(s) or missing its //."""
    text = str(spec)
    if isinstance(spec, Path):
        if re.match(r"^https?:/[^/]", text, re.IGNORECASE):
            raise CheckpointError(f"{text}: a URL given as a Path lost its '//'; pass the URL as a str")
        return "path"
    if _URL.match(text):
        return "url"
    if _SCHEME.match(text):
        raise CheckpointError(f"{text}: only http:// and https:// URLs are downloaded; pass a file path otherwise")
    return "name" if _NAME.match(text) and not Path(text).exists() else "path"


def checked_spec(spec: str | Path) -> str | Path:
    """``spec`` checked without any download or read: a URL (its ``#sha256=`` pin) or a published name as the str
    given, anything else as a :class:`~pathlib.Path`; :class:`CheckpointError` (one line) otherwise."""
    kind = _kind(spec)
    if kind == "url":
        split_pin(str(spec))
    elif kind == "name":
        published(str(spec))
    return spec if kind != "path" else Path(spec)


def resolve_checkpoint(spec: str | Path, sha256: str | None = None, *, cache: Path | Callable[[], Path]) -> Path:
    """The local file of the checkpoint ``spec``: a path (itself; a missing one is reported when it is read), an
    http(s) URL (downloaded once into ``cache``, a folder or a function returning it, called only for a URL or a
    name) or a published name (:data:`PUBLISHED`). ``sha256`` (or ``URL#sha256=HEX``) pins the file's SHA-256.

    :class:`CheckpointError` for an unknown name, a bad pin, a local file failing its pin or a download that is not
    a safetensors file; :class:`~prfnet.errors.DownloadError` when the download fails, fails its pin or is needed
    while ``$PRFNET_OFFLINE`` is set (one line naming where to put the file).
    """
    kind, text = _kind(spec), str(spec)
    if kind == "url":
        url, found = split_pin(text)
        return _fetch(url, _pin(text, sha256, found), cache)
    if kind == "name":
        entry = published(text)
        return _fetch(entry.url, _pin(text, sha256, entry.sha256.lower()), cache)
    path = Path(spec)
    if sha256 and path.is_file():
        problem = checksum_problem(path, _checked_sha256(sha256, text))
        if problem is not None:
            raise CheckpointError(f"{path}: its {problem} (the sha256 pin); not loaded")
    return path


def published(name: str) -> PublishedCheckpoint:
    """The published checkpoint ``name``; :class:`CheckpointError` naming the published ones otherwise."""
    if name in PUBLISHED:
        return PUBLISHED[name]
    names = ", ".join(sorted(PUBLISHED)) or "none yet"
    raise CheckpointError(
        f"no published checkpoint named {name!r} (and no file of that name); published: {names} (see {DOCS})"
    )


def describe(spec: str | Path, path: Path) -> str:
    """What messages and ``model.source`` call the checkpoint ``spec`` resolved to ``path``."""
    kind, text = _kind(spec), str(spec)
    if kind == "url":
        return f"{split_pin(text)[0]} (cached as {path})"
    if kind == "name":
        return f"{text} ({PUBLISHED[text].url}, cached as {path})"
    return text


def terminal_progress(name: str, stream=None, every_s: float = 0.5):
    """A progress callback for :func:`download` that rewrites one stderr line (``downloading NAME: 12.3 MB / 98.0
    MB``) at most every ``every_s`` seconds and ends it when the file is whole; None when stderr is not a terminal
    (logs, pipes and CI stay free of it)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    shown = {"at": 0.0}

    def update(done: int, total: int | None) -> None:
        now = time.monotonic()
        last = total is not None and done >= total
        if now - shown["at"] < every_s and not last:
            return
        shown["at"] = now
        of = f" / {human_size(total)}" if total else ""
        stream.write(f"\rdownloading {name}: {human_size(done)}{of}" + ("\n" if last else ""))
        stream.flush()

    return update


def _fetch(url: str, sha256: str | None, cache: Path | Callable[[], Path]) -> Path:
    dest = cache_file(url, cache() if callable(cache) else Path(cache))
    with _locked(dest.parent):  # processes started together (DDP ranks) download it once
        if dest.is_file():
            problem = checksum_problem(dest, sha256) if sha256 else None
            if problem is None:
                _check_safetensors(dest, url)
                return dest  # cached (and verified when pinned): no request
            bad = _aside(dest)
            log.warning("%s: the cached file's %s; moved aside as %s, downloading it again", url, problem, bad)
        elif offline():
            raise DownloadError(f"{url}: not in the cache and ${OFFLINE_ENV} is set: put the file at {dest}")
        log.info("downloading %s into %s", url, dest)
        download(url, dest, sha256=sha256, progress=terminal_progress(dest.name))
        _check_safetensors(dest, url)
    if not sha256:
        digest = file_digest(dest)
        log.warning("%s (%s) downloaded without a sha256 pin; its SHA-256 is %s: pin it with %s#sha256=%s (Python: "
                    "sha256=...)", url, human_size(dest.stat().st_size), digest, url, digest)  # fmt: skip
    return dest


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """``folder`` created and held with an exclusive lock (``folder/.lock``; no lock where ``fcntl`` is missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)  # an empty file, never written: a lock
    except OSError as exc:
        raise OutputError(f"cache folder {folder}: cannot write it ({exc.strerror or exc})") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed
        yield
    finally:
        os.close(fd)


def _aside(dest: Path) -> Path:
    bad = dest.with_name(dest.name + ".bad")
    os.replace(dest, bad)
    return bad


def _check_safetensors(path: Path, url: str) -> None:
    """Read the header of ``path`` with the safetensors reader (nothing is unpickled); a file that is not
    safetensors is moved aside (``.bad``) and a :class:`CheckpointError` raised."""
    from safetensors import SafetensorError, safe_open  # not at import: `prfnet fetch --list` reads this room

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.metadata()
        return
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
    bad = _aside(path)
    raise CheckpointError(f"{url}: not a safetensors file ({reason}); refused, never unpickled, kept aside as {bad}")
