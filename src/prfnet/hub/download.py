"""Downloads that resume, verify and never leave a half-written file where a whole one is expected.

:func:`download` fetches ``url`` into ``dest``: the bytes go to ``dest.part`` first; an interrupted download resumes
from there with an HTTP ``Range`` request (a server that ignores it sends the whole file again, which is said once);
the file is checked against its SHA-256 and/or MD5 before it is renamed into place, and a file that fails the check
is moved aside to ``dest.bad`` (never used, never deleted: the user may want to look at it). A ``dest`` already
there and matching its checksum is not downloaded again. ``$PRFNET_OFFLINE=1`` forbids any network access.
Torch-free (urllib): ``prfnet fetch --list`` and the checks before a download import nothing heavy.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import DownloadError, OutputError
from ..ioutil import file_digest, part_file

log = logging.getLogger(__name__)

OFFLINE_ENV = "PRFNET_OFFLINE"
TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole download
CHUNK = 1 << 20
USER_AGENT = "prfnet (https://github.com/prfnet/prfnet)"
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def offline() -> bool:
    """True when ``$PRFNET_OFFLINE`` is set to anything but "", "0", "false", "no": nothing is downloaded."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def checksum_problem(path: Path, sha256: str | None = None, md5: str | None = None) -> str | None:
    """None when ``path`` matches every checksum given, else which one differs (one line)."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            found = file_digest(path, algorithm)
            if found.lower() != expected.lower():
                return f"{algorithm.upper()} {found}, expected {expected.lower()}"
    return None


def check_free_space(folder: str | Path, needed: int, what: str = "the download") -> None:
    """:class:`OutputError` (one line) when the file system of ``folder`` (or its nearest existing parent) has fewer
    than ``needed`` bytes free."""
    probe = Path(folder).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise OutputError(f"{folder}: {what} needs {_size(needed)} of disk, {_size(free)} free; free some space or "
                          "choose another folder")  # fmt: skip


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def human_size(n: int | None) -> str:
    """``1.2 GB``-style size (decimal units); ``?`` when unknown."""
    return "?" if n is None else _size(n)


def _open(url: str, start: int):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def _failure(url: str, exc: BaseException) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        return DownloadError(f"{url}: HTTP {exc.code} {exc.reason}")
    reason = getattr(exc, "reason", None) or exc
    return DownloadError(f"{url}: cannot download ({' '.join(str(reason).split()) or type(exc).__name__})")


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    md5: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """``url`` into ``dest`` (see the module doc) -> ``dest``. Verifies ``sha256``/``md5`` when given.

    Raises :class:`DownloadError` (one line) when offline, on an HTTP or network error (the ``.part`` file is kept
    for the next attempt to resume) or on a checksum mismatch (the file is moved to ``dest.bad``), and
    :class:`OutputError` when ``dest``'s folder cannot be written.
    """
    dest = Path(dest)
    if dest.is_file():
        problem = checksum_problem(dest, sha256, md5)
        if problem is None:
            return dest  # already here and verified: nothing to do
        raise DownloadError(f"{dest}: already there but its {problem}; move it away to download it again")
    if offline():
        raise DownloadError(f"{url}: not downloaded, ${OFFLINE_ENV} is set (put the file at {dest})")
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{dest.parent}: cannot create it ({exc.strerror or exc})") from None
    start = part.stat().st_size if part.is_file() else 0
    try:
        with _open(url, start) as response:
            status = getattr(response, "status", 200)
            if start and status != 206:
                log.warning("%s does not resume downloads (HTTP %s to a Range request): downloading %s again from "
                            "the start", url.split("/")[2], status, dest.name)  # fmt: skip
                start = 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            done = start
            with part_file(part, resume=bool(start)) as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
            if total is not None and done < total:  # urllib returns b"" when the connection drops: not whole
                raise DownloadError(f"{url}: the connection closed after {done} of {total} bytes; run again to "
                                    f"resume ({part.name} kept)")  # fmt: skip
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part file is already whole (a run killed before the rename)
            pass
        else:
            raise _failure(url, exc) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
        raise _failure(url, exc) from None
    except OSError as exc:  # writing: a full disk, no permission
        raise OutputError(f"{part}: cannot write the download ({exc.strerror or exc}); the part kept resumes") from None
    problem = checksum_problem(part, sha256, md5)
    if problem is not None:
        bad = dest.with_name(dest.name + ".bad")
        os.replace(part, bad)
        raise DownloadError(f"{url}: the download's {problem}; refused and kept aside as {bad}")
    os.replace(part, dest)
    return dest
