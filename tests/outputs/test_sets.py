"""OutputSet (prfnet.outputs.sets): staged then published with a manifest (every file, size, SHA-256) last, stale
files of its kinds removed, two writers into one folder, an aborted set leaving the previous one whole, sub-views in
the one manifest."""

from __future__ import annotations

import hashlib
import json

import pytest

from prfnet.errors import OutputError
from prfnet.outputs import MANIFEST, STAGING_PREFIX, OutputSet, verify_outputs
from tests.conftest import OUTPUT_KINDS, file_snapshot, publish_outputs, write_text

fcntl = pytest.importorskip("fcntl")  # the liveness of a staging folder is its flock (POSIX)


def test_files_are_staged_then_published_with_a_manifest_of_every_file(tmp_path):
    root = tmp_path / "out"
    files = {"results.json": '{"a": 1}\n', "submission_psnr.csv": "O,A,B,0\n", "data/images/x.txt": "x" * 5000}
    with OutputSet(root, OUTPUT_KINDS) as sink:
        for name, text in files.items():
            write_text(sink.path(name), text)
            assert sink.path(name).parent.is_relative_to(sink.staging)  # written into the staging folder
        assert sink.staging.name.startswith(STAGING_PREFIX) and sink.staging.parent == root
        assert not (root / "results.json").exists() and not (root / MANIFEST).exists()  # nothing published yet
        assert sink.final("results.json") == root / "results.json"
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == "prfnet-outputs" and manifest["run_id"] == sink.run_id
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(files)
    for name, text in files.items():
        data = text.encode()
        assert (root / name).read_bytes() == data
        assert listed[name]["size"] == len(data)
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # staging folder gone
    assert verify_outputs(root) == manifest


def test_a_new_set_removes_stale_files_of_its_kinds_and_keeps_others(tmp_path):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "1\n", "submission_ssim.csv": "old\n", "data/a.txt": "a"})
    write_text(root / "notes.txt", "the user's own file\n")
    publish_outputs(root, {"results.json": "2\n", "submission_psnr.csv": "new\n"})
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "notes.txt", "results.json", "submission_psnr.csv"]
    assert (root / "results.json").read_text() == "2\n"
    verify_outputs(root)


def test_two_writers_into_one_folder_leave_the_last_published_set_whole(tmp_path):
    root = tmp_path / "out"
    first, second = OutputSet(root, OUTPUT_KINDS).open(), OutputSet(root, OUTPUT_KINDS).open()
    assert first.staging != second.staging and first.staging.is_dir() and second.staging.is_dir()
    write_text(first.path("results.json"), "first\n")
    write_text(first.path("submission_a.csv"), "first\n")
    write_text(second.path("results.json"), "second\n")
    write_text(second.path("submission_b.csv"), "second\n")
    first.commit()
    assert second.staging.is_dir()  # the other run's staging folder is alive: left alone
    assert verify_outputs(root)["run_id"] == first.run_id
    second.commit()
    manifest = verify_outputs(root)
    assert manifest["run_id"] == second.run_id
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "results.json", "submission_b.csv"]
    assert (root / "results.json").read_text() == "second\n"


def test_an_error_inside_the_block_leaves_the_previous_set_intact(tmp_path):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "old\n", "submission_psnr.csv": "old\n"})
    before = file_snapshot(root)
    with pytest.raises(RuntimeError, match="crash"), OutputSet(root, OUTPUT_KINDS) as sink:
        write_text(sink.path("results.json"), "new\n")
        raise RuntimeError("crash while writing")
    assert file_snapshot(root) == before and not sink.staging.exists()
    with (
        pytest.raises(OutputError, match="previous outputs there are unchanged"),
        OutputSet(root, OUTPUT_KINDS) as sink,
    ):
        write_text(sink.path("results.json"), "new\n")
        raise OSError(28, "No space left on device")  # a full disk: one line, the old set kept
    assert file_snapshot(root) == before
    verify_outputs(root)


def test_an_aborted_set_in_a_new_folder_removes_the_folder(tmp_path):
    root = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), OutputSet(root, OUTPUT_KINDS) as sink:
        write_text(sink.path("results.json"), "new\n")
        raise KeyboardInterrupt
    assert not root.exists()


def test_publish_now_and_a_sub_view_are_listed_in_the_one_manifest(tmp_path):
    root = tmp_path / "out"
    with OutputSet(root, (*OUTPUT_KINDS, "eval")) as sink:
        write_text(sink.path("data/oracle.csv"), "O,A,B,0\n")
        sink.publish_now("data")  # in place before the rest (the demo's data, read by a training run)
        assert (root / "data" / "oracle.csv").is_file() and not (root / MANIFEST).exists()
        view = sink.sub("eval")
        with view.writing() as part:
            write_text(part.path("results.json"), "{}\n")
        assert view.final("results.json") == root / "eval" / "results.json"
    listed = {entry["path"] for entry in verify_outputs(root)["files"]}
    assert listed == {"data/oracle.csv", "eval/results.json"}
