"""Safe unpacking of zip and tar(.gz) archives into a fresh folder.

Every member is checked before a byte of it is written: no absolute path, drive letter, ``..`` or empty part (so
nothing lands outside the target), regular files and folders only (symlinks, hard links, devices refused), and a
bounded size (per member, in total, and per compressed byte: a decompression bomb is refused). Sizes are counted
as the bytes come out, not taken from the archive's headers, which can lie. Any refusal is a one-line
:class:`~prfnet.errors.DownloadError` naming the archive and the member; the caller discards the folder.
"""

from __future__ import annotations

import gzip
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DownloadError, OutputError
from ..ioutil import atomic_write

BLOCK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Limits:
    """Bounds on what an archive may unpack to: ``total`` and ``member`` bytes, ``ratio`` of unpacked to packed
    bytes (members over ``ratio_floor`` bytes only: small text files compress well), ``members`` count."""

    total: int
    member: int = 4_000_000_000
    ratio: float = 100.0
    ratio_floor: int = 4_000_000
    members: int = 2_000_000


def safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path a member may be written to; :class:`DownloadError` for one that could land elsewhere."""
    text = name.replace("\\", "/")
    if not text or text.startswith("/") or _DRIVE.match(text):
        raise DownloadError(f"{archive}: member {name!r} has an absolute path; refused, nothing unpacked")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise DownloadError(f"{archive}: member {name!r} points outside the folder (..); refused, nothing unpacked")
    if not parts:
        raise DownloadError(f"{archive}: member {name!r} has no file name; refused")
    return PurePosixPath(*parts)


class _Budget:
    """Counts the bytes written against the limits."""

    def __init__(self, archive: Path, limits: Limits):
        self.archive, self.limits, self.total, self.members = archive, limits, 0, 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.members:
            raise DownloadError(f"{self.archive}: more than {self.limits.members} members; refused as a bomb")

    def add(self, name: str, written: int, packed: int | None) -> None:
        limits = self.limits
        if written > limits.member:
            raise DownloadError(f"{self.archive}: member {name!r} unpacks to more than {limits.member} bytes; "
                                "refused as a decompression bomb")  # fmt: skip
        if packed is not None and written > limits.ratio_floor and written > limits.ratio * max(packed, 1):
            raise DownloadError(f"{self.archive}: member {name!r} unpacks to over {limits.ratio:.0f}x its packed "
                                "size; refused as a decompression bomb")  # fmt: skip

    def grow(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.total:
            raise DownloadError(f"{self.archive}: unpacks to more than {self.limits.total} bytes in all; refused "
                                "as a decompression bomb")  # fmt: skip


def _write(src, dest: Path, budget: _Budget, name: str, packed: int | None) -> None:
    """Copy the stream ``src`` into the new file ``dest``, counting every byte."""
    written = 0
    try:
        if dest.exists() or dest.is_symlink():
            raise DownloadError(f"{budget.archive}: member {name!r} appears twice; refused")
        with atomic_write(dest, "wb") as out:  # a member is whole in the staging folder, or absent
            while block := src.read(BLOCK):
                written += len(block)
                budget.grow(len(block))
                budget.add(name, written, packed)
                out.write(block)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot unpack ({exc.strerror or exc})") from None


def _target(root: Path, relative: PurePosixPath, archive: Path, name: str) -> Path:
    dest = root.joinpath(*relative.parts)
    parent = dest.parent.resolve()
    if parent != root and root not in parent.parents:  # a folder of the archive replaced by a link: never followed
        raise DownloadError(f"{archive}: member {name!r} would land outside the folder; refused")
    return dest


def _unzip(archive: Path, root: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        for info in infos:  # every member checked before anything is written
            budget.member(info.filename)
            safe_member_path(info.filename, archive)
            kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # Unix mode bits
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise DownloadError(f"{archive}: member {info.filename!r} is a link or special file; refused")
            budget.add(info.filename, info.file_size, info.compress_size)
        if sum(i.file_size for i in infos) > budget.limits.total:
            raise DownloadError(f"{archive}: declares more than {budget.limits.total} bytes unpacked; refused as a "
                                "decompression bomb")  # fmt: skip
        for info in infos:
            relative = safe_member_path(info.filename, archive)
            dest = _target(root, relative, archive, info.filename)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            with z.open(info) as src:
                _write(src, dest, budget, info.filename, info.compress_size)


def _untar(archive: Path, root: Path, budget: _Budget) -> None:
    packed = archive.stat().st_size
    with tarfile.open(archive, "r:*") as tar:
        members = []
        for member in tar:  # streams through the archive once to check every header
            budget.member(member.name)
            safe_member_path(member.name, archive)
            if member.issym() or member.islnk():
                raise DownloadError(f"{archive}: member {member.name!r} is a link; refused, nothing unpacked")
            if not (member.isfile() or member.isdir()):
                raise DownloadError(f"{archive}: member {member.name!r} is not a file or folder; refused")
            budget.add(member.name, member.size, None)
            members.append(member)
        declared, limits = sum(m.size for m in members), budget.limits
        if declared > limits.total or (declared > limits.ratio_floor and declared > limits.ratio * max(packed, 1)):
            raise DownloadError(f"{archive}: declares far more bytes unpacked than it holds or than allowed; "
                                "refused as a decompression bomb")  # fmt: skip
        for member in members:
            relative = safe_member_path(member.name, archive)
            dest = _target(root, relative, archive, member.name)
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            src = tar.extractfile(member)
            with src:
                _write(src, dest, budget, member.name, None)


def archive_kind(path: Path) -> str | None:
    """``zip``, ``tar`` or None (not an archive: copied as it is)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    return None


def unpack(archive: str | Path, root: str | Path, limits: Limits) -> Path:
    """Unpack ``archive`` into the new (or empty) folder ``root`` -> ``root``. See the module doc for what is
    refused; a corrupt archive is a :class:`DownloadError` too."""
    archive, root = Path(archive), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    budget = _Budget(archive, limits)
    try:
        if archive_kind(archive) == "zip":
            _unzip(archive, root, budget)
        else:
            _untar(archive, root, budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise DownloadError(f"{archive}: not a readable archive ({' '.join(str(exc).split())})") from None
    return root
