"""atomic_write: all or nothing, ordinary permissions, umask untouched, fsync of file and directory."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

import prfnet
from prfnet.ioutil import atomic_write, write_csv


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("half")
        f.flush()
        raise RuntimeError("crash while writing")
    assert path.read_text() == "old\n"
    assert _names(tmp_path) == ["out.csv"]


def test_failed_binary_write_to_a_new_path_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "m.bin", "wb") as f:
        f.write(b"\0" * 100_000)
        raise KeyboardInterrupt
    assert _names(tmp_path) == []


def test_the_temporary_is_a_hidden_unique_file_beside_the_target(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with atomic_write(path) as first, atomic_write(path) as second:
        first.write("first")
        second.write("second")
        temporaries = [n for n in _names(tmp_path) if n != "out.json"]
        assert len(temporaries) == 2 and all(re.fullmatch(r"\.out\.json\.[0-9a-f]{16}\.tmp", n) for n in temporaries)
        assert path.read_text() == "old"  # nothing visible until the block ends
    assert path.read_text() == "first"  # the outer write finished last
    assert _names(tmp_path) == ["out.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077], ids=oct)
def test_permissions_follow_the_umask_which_is_never_touched(tmp_path, monkeypatch, umask):
    """Changing the umask (even to restore it) races with every thread creating files at the same time."""
    before = os.umask(umask)
    try:

        def no_umask(*args):
            raise AssertionError("atomic_write must not call os.umask")

        monkeypatch.setattr(os, "umask", no_umask)
        with atomic_write(tmp_path / "sub" / "new.txt") as f:
            f.write("data")
        monkeypatch.undo()
    finally:
        assert os.umask(before) == umask  # the umask is still the one the test set
    path = tmp_path / "sub" / "new.txt"
    assert path.read_text() == "data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_file_is_fsynced_before_the_rename_and_directory_after(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")
    calls = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        st = os.fstat(fd)
        calls.append((stat.S_ISDIR(st.st_mode), st.st_ino, path.read_text()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_write(path) as f:
        f.write("new")
    monkeypatch.undo()
    assert calls == [
        (False, path.stat().st_ino, "old"),  # the new file's data, while the target still holds the old one
        (True, tmp_path.stat().st_ino, "new"),  # the directory entry, once renamed
    ]


def test_failing_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def failing_fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"), atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "old" and _names(tmp_path) == ["out.txt"]


def test_failing_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def failing_replace(src, dst):
        raise PermissionError(errno.EACCES, "denied")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError), atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "old" and _names(tmp_path) == ["out.txt"]


def test_directory_fsync_unsupported_is_not_an_error(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def no_directory_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", no_directory_fsync)
    with atomic_write(tmp_path / "out.txt") as f:
        f.write("new")
    assert (tmp_path / "out.txt").read_text() == "new"


def test_text_options_and_bad_modes(tmp_path):
    with atomic_write(tmp_path / "a.csv", newline="", encoding="utf-8") as f:
        f.write("é\r\n")
    assert (tmp_path / "a.csv").read_bytes() == "é\r\n".encode()
    for mode in ("a", "r", "w+"):
        with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "b.csv", mode):
            pass
    with pytest.raises(TypeError), atomic_write(tmp_path / "c.csv", no_such_option=1):
        pass
    assert _names(tmp_path) == ["a.csv"]


# every way of writing a file, and the forms allowed: into the file object of atomic_write, or in memory
_WRITES = re.compile(
    r"""open\([^)]*["'][wax]b?\+?["']|\.write_text\(|\.write_bytes\(|np\.save|torch\.save\(|save_file\(|"""
    r"""shutil\.copy|shutil\.move|\.savefig\(|\.save\(|\.to_csv\(|\.tofile\("""
)
_ALLOWED = re.compile(r"\.(save|savefig)\((f|buf),")


def test_the_package_writes_files_only_through_atomic_write():
    root = Path(prfnet.__file__).parent
    offending = []
    for source in sorted(root.rglob("*.py")):
        if source.name == "ioutil.py":
            continue
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#")[0]
            if _WRITES.search(code) and not _ALLOWED.search(code):
                offending.append(f"{source.relative_to(root)}:{number}: {line.strip()}")
    assert not offending, "write these through prfnet.ioutil.atomic_write:\n" + "\n".join(offending)


def test_write_json_is_strict_with_nan_as_null_and_numpy_scalars_as_numbers(tmp_path):
    import json

    import numpy as np

    from prfnet.ioutil import write_json

    path = write_json(
        tmp_path / "r.json",
        {"nan": float("nan"), "inf": np.float64("inf"), "f32": np.float32(0.5), "n": np.int64(3), "ok": np.bool_(1),
         "path": tmp_path, "tuple": (1, 2), 3: "key"},
    )  # fmt: skip
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "nan": None, "inf": None, "f32": 0.5, "n": 3, "ok": True, "path": str(tmp_path), "tuple": [1, 2], "3": "key",
    }  # fmt: skip
    assert _names(tmp_path) == ["r.json"]


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    import hashlib

    from prfnet.ioutil import file_sha256

    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # more than one block, not a multiple of it
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing")


def test_write_csv_writes_the_header_then_the_rows_with_newline_line_ends(tmp_path):
    path = write_csv(tmp_path / "rows.csv", ([i, f"a,{i}"] for i in range(2)), ["n", "text"])
    assert path.read_bytes() == b'n,text\n0,"a,0"\n1,"a,1"\n'
    write_csv(path, [["only"]])  # replaced whole, no header when none is given
    assert path.read_bytes() == b"only\n"
