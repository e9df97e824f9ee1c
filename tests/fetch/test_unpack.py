"""Archives that try to write outside their folder, links, and decompression bombs: refused (one line), nothing
written outside the target; and the same through a whole fetch (no marker)."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from prfnet.errors import DownloadError
from prfnet.fetch import Limits, fetch, marker_path
from prfnet.fetch.catalog import CATALOG
from prfnet.fetch.unpack import unpack

from .conftest import ARCHIVES, zip_bytes

LIMITS = Limits(total=10**8)


def _zip_link(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, target)
    return buffer.getvalue()


def _tar(kind: str, name: str, target: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        info = tarfile.TarInfo(name)
        if kind == "file":
            info.size = 3
            t.addfile(info, io.BytesIO(b"bad"))
        else:
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = target
            t.addfile(info)
    return buffer.getvalue()


UNSAFE = {
    "zip-dotdot": ("evil.zip", lambda: zip_bytes({"ok.txt": b"ok", "../evil.txt": b"bad"}), "outside"),
    "zip-absolute": ("evil.zip", lambda: zip_bytes({"/tmp/evil.txt": b"bad"}), "absolute"),
    "zip-drive": ("evil.zip", lambda: zip_bytes({"C:/evil.txt": b"bad"}), "absolute"),
    "zip-backslash-dotdot": ("evil.zip", lambda: zip_bytes({"a\\..\\..\\evil.txt": b"bad"}), "outside"),
    "zip-symlink": ("evil.zip", lambda: _zip_link("link", "/etc/passwd"), "link"),
    "tar-dotdot": ("evil.tar.gz", lambda: _tar("file", "../evil.txt"), "outside"),
    "tar-absolute": ("evil.tar.gz", lambda: _tar("file", "/tmp/evil.txt"), "absolute"),
    "tar-symlink": ("evil.tar.gz", lambda: _tar("symlink", "link", "/etc"), "link"),
    "tar-hardlink": ("evil.tar.gz", lambda: _tar("hardlink", "link", "/etc/passwd"), "link"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_unsafe_members_are_refused_and_nothing_lands_outside(tmp_path, case):
    name, make, words = UNSAFE[case]
    archive = tmp_path / name
    archive.write_bytes(make())
    target = tmp_path / "deep" / "target"
    with pytest.raises(DownloadError, match=words) as info:
        unpack(archive, target, LIMITS)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert list(target.rglob("*")) == []  # every member checked before the first is written


def test_a_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(zip_bytes({"zeros.png": bytes(50_000_000)}))  # 50 MB of zeros in ~50 KB
    assert archive.stat().st_size < 500_000
    with pytest.raises(DownloadError, match="decompression bomb"):
        unpack(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out" / "zeros.png").exists()


def test_an_archive_over_the_total_is_refused(tmp_path):
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(_tar("file", "a.txt"))
    with pytest.raises(DownloadError, match="bomb"):
        unpack(archive, tmp_path / "out", Limits(total=2))


def test_a_tar_gz_bomb_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        info = tarfile.TarInfo("zeros.png")
        info.size = 50_000_000
        t.addfile(info, io.BytesIO(bytes(info.size)))
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(DownloadError, match="decompression bomb"):
        unpack(archive, tmp_path / "out", LIMITS)
    assert not (tmp_path / "out" / "zeros.png").exists()


def test_an_unsafe_archive_in_a_fetch_leaves_no_marker(server, tmp_path):
    path = next(iter(ARCHIVES["clic2021-valid"]))
    server.files[path] = zip_bytes({"clic/validation.csv": b"a.png,b.png,c.png\n", "../../escape.png": b"x"})
    with pytest.raises(DownloadError, match="outside"):
        fetch(["clic2021-valid"], tmp_path)
    assert not marker_path(tmp_path, CATALOG["clic2021-valid"]).exists()
    assert not (tmp_path / "clic2021-valid").exists() and not (tmp_path.parent / "escape.png").exists()
    assert not list((tmp_path / ".prfnet-fetch").glob("staging-*"))
