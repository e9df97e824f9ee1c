"""``prfnet fetch``: download, verify, unpack and lay out a catalog data set under ``DIR``; idempotent.

``DIR/downloads/<name>/`` keeps the archives (a later run verifies them); ``DIR/.prfnet-fetch/`` holds the
completion markers (``<name>.complete.json``: data set, files with checksums, prfnet version; written LAST, so a
run that died never looks complete), ``checksums.json`` (the SHA-256 recorded at the first download of a file
without a published checksum, checked on later runs) and the staging folders (``staging-<name>/``) archives are
unpacked into before their files move into place. Every download goes through :func:`prfnet.hub.download`.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..errors import DownloadError, OutputError
from ..hub import check_free_space, checksum_problem, download, file_digest, offline
from ..hub.download import USER_AGENT, Progress
from ..ioutil import copy_file, write_json
from .catalog import DataSet, dataset, resolve_url
from .layout import apply_moves, layout_moves
from .unpack import Limits, archive_kind, unpack

STATE = ".prfnet-fetch"
DOWNLOADS = "downloads"
LEDGER = "checksums.json"
HEAD_TIMEOUT_S = 10.0
Say = Callable[[str], None]
ProgressFactory = Callable[[str, int | None], Progress | None]


def limits_for(ds: DataSet) -> Limits:
    """What the archives of ``ds`` may unpack to: four times the expected size, at least 2 GB."""
    return Limits(total=max(4 * ds.unpacked, 2_000_000_000))


def marker_path(to: Path, ds: DataSet) -> Path:
    return to / STATE / f"{ds.name}.complete.json"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: unreadable ({exc}); move it away to fetch again") from None
    if not isinstance(data, dict):
        raise OutputError(f"{path}: not a prfnet fetch file; move it away to fetch again")
    return data


def _ledger(to: Path) -> dict[str, dict]:
    path = to / STATE / LEDGER
    return _read_json(path).get("files", {}) if path.is_file() else {}


def _record(to: Path, key: str, entry: dict) -> None:
    files = _ledger(to)
    files[key] = entry
    write_json(to / STATE / LEDGER, {"format": "prfnet-fetch-checksums", "version": 1, "files": files})


def head_size(url: str) -> int | None:
    """The server's Content-Length for ``url`` (HTTP HEAD), or None: offline, an error, no length."""
    if offline():
        return None
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=HEAD_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return int(length) if length and length.isdigit() else None


def plan(names: list[str], to: str | Path, ask_server: bool = True) -> dict:
    """What ``fetch`` would download (no download): per file the catalog size (published or estimated), the
    server's size (HEAD; None when it cannot be asked), whether it is already there; and the disk needed."""
    to = Path(to)
    sets, needed, failed = [], 0, set()
    for ds in map(dataset, names):
        complete = marker_path(to, ds).is_file()
        files = []
        for f in ds.files:
            present = (to / DOWNLOADS / ds.name / f.name).is_file()
            url, server = resolve_url(f.url), None
            host = url.split("/")[2]
            if ask_server and not (complete or present or host in failed):
                server = head_size(url)
                failed |= {host} if server is None else set()  # one failure per host is enough
            size = server if server is not None else f.size
            needed += 0 if complete or present else size or 0
            checksum = "md5" if f.md5 else "sha256" if f.sha256 else "none (recorded on download)"
            files.append({"name": f.name, "url": url, "size": f.size, "size_source":
                          "published" if f.size_known else "estimated", "server_size": server, "present": present,
                          "checksum": checksum})  # fmt: skip
        needed += 0 if complete else ds.unpacked
        sets.append({"name": ds.name, "folder": str(to / ds.folder), "complete": complete, "files": files,
                     "unpacked": ds.unpacked, "unpacked_source": "published" if ds.unpacked_known else "estimated",
                     "size_note": ds.size_note, "terms": ds.terms})  # fmt: skip
    return {"to": str(to), "offline": offline() or not ask_server, "datasets": sets, "disk_needed": needed}


def _verified(to: Path, ds: DataSet, say: Say) -> dict | None:
    """The marker of a complete earlier run, its kept archives checked; None when there is none."""
    path = marker_path(to, ds)
    if not path.is_file():
        return None
    marker = _read_json(path)
    checked = 0
    for entry in marker.get("files", []):
        archive = to / DOWNLOADS / ds.name / entry["name"]
        if archive.is_file():
            problem = checksum_problem(archive, sha256=entry.get("sha256"))
            if problem is not None:
                raise DownloadError(f"{archive}: changed since it was fetched ({problem}); move it away and run "
                                    "again to download it anew")  # fmt: skip
            checked += 1
    if not (to / ds.folder).is_dir():
        raise OutputError(f"{to / ds.folder}: missing, but {path} says {ds.name} was fetched; move {path} away to "
                          "fetch again")  # fmt: skip
    total = len(marker.get("files", []))
    how = "verified" if checked == total else f"{checked} of {total} archives kept and verified"
    say(f"{ds.name}: already complete, {how} ({to / ds.folder})")
    return marker


def _download_all(to: Path, ds: DataSet, say: Say, progress: ProgressFactory | None):
    """Every file of ``ds`` in ``DIR/downloads/<name>/``, checked -> (paths, entries for the marker, new ones)."""
    folder = to / DOWNLOADS / ds.name
    ledger = _ledger(to)
    paths, entries, new, recorded = [], [], [], []
    for f in ds.files:
        dest, key = folder / f.name, f"{ds.name}/{f.name}"
        url = resolve_url(f.url)
        expected = f.sha256 or (None if f.published_checksum else ledger.get(key, {}).get("sha256"))
        existed = dest.is_file()
        callback = None if existed or progress is None else progress(f"{ds.name}: {f.name}", f.size)
        download(url, dest, sha256=expected, md5=f.md5, progress=callback)
        sha256 = file_digest(dest)
        if not f.published_checksum and expected is None:
            _record(to, key, {"url": url, "sha256": sha256, "size": dest.stat().st_size,
                              "recorded_utc": _now(), "kept_by_prfnet": not existed})  # fmt: skip
            recorded.append(f.name)
        if not existed:
            new.append(dest)
        paths.append(dest)
        entries.append({"name": f.name, "url": url, "size": dest.stat().st_size, "sha256": sha256, "md5": f.md5,
                        "checksum": "published" if f.published_checksum else "recorded"})  # fmt: skip
    if recorded:
        say(f"{ds.name}: no published checksum for {', '.join(recorded)}: recorded its SHA-256 in "
            f"{to / STATE / LEDGER}; later runs check the file against it")  # fmt: skip
    return paths, entries, new


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017 (py3.10)


def _check_places(to: Path, ds: DataSet) -> None:
    for path in (to, to / ds.folder, to / DOWNLOADS, to / DOWNLOADS / ds.name, to / STATE):
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: a file is where prfnet fetch needs a folder; move it away")


def fetch_one(ds: DataSet, to: Path, say: Say, progress: ProgressFactory | None = None, keep_archives: bool = True,
              no_network: bool = False) -> dict:  # fmt: skip
    """Fetch ``ds`` into ``to`` (see the module doc) -> a summary (strict JSON data)."""
    _check_places(to, ds)
    target = to / ds.folder
    result = {"name": ds.name, "folder": str(target), "next": [c.format(dir=target) for c in ds.next],
              "notes": list(ds.notes)}  # fmt: skip
    marker = _verified(to, ds, say)
    if marker is not None:
        return result | {"status": "complete", "downloaded": [], "files": marker.get("files", [])}
    waiting = [f for f in ds.files if not (to / DOWNLOADS / ds.name / f.name).is_file()]
    if waiting and (no_network or offline()):  # before the space check: nothing can be downloaded anyway
        dest = to / DOWNLOADS / ds.name / waiting[0].name
        raise DownloadError(f"{resolve_url(waiting[0].url)}: not downloaded, offline ({len(waiting)} of "
                            f"{len(ds.files)} files missing; put them in {dest.parent})")  # fmt: skip
    partial = sum(p.stat().st_size for f in waiting if (p := to / DOWNLOADS / ds.name / f"{f.name}.part").is_file())
    # a size the catalog only estimates is asked from the server first (HEAD), so that a guess refuses no one
    sizes = {f.name: (f.size if f.size_known else head_size(resolve_url(f.url)) or f.size) or 0 for f in ds.files}
    archives = sum(sizes.values())
    unpacked = ds.unpacked if ds.unpacked_known or not archives else archives  # PNGs barely compress
    needed = sum(sizes[f.name] for f in waiting) - partial + unpacked
    estimated = "" if ds.sizes_known and ds.unpacked_known else ", unpacked size taken as the archives' (estimated)"
    check_free_space(to, needed, f"{ds.name} (download and unpack{estimated})")
    paths, entries, new = _download_all(to, ds, say, progress)
    staging = to / STATE / f"staging-{ds.name}"
    shutil.rmtree(staging, ignore_errors=True)  # ours: left by a run that died while unpacking
    try:
        roots = []
        for i, path in enumerate(paths):
            root = staging / f"{i:02d}-{path.name}"
            if archive_kind(path) is None:
                root.mkdir(parents=True)
                copy_file(path, root / path.name)
            else:
                say(f"{ds.name}: unpacking {path.name}")
                unpack(path, root, limits_for(ds))
            roots.append(root)
        placed = apply_moves(layout_moves(ds, roots, target), target)
        write_json(marker_path(to, ds), {"format": "prfnet-fetch", "version": 1, "dataset": ds.name,
                                         "prfnet_version": __version__, "created_utc": _now(), "folder": ds.folder,
                                         "files": entries, "placed": placed})  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archives:
        for path in new:  # only what this run downloaded: never a file the user put there
            path.unlink(missing_ok=True)
    say(f"{ds.name}: complete, {placed} files in {target}")
    return result | {"status": "fetched", "downloaded": [p.name for p in new], "files": entries}


def fetch(names: list[str], to: str | Path, say: Say = lambda s: None, progress: ProgressFactory | None = None,
          keep_archives: bool = True, no_network: bool = False) -> list[dict]:  # fmt: skip
    """Fetch the catalog data sets ``names`` into ``to``, one after the other -> their summaries.

    Raises :class:`DownloadError` (offline, HTTP/network errors, a bad checksum, an unsafe or oversized archive),
    :class:`OutputError` (no space, a file of the user's in the way) or :class:`DataError` (the archives do not
    hold what the layout needs), each one line; a failed data set never gets its completion marker.
    """
    sets = [dataset(n) for n in dict.fromkeys(names)]  # unknown names refused before any download
    to = Path(to)
    return [fetch_one(ds, to, say, progress, keep_archives, no_network) for ds in sets]
