"""atomic_write: all or nothing, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from prfnet.ioutil import atomic_write


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write("half")
        raise RuntimeError("crash while writing")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_successful_write_replaces_with_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "sub" / "new.txt") as f:
            f.write("data")
    finally:
        os.umask(umask)
    path = tmp_path / "sub" / "new.txt"
    assert path.read_text() == "data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
