"""The output folder under an OutputSet (prfnet.outputs.folder): checked once before any work, stale staging
folders of dead writers removed (live ones kept), its lock waited for, SIGINT/SIGTERM held while a set moves into
place."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import prfnet.outputs.sets as outputs_module
from prfnet.errors import OutputError
from prfnet.outputs import MANIFEST, STAGING_PREFIX, OutputSet, verify_outputs
from tests.conftest import OUTPUT_KINDS, publish_outputs, write_text

fcntl = pytest.importorskip("fcntl")  # the liveness of a staging folder is its flock (POSIX)


def test_the_folder_is_checked_once_before_any_work(tmp_path, monkeypatch):
    checks = []
    real = outputs_module.check_output_dir
    monkeypatch.setattr(outputs_module, "check_output_dir", lambda *a: checks.append(a) or real(*a))
    outputs = OutputSet(tmp_path / "new" / "out", OUTPUT_KINDS).check()
    assert outputs.checked and len(checks) == 1
    assert not (tmp_path / "new").exists()  # the check creates nothing it leaves behind
    with outputs.writing() as sink:
        write_text(sink.path("results.json"), "{}\n")
    assert len(checks) == 1  # opening a checked set does not check again
    verify_outputs(tmp_path / "new" / "out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        OutputSet(blocker, OUTPUT_KINDS).check()


def test_a_stale_staging_folder_of_a_dead_writer_is_removed_and_a_live_one_kept(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    dead = root / f"{STAGING_PREFIX}20250101T000000Z-1-dead00"
    (dead / "data").mkdir(parents=True)
    write_text(dead / "results.json", "half")
    tmp_file = root / ".results.json.0123456789abcdef.tmp"  # an atomic_write temporary of a killed run
    write_text(tmp_file, "half")
    live = root / f"{STAGING_PREFIX}20250101T000000Z-2-live00"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the run writing into it holds it
        publish_outputs(root, {"results.json": "{}\n"})
        assert not dead.exists() and not tmp_file.exists()
        assert live.is_dir()
    finally:
        os.close(fd)
    publish_outputs(root, {"results.json": "{}\n"})  # its writer is gone now
    assert not live.exists()


def test_a_commit_waits_for_the_lock_another_writer_holds_on_the_folder(tmp_path, monkeypatch):
    root = tmp_path / "out"
    sink = OutputSet(root, OUTPUT_KINDS).open()
    write_text(sink.path("results.json"), "{}\n")
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
    publish_outputs(root, {"results.json": "old\n"})
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
        with OutputSet(root, OUTPUT_KINDS) as sink:
            write_text(sink.path("results.json"), "new\n")
            write_text(sink.path("submission_psnr.csv"), "new\n")
        after = list(received)
    finally:
        signal.signal(signum, previous)
    assert during == [[]]  # not delivered while the files were being moved
    assert after == [(signum, True)]  # delivered once, after the manifest was in place
    assert verify_outputs(root)["run_id"] == sink.run_id
    assert (root / "results.json").read_text() == "new\n"
    assert signal.getsignal(signum) is previous  # the handler in force before is back
