"""Helpers shared by the synthetic sets (``prfnet.synth.common``): stale images removed only when named like ours,
the output folder checks, and integer arguments checked by name."""

from __future__ import annotations

import pytest

import prfnet.memory as memory
from prfnet.errors import ConfigError, DataError
from prfnet.memory import NotEnoughMemory
from prfnet.synth.common import OUR_IMAGE, check_int, check_set_memory, images_folder, remove_stale_images


def test_remove_stale_images_removes_only_our_names_that_this_run_did_not_write(tmp_path):
    names = ["ref_000.png", "ref_001_jpeg_q10.png", "ref_002.png", "ref_1.png", "mine.png", "ref_003.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "ref_004.png").mkdir()  # a folder named like ours is not a file: kept
    remove_stale_images(tmp_path, written={"ref_000.png"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mine.png",
        "ref_000.png",
        "ref_003.jpg",
        "ref_004.png",
        "ref_1.png",
    ]
    assert OUR_IMAGE.fullmatch("ref_001_jpeg_q10.png") and not OUR_IMAGE.fullmatch("ref_1.png")


def test_images_folder_and_check_int(tmp_path):
    out, images = images_folder(tmp_path / "set")
    assert out == tmp_path / "set" and images.is_dir() and images == out / "images"
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="not a folder"):
        images_folder(tmp_path / "file")
    assert check_int("synth", "refs", 3, 1) == 3
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(ConfigError, match="synth: refs must be an integer >= 1"):
            check_int("synth", "refs", bad, 1)


def test_check_set_memory_names_the_size_that_fits(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 1000 * 1000 * 100)
    # 10 references held (30 B/px) + 2 at work (2 x 35 B/px) = 100 B/px: 1000 px is an exact fit
    check_set_memory("a set", 1000, refs=10, working=35, concurrent=2, size_name="--size")
    with pytest.raises(
        NotEnoughMemory, match=r"^a set needs about .*; use a smaller --size \(at most about 1000 px could fit here\)"
    ):
        check_set_memory("a set", 1001, refs=10, working=35, concurrent=2, size_name="--size")
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: None)  # unreadable: never refused
    check_set_memory("a set", 10**6, refs=10, working=35, concurrent=2, size_name="--size")
