"""The persistent score store (prfnet.store): round trips, the digest cache, SIGKILL, concurrent writers, errors."""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import prfnet.store
from prfnet.errors import DataError, ImageReadError, OutputError
from prfnet.store import DEFAULT_STORE, SCHEMA_VERSION, ScoreStore, file_digest, resolve_store

# The writer subprocesses load prfnet.store without running prfnet/__init__.py, which imports torch (seconds on a
# busy machine): the store needs only the standard library and prfnet.errors.
PACKAGE = str(Path(prfnet.store.__file__).resolve().parent)
PRELUDE = (
    "import sys, types\n"
    f"pkg = types.ModuleType('prfnet'); pkg.__path__ = [{PACKAGE!r}]; sys.modules['prfnet'] = pkg\n"
    "from prfnet.store import ScoreStore\n"
)
# argv: store first last batch go_file|- hold|exit. Writes keys first..last-1 in batches, one line per commit.
WRITER = PRELUDE + (
    "import os, time\n"
    "db, first, last, batch, go, hold = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], sys.argv[6]\n"
    "print('ready', flush=True)\n"
    "while go != '-' and not os.path.exists(go):\n"
    "    time.sleep(0.002)\n"
    "new = 0\n"
    "with ScoreStore(db) as store:\n"
    "    for b in range(first, last, batch):\n"
    "        stop = min(b + batch, last)\n"
    "        new += store.add([('m', f'r{i // 10}', f'd{i}', (i * 7919 % 1009) / 1009) for i in range(b, stop)])\n"
    "        print('committed', b, flush=True)\n"
    "print('new', new, flush=True)\n"
    "if hold == 'hold':\n"
    "    time.sleep(600)\n"
)


def row(i: int) -> tuple[str, str, str, float]:
    """The row of key i, as the writer subprocess builds it."""
    return ("m", f"r{i // 10}", f"d{i}", (i * 7919 % 1009) / 1009)


def start_writer(db: Path, first: int, last: int, batch: int, go: str = "-", hold: str = "exit"):
    args = [sys.executable, "-c", WRITER, str(db), str(first), str(last), str(batch), go, hold]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n", proc.communicate(timeout=30)
    return proc


def check_rows(db: Path) -> int:
    """Every stored row is a writer's row (right score for its key), no key twice; returns the row count."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT metric, ref, dist, score FROM scores").fetchall()
        distinct = conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT metric, ref, dist FROM scores)").fetchone()[0]
    conn.close()
    for metric, ref, dist, score in rows:
        assert (metric, ref, dist, score) == row(int(dist[1:]))
    assert distinct == len(rows)
    return len(rows)


# -- round trips -------------------------------------------------------------------------------------------------


def test_round_trip_nan_and_first_value_kept(tmp_path):
    db = tmp_path / "deep" / "er" / "scores.db"
    with ScoreStore(db) as store:
        assert store.path == db and db.is_file()
        store.register_metric("psnr", "PSNR in dB")
        store.register_metric("prfnet:abc", "PRFNet, checkpoint abc")
        store.register_metric("psnr", "a second description is ignored")
        assert store.add([("psnr", "r1", "d1", 31.5), ("psnr", "r1", "d2", float("nan")), ("other", "r1", "d1", -2)])
        assert store.add([("psnr", "r1", "d1", 99.0), ("psnr", "r1", "d2", 1.0)]) == 0  # kept, no duplicate
        assert store.add([("psnr", "r1", "d1", 99.0), ("psnr", "r2", "d1", 7.0)]) == 1
        assert store.add([]) == 0
        got = store.lookup("psnr", [("r1", "d1"), ("r1", "d2"), ("r2", "d1"), ("r9", "d9"), ("d1", "r1")])
        assert set(got) == {("r1", "d1"), ("r1", "d2"), ("r2", "d1")}
        assert got[("r1", "d1")] == 31.5 and got[("r2", "d1")] == 7.0 and math.isnan(got[("r1", "d2")])
        assert store.lookup("other", [("r1", "d1"), ("r1", "d2")]) == {("r1", "d1"): -2.0}
        assert store.lookup("unknown", [("r1", "d1")]) == {}
        assert store.count() == 4 and store.count("psnr") == 3 and store.count("nothing") == 0
        assert store.metrics() == {"other": 1, "prfnet:abc": 0, "psnr": 3}
    with ScoreStore(db) as store:  # reopened: everything persisted
        assert store.count() == 4
        assert math.isnan(store.lookup("psnr", [("r1", "d2")])[("r1", "d2")])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
        assert conn.execute("SELECT description FROM metrics WHERE metric = 'psnr'").fetchone()[0] == "PSNR in dB"
        assert conn.execute("SELECT score FROM scores WHERE dist = 'd2'").fetchone()[0] is None  # NaN stored as NULL
    conn.close()


def test_lookup_of_20k_keys(tmp_path):
    keys = [(f"{i // 7:064x}", f"{i:064x}") for i in range(20_000)]
    scores = [math.nan if i % 101 == 0 else i / 3 for i in range(20_000)]
    with ScoreStore(tmp_path / "s.db") as store:
        assert store.add(("m", r, d, s) for (r, d), s in zip(keys, scores, strict=True)) == 20_000
        store.add([("other", r, d, -1.0) for r, d in keys[:50]])
        missing = [(f"{i:064x}", "0" * 64) for i in range(1, 300)]
        got = store.lookup("m", keys[::-1] + missing + keys[:10])  # any order, missing keys, repeated keys
        assert len(got) == 20_000
        for key, s in zip(keys, scores, strict=True):
            assert (math.isnan(got[key]) and math.isnan(s)) or got[key] == s


# -- digests ------------------------------------------------------------------------------------------------------


def test_digests_same_bytes_changed_file_and_cache(tmp_path, monkeypatch):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    a.write_bytes(b"x" * 3_000_000)  # more than one 1 MiB block
    b.write_bytes(b"x" * 3_000_000)
    c.write_bytes(b"y" * 10)
    assert file_digest(a) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    reads = []

    def counting(path):
        reads.append(str(path))
        return file_digest(path)

    monkeypatch.setattr(prfnet.store, "file_digest", counting)
    db = tmp_path / "s.db"
    with ScoreStore(db) as store:
        first = store.digests([a, str(b), str(c), a])
        assert set(first) == {str(a), str(b), str(c)}  # keyed by the path string as given
        assert first[str(a)] == first[str(b)] != first[str(c)]
        assert sorted(reads) == sorted([str(a), str(b), str(c)])
        reads.clear()
        assert store.digests([c, b, a]) == first  # cached: nothing read
        assert reads == []
        c.write_bytes(b"z" * 10)  # same size, other bytes, another mtime
        st = c.stat()
        os.utime(c, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        again = store.digests([a, b, c])
        assert reads == [str(c)]
        assert again[str(c)] == hashlib.sha256(b"z" * 10).hexdigest() != first[str(c)]
    reads.clear()
    with ScoreStore(db) as store:  # the cache persists
        monkeypatch.chdir(tmp_path)  # relative paths: the cache is keyed by the absolute path
        assert store.digests(["a.png", "c.png"]) == {"a.png": first[str(a)], "c.png": again[str(c)]}
        assert reads == []
        with pytest.raises(ImageReadError, match="missing.png"):
            store.digests([a, tmp_path / "missing.png"])


# -- crashes and concurrent writers ---------------------------------------------------------------------------------


def test_sigkill_loses_at_most_the_batch_in_flight_and_resumes(tmp_path):
    db, total = tmp_path / "s.db", 100_000
    proc = start_writer(db, 0, total, 50, hold="hold")
    try:
        for _ in range(3):
            line = proc.stdout.readline()
            assert line.startswith("committed"), (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    n = check_rows(db)
    assert n >= 150 and n % 50 == 0  # every printed commit is there, no partial batch
    with ScoreStore(db) as store:
        assert store.count() == n
        new = sum(store.add([row(i) for i in range(b, b + 50)]) for b in range(0, total, 50))
        assert new == total - n
        assert store.count() == total == store.metrics()["m"]
    assert check_rows(db) == total


def test_two_processes_write_overlapping_keys(tmp_path):
    db, go = tmp_path / "s.db", tmp_path / "go"
    procs = [start_writer(db, 0, 3000, 100, str(go)), start_writer(db, 1500, 4500, 100, str(go))]
    go.touch()  # both are running: they now open the (not yet created) store and write at the same time
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert err == ""
    new = [int(out.splitlines()[-1].split()[1]) for out, _ in outs]
    assert sum(new) == 4500 and min(new) >= 1500  # each wrote at least its own half; the overlap once in all
    assert check_rows(db) == 4500
    with ScoreStore(db) as store:
        assert store.count("m") == 4500


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_and_pickled_copy_open_their_own_connection(tmp_path):
    with ScoreStore(tmp_path / "s.db") as store:
        store.add([row(0)])
        assert store.lookup("m", [row(0)[1:3]])  # the parent's connection is open
        pid = os.fork()
        if pid == 0:  # the child: only os._exit, never back into pytest
            code = 1
            try:
                code = 0 if store.add([row(i) for i in range(1, 11)]) == 10 and store.count() == 11 else 3
                store.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.add([row(i) for i in range(5, 20)]) == 9  # the parent's connection still works
        assert store.count() == 20
        copy = pickle.loads(pickle.dumps(store))  # spawned DataLoader workers get a pickled copy
        assert copy.path == store.path and copy.add([row(20)]) == 1 and store.count() == 21
        copy.close()
        assert store.count() == 21
    assert check_rows(tmp_path / "s.db") == 21


# -- errors -----------------------------------------------------------------------------------------------------


def test_directory_and_non_database_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        ScoreStore(tmp_path)
    text = tmp_path / "notes.db"
    text.write_text("these are not the scores you are looking for\n" * 100)
    with pytest.raises(DataError, match="notes.db.*not an SQLite database"):
        ScoreStore(text)
    assert text.read_text().startswith("these are not")


def test_foreign_sqlite_database_is_a_data_error_and_left_unchanged(tmp_path):
    db = tmp_path / "foreign.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE scores(a, b)")
    conn.close()
    with pytest.raises(DataError, match="foreign.db.*not a prfnet score store"):
        ScoreStore(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["scores"]
    conn.close()


def test_newer_schema_is_a_data_error(tmp_path):
    db = tmp_path / "s.db"
    ScoreStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(DataError, match=r"s\.db: written by a newer prfnet.*upgrade prfnet"):
        ScoreStore(db)


def test_file_in_place_of_the_folder_is_an_output_error(tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(OutputError, match="taken"):
        ScoreStore(tmp_path / "taken" / "s.db")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="chmod does not restrict root")
def test_read_only_folder_is_an_output_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="ro"):
            ScoreStore(folder / "s.db")
        with pytest.raises(OutputError, match="ro"):
            ScoreStore(folder / "sub" / "s.db")
    finally:
        folder.chmod(0o755)


def test_closed_store_and_bad_metric_ids(tmp_path):
    store = ScoreStore(tmp_path / "s.db")
    with pytest.raises(ValueError, match="metric id"):
        store.add([("", "r", "d", 1.0)])
    with pytest.raises(ValueError, match="metric id"):
        store.lookup(None, [("r", "d")])  # type: ignore[arg-type]
    store.close()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.count()


def test_shards_of_a_multi_process_run_are_merged_and_removed(tmp_path):
    from prfnet.store import ScoreStore

    main = ScoreStore(tmp_path / "scores.sqlite")
    main.add([("m", "r", "d0", 1.0)])
    for rank in (0, 1):  # what two processes write: their own files, rollback journal
        with ScoreStore(main.shard_path(rank), wal=False) as shard:
            shard.register_metric("m", "a metric")
            shard.add([("m", "r", f"d{rank}", 10.0 + rank), ("m", "r", f"e{rank}", 20.0 + rank)])
    stray = tmp_path / "scores.sqlite.rank-notashard"
    stray.write_text("left alone")
    assert main.absorb_shards() == 3  # d0 was already here: it keeps its first score
    assert main.lookup("m", [("r", "d0"), ("r", "d1"), ("r", "e0"), ("r", "e1")]) == {
        ("r", "d0"): 1.0, ("r", "d1"): 11.0, ("r", "e0"): 20.0, ("r", "e1"): 21.0,
    }  # fmt: skip
    assert not main.shard_path(0).exists() and not main.shard_path(1).exists() and stray.exists()
    assert main.absorb_shards() == 0
    main.close()


# -- which store a run uses ----------------------------------------------------------------------------------------


def test_resolve_store_one_rule_for_every_run(tmp_path):
    out = tmp_path / "out"
    assert resolve_store(DEFAULT_STORE, out) == out / "scores.sqlite"  # the default: beside the run's outputs
    assert resolve_store(DEFAULT_STORE, None) is None  # a run that writes no folder keeps no store
    assert resolve_store(None, out) is None  # no store
    assert resolve_store(str(tmp_path / "s.db"), out) == tmp_path / "s.db"
    with ScoreStore(tmp_path / "open.db") as store:
        assert resolve_store(store, out) is store
    assert not out.exists() and not (tmp_path / "s.db").exists()  # resolving creates nothing
    assert pickle.loads(pickle.dumps(DEFAULT_STORE)) is DEFAULT_STORE


def test_resolve_store_refuses_unusable_paths_now_and_leaves_them_unchanged(tmp_path):
    folder = tmp_path / "folder.db"
    folder.mkdir()
    with pytest.raises(DataError, match="is a folder"):
        resolve_store(folder, None)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t(x)")
    before = foreign.read_bytes()
    with pytest.raises(DataError, match="not a prfnet score store"):
        resolve_store(foreign, None)
    assert foreign.read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        resolve_store(blocker / "sub" / "s.db", None)
    assert resolve_store(blocker / "s.db", None, check=False) == blocker / "s.db"  # unchecked: as given
