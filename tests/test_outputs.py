"""OutputSet directly: staged then published, the manifest (every file, size, SHA-256) last, stale staging folders of
dead writers removed, two writers into one folder, SIGINT/SIGTERM held while the set is moved into place, an aborted
set leaving the previous one whole."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from pathlib import Path

import pytest

import prfnet.outputs.sets as outputs_module
from prfnet.errors import DataError, OutputError
from prfnet.outputs import MANIFEST, STAGING_PREFIX, OutputSet, verify_outputs

fcntl = pytest.importorskip("fcntl")  # the liveness of a staging folder is its flock (POSIX)

OWN = ("results.json", "report.html", "submission_*.csv", "data")


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _publish(root: Path, files: dict[str, str]) -> dict:
    with OutputSet(root, OWN) as sink:
        for name, text in files.items():
            _write(sink.path(name), text)
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_files_are_staged_then_published_with_a_manifest_of_every_file(tmp_path):
    root = tmp_path / "out"
    files = {"results.json": '{"a": 1}\n', "submission_psnr.csv": "O,A,B,0\n", "data/images/x.txt": "x" * 5000}
    with OutputSet(root, OWN) as sink:
        for name, text in files.items():
            _write(sink.path(name), text)
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


def test_verify_outputs_refuses_a_changed_file_and_a_folder_without_manifest(tmp_path):
    root = tmp_path / "out"
    _publish(root, {"results.json": "{}\n"})
    _write(root / "results.json", '{"other": "run"}\n')
    with pytest.raises(DataError, match="results.json"):
        verify_outputs(root)
    (root / MANIFEST).unlink()
    with pytest.raises(DataError, match="no manifest.json"):
        verify_outputs(root)


def test_a_new_set_removes_stale_files_of_its_kinds_and_keeps_others(tmp_path):
    root = tmp_path / "out"
    _publish(root, {"results.json": "1\n", "submission_ssim.csv": "old\n", "data/a.txt": "a"})
    _write(root / "notes.txt", "the user's own file\n")
    _publish(root, {"results.json": "2\n", "submission_psnr.csv": "new\n"})
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "notes.txt", "results.json", "submission_psnr.csv"]
    assert (root / "results.json").read_text() == "2\n"
    verify_outputs(root)


def test_the_folder_is_checked_once_before_any_work(tmp_path, monkeypatch):
    checks = []
    real = outputs_module.check_output_dir
    monkeypatch.setattr(outputs_module, "check_output_dir", lambda *a: checks.append(a) or real(*a))
    outputs = OutputSet(tmp_path / "new" / "out", OWN).check()
    assert outputs.checked and len(checks) == 1
    assert not (tmp_path / "new").exists()  # the check creates nothing it leaves behind
    with outputs.writing() as sink:
        _write(sink.path("results.json"), "{}\n")
    assert len(checks) == 1  # opening a checked set does not check again
    verify_outputs(tmp_path / "new" / "out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        OutputSet(blocker, OWN).check()


def test_a_stale_staging_folder_of_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    dead = root / f"{STAGING_PREFIX}20250101T000000Z-1-dead00"
    (dead / "data").mkdir(parents=True)
    _write(dead / "results.json", "half")
    tmp_file = root / ".results.json.0123456789abcdef.tmp"  # an atomic_write temporary of a killed run
    _write(tmp_file, "half")
    live = root / f"{STAGING_PREFIX}20250101T000000Z-2-live00"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the run writing into it holds it
        _publish(root, {"results.json": "{}\n"})
        assert not dead.exists() and not tmp_file.exists()
        assert live.is_dir()
    finally:
        os.close(fd)
    _publish(root, {"results.json": "{}\n"})  # its writer is gone now
    assert not live.exists()


def test_two_writers_into_one_folder_leave_the_last_published_set_whole(tmp_path):
    root = tmp_path / "out"
    first, second = OutputSet(root, OWN).open(), OutputSet(root, OWN).open()
    assert first.staging != second.staging and first.staging.is_dir() and second.staging.is_dir()
    _write(first.path("results.json"), "first\n")
    _write(first.path("submission_a.csv"), "first\n")
    _write(second.path("results.json"), "second\n")
    _write(second.path("submission_b.csv"), "second\n")
    first.commit()
    assert second.staging.is_dir()  # the other run's staging folder is alive: left alone
    assert verify_outputs(root)["run_id"] == first.run_id
    second.commit()
    manifest = verify_outputs(root)
    assert manifest["run_id"] == second.run_id
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "results.json", "submission_b.csv"]
    assert (root / "results.json").read_text() == "second\n"


def test_a_commit_waits_for_the_lock_another_writer_holds_on_the_folder(tmp_path, monkeypatch):
    root = tmp_path / "out"
    sink = OutputSet(root, OWN).open()
    _write(sink.path("results.json"), "{}\n")
    reached = threading.Event()
    real_flock = fcntl.flock

    def flock(fd, operation):
        if operation == fcntl.LOCK_EX and os.path.samestat(os.fstat(fd), os.stat(root)):
            reached.set()  # the commit asks for the folder's lock now
        return real_flock(fd, operation)

    monkeypatch.setattr(outputs_module.fcntl, "flock", flock)
    other = os.open(root, os.O_RDONLY)
    real_flock(other, fcntl.LOCK_EX)  # another run is moving its set into place
    errors = []
    thread = threading.Thread(target=lambda: _commit(sink, errors))
    try:
        thread.start()
        reached.wait()
        assert not (root / MANIFEST).exists() and not (root / "results.json").exists()  # blocked on the lock
    finally:
        real_flock(other, fcntl.LOCK_UN)
        os.close(other)
        thread.join()
    assert errors == [] and verify_outputs(root)["run_id"] == sink.run_id


def _commit(sink: OutputSet, errors: list) -> None:
    try:
        sink.commit()
    except BaseException as exc:  # reported to the test's thread
        errors.append(exc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_move_is_held_until_the_set_is_complete(tmp_path, monkeypatch, signum):
    root = tmp_path / "out"
    _publish(root, {"results.json": "old\n"})
    received = []
    previous = signal.signal(signum, lambda got, _frame: received.append((got, (root / MANIFEST).is_file())))
    real_move = OutputSet._move_into_place
    during = []

    def move(self, name):
        if not during:  # the first move into place: the signal comes from another thread, to the process
            sender = threading.Thread(target=os.kill, args=(os.getpid(), signum))
            sender.start()
            sender.join()
            during.append(list(received))
        real_move(self, name)

    monkeypatch.setattr(OutputSet, "_move_into_place", move)
    try:
        with OutputSet(root, OWN) as sink:
            _write(sink.path("results.json"), "new\n")
            _write(sink.path("submission_psnr.csv"), "new\n")
        after = list(received)
    finally:
        signal.signal(signum, previous)
    assert during == [[]]  # not delivered while the files were being moved
    assert after == [(signum, True)]  # delivered once, after the manifest was in place
    assert verify_outputs(root)["run_id"] == sink.run_id
    assert (root / "results.json").read_text() == "new\n"
    assert signal.getsignal(signum) is previous  # the handler in force before is back


def test_an_error_inside_the_block_leaves_the_previous_set_intact(tmp_path):
    root = tmp_path / "out"
    _publish(root, {"results.json": "old\n", "submission_psnr.csv": "old\n"})
    before = _snapshot(root)
    with pytest.raises(RuntimeError, match="crash"), OutputSet(root, OWN) as sink:
        _write(sink.path("results.json"), "new\n")
        raise RuntimeError("crash while writing")
    assert _snapshot(root) == before and not sink.staging.exists()
    with pytest.raises(OutputError, match="previous outputs there are unchanged"), OutputSet(root, OWN) as sink:
        _write(sink.path("results.json"), "new\n")
        raise OSError(28, "No space left on device")  # a full disk: one line, the old set kept
    assert _snapshot(root) == before
    verify_outputs(root)


def test_an_aborted_set_in_a_new_folder_removes_the_folder(tmp_path):
    root = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), OutputSet(root, OWN) as sink:
        _write(sink.path("results.json"), "new\n")
        raise KeyboardInterrupt
    assert not root.exists()


def test_publish_now_and_a_sub_view_are_listed_in_the_one_manifest(tmp_path):
    root = tmp_path / "out"
    with OutputSet(root, (*OWN, "eval")) as sink:
        _write(sink.path("data/oracle.csv"), "O,A,B,0\n")
        sink.publish_now("data")  # in place before the rest (the demo's data, read by a training run)
        assert (root / "data" / "oracle.csv").is_file() and not (root / MANIFEST).exists()
        view = sink.sub("eval")
        with view.writing() as part:
            _write(part.path("results.json"), "{}\n")
        assert view.final("results.json") == root / "eval" / "results.json"
    listed = {entry["path"] for entry in verify_outputs(root)["files"]}
    assert listed == {"data/oracle.csv", "eval/results.json"}


# ------------------------------------------------------------------------------- what the user owns is never touched


@pytest.mark.parametrize(
    "theirs",
    [
        {"results.json": "my notes\n"},  # a file of the user's under one of our names
        {"data/mine.txt": "mine\n"},  # a folder of the user's under one of our names
        {"submission_psnr.csv": "mine\n"},  # a pattern of ours matching a user's file
        {MANIFEST: '{"mine": true}\n'},  # a manifest.json that is not prfnet's
    ],
)
def test_a_file_prfnet_did_not_write_is_refused_before_work_and_left_as_it_is(tmp_path, theirs):
    root = tmp_path / "out"
    for name, text in theirs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        _write(root / name, text)
    before = _snapshot(root)
    with pytest.raises(OutputError, match="in the way: prfnet did not write it") as info:
        OutputSet(root, OWN).check()
    assert str(root / next(iter(theirs)).split("/")[0]) in str(info.value)
    assert _snapshot(root) == before and not any(p.name.startswith(".") for p in root.iterdir())


def test_files_of_an_earlier_run_are_replaced_and_stale_ones_removed(tmp_path):
    root = tmp_path / "out"
    _publish(root, {"results.json": "1\n", "submission_ssim.csv": "x\n", "data/a.txt": "a\n"})
    _write(root / "notes.txt", "the user's, not of our kinds\n")
    _publish(root, {"results.json": "2\n"})
    assert (root / "results.json").read_text() == "2\n"
    assert not (root / "submission_ssim.csv").exists() and not (root / "data").exists()
    assert (root / "notes.txt").read_text() == "the user's, not of our kinds\n"


@pytest.mark.parametrize("change", ["edit", "add"])
def test_an_output_changed_by_the_user_since_it_was_published_is_theirs_now(tmp_path, change):
    root = tmp_path / "out"
    _publish(root, {"results.json": "1\n", "data/a.txt": "a\n"})
    if change == "edit":
        _write(root / "results.json", "edited by hand\n")
    else:
        _write(root / "data/added.txt", "added by hand\n")
    before = _snapshot(root)
    with pytest.raises(OutputError, match="in the way"):
        _publish(root, {"results.json": "2\n"})
    assert _snapshot(root) == before


def test_a_file_put_in_the_way_during_the_run_is_refused_at_publication(tmp_path):
    root = tmp_path / "out"
    sink = OutputSet(root, OWN).open()
    _write(sink.path("results.json"), "ours\n")
    _write(root / "report.html", "the user's, written while the run was scoring\n")
    with pytest.raises(OutputError, match="report.html is in the way"):
        sink.commit()
    sink.abort()
    assert (root / "report.html").read_text().startswith("the user's")
    assert not (root / "results.json").exists() and not list(root.glob(f"{STAGING_PREFIX}*"))


def test_an_interrupted_publication_leaves_a_journal_that_the_next_run_trusts(tmp_path, monkeypatch):
    root = tmp_path / "out"
    _publish(root, {"results.json": "1\n", "data/a.txt": "a\n"})
    sink = OutputSet(root, OWN).open()
    _write(sink.path("results.json"), "2\n")
    _write(sink.path("report.html"), "<p>2</p>\n")
    real = OutputSet._move_into_place
    moved = []

    def die_after_the_first_move(self, name):
        real(self, name)
        moved.append(name)
        raise KeyboardInterrupt  # as if killed half-way: one file moved, no manifest

    monkeypatch.setattr(OutputSet, "_move_into_place", die_after_the_first_move)
    with pytest.raises(KeyboardInterrupt):
        sink.commit()
    sink.abort()
    monkeypatch.undo()
    assert moved and not (root / MANIFEST).exists()  # no complete set, but the journal names every file
    _publish(root, {"results.json": "3\n"})  # accepted: everything in the way was written by prfnet
    assert (root / "results.json").read_text() == "3\n" and not (root / "data").exists()
    assert not (root / ".prfnet-owned.json").exists()


def test_an_input_below_an_output_name_is_refused(tmp_path):
    root = tmp_path / "out"
    _publish(root, {"data/table.csv": "ref,dist,score\n"})
    outputs = OutputSet(root, OWN).check()
    with pytest.raises(OutputError, match="lies where this run writes its output"):
        outputs.refuse_inputs([root / "data" / "table.csv"], "--csv")
    outputs.refuse_inputs([root / "elsewhere.csv", tmp_path / "x.png"])  # not of our kinds: fine
