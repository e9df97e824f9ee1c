"""Simulated CLIC-format set from real codecs (``prfnet synth --kind codecs``): formats, rates, votes, ceilings."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.cli import main
from prfnet.data.clic import read_clic_oracle, read_clic_triplets, read_kinds
from prfnet.errors import ConfigError
from prfnet.synth import codecs as cd
from prfnet.synth import distortions as sd
from prfnet.synth import judge as jd
from prfnet.synth.codec_set import FILES_HEADER, KINDS, synthesize_codec_clic

SRC = Path(__file__).resolve().parents[2] / "src"
SIZE = 256
REFS = 3
SEED = 5


@pytest.fixture(scope="module")
def codec_set(tmp_path_factory):
    return synthesize_codec_clic(tmp_path_factory.mktemp("codec_synth"), refs=REFS, size=SIZE, seed=SEED, workers=2)


def _files(summary) -> dict[str, dict[str, str]]:
    with open(summary.files_csv, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == FILES_HEADER
        return {row["image"]: row for row in reader}


def _pixels(summary, name: str) -> np.ndarray:
    with Image.open(summary.images_dir / name) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (SIZE, SIZE), name
        return np.asarray(img)


def _strict_json(path: Path) -> dict:
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_files_parse_with_the_clic_readers(codec_set):
    triplets = read_clic_triplets(codec_set.validation_csv)
    oracle = read_clic_oracle(codec_set.oracle_csv)
    kinds = read_kinds(codec_set.kinds_csv)
    keys = [t.names() for t in triplets]
    assert len(keys) == len(set(keys)) == codec_set.validation_rows == codec_set.n_keys
    assert set(keys) == set(oracle.official) == set(kinds)  # every oracle key is in validation.csv
    assert len(oracle.rows) == codec_set.oracle_rows
    assert set(kinds.values()) == set(KINDS)
    files = _files(codec_set)
    names = {n for key in keys for n in key}
    on_disk = {p.name for p in codec_set.images_dir.iterdir()}
    assert names <= on_disk and set(files) | {f"ref_{i:03d}.png" for i in range(REFS)} == on_disk
    assert len(on_disk) == codec_set.images == codec_set.distorted + REFS
    for name in sorted(names)[:6]:
        _pixels(codec_set, name)
    readme = codec_set.readme.read_text()
    assert "SIMULATED DATA, NOT HUMAN JUDGMENTS" in readme and "ceiling.json" in readme


def test_rates_are_on_target_and_files_csv_matches_the_codec(codec_set):
    files = _files(codec_set)
    assert {row["codec"] for row in files.values()} == set(codec_set.codecs) == set(cd.default_codecs())
    per_cell = defaultdict(int)
    for row in files.values():
        target, bpp = float(row["target_bpp"]), float(row["bpp"])
        assert abs(bpp / target - 1) <= 0.10, row
        per_cell[(row["reference"], row["codec"])] += 1
    assert codec_set.distorted + codec_set.unreached == REFS * len(codec_set.codecs) * len(codec_set.targets_bpp)
    # one file per codec: re-encode at the recorded parameter, same bytes count and same pixels as the PNG
    checked = set()
    for name, row in files.items():
        if row["codec"] in checked:
            continue
        checked.add(row["codec"])
        ref = _pixels(codec_set, row["reference"])
        data, decoded = cd.encode(ref, row["codec"], float(row["quality"]))
        assert cd.bits_per_pixel(data, ref.shape) == float(row["bpp"]), name
        image = _pixels(codec_set, name)
        assert np.array_equal(decoded, image), name
        assert abs(sd.psnr(ref, image) - float(row["psnr"])) < 1e-3
        assert abs(jd.judge_quality(ref, image) - float(row["judge_distance"])) < 1e-5


def test_pairs_are_two_codecs_at_one_rate_and_kinds_follow_psnr(codec_set):
    files = _files(codec_set)
    kinds = read_kinds(codec_set.kinds_csv)
    for (o, a, b), kind in kinds.items():
        fa, fb = files[a], files[b]
        assert fa["reference"] == fb["reference"] == o
        assert fa["codec"] != fb["codec"] and fa["target_bpp"] == fb["target_bpp"]
        gap = abs(float(fa["psnr"]) - float(fb["psnr"]))
        assert kind == ("psnr_close" if gap < 1.0 else "psnr_apart")
    counts = defaultdict(int)
    for t in read_clic_oracle(codec_set.oracle_csv).triplets:
        counts[kinds.get((t.ref, t.a, t.b)) or kinds[(t.ref, t.b, t.a)]] += 1
    assert dict(counts) == codec_set.kinds
    assert codec_set.kinds["psnr_close"] > codec_set.kinds["psnr_apart"] > 0  # close pairs preferred, easy kept
    assert 10 * REFS <= codec_set.triplets <= 15 * REFS


def test_votes_are_split_repeated_and_sometimes_swapped(codec_set):
    oracle = read_clic_oracle(codec_set.oracle_csv)
    assert len(oracle.triplets) == codec_set.triplets
    assert all(3 <= t.votes <= 15 for t in oracle.triplets)
    assert sum(0 < t.p_a < 1 for t in oracle.triplets) >= codec_set.triplets // 4  # split votes
    swapped = [k for k in oracle.official if (k[0], k[2], k[1]) in oracle.official]
    assert 0 < len(swapped) // 2 < codec_set.triplets  # both orientations for some triplets, not all
    assert len({triplet.names() for triplet, _ in oracle.rows}) < len(oracle.rows)  # keys repeat


def test_ceiling_json_is_strict_and_psnr_is_below_ceiling_on_close_pairs(codec_set):
    ceiling = _strict_json(codec_set.ceiling_json)
    assert ceiling["simulated"] is True and ceiling["n_keys"] == codec_set.n_keys
    judge = ceiling["judge"]["accuracy"]
    assert 0.5 < judge < 1
    assert judge <= ceiling["noise_ceiling"]["ceiling"] <= 1
    assert set(ceiling["by_kind"]) == set(KINDS)
    assert sum(v["n_keys"] for v in ceiling["by_kind"].values()) == ceiling["n_keys"]
    expected = ceiling["expected_accuracy"]  # the judge is the votes' own model: best in expectation
    assert 0.5 < expected["psnr"] <= expected["judge"] < 1
    assert ceiling["judge_minus_psnr"]["n_groups"] == REFS

    # PSNR from the PNGs with numpy, submitted as the devkit's baseline: T = 1 when PSNR(O, A) < PSNR(O, B)
    official = read_clic_oracle(codec_set.oracle_csv).official
    kinds = read_kinds(codec_set.kinds_csv)
    psnr = {}
    for o, a, b in official:
        for x in (a, b):
            if (o, x) not in psnr:
                psnr[(o, x)] = sd.psnr(_pixels(codec_set, o), _pixels(codec_set, x))
    close = [k for k in official if kinds[k] == "psnr_close"]
    correct = [int(psnr[(k[0], k[1])] < psnr[(k[0], k[2])]) == official[k] for k in close]
    accuracy = sum(correct) / len(close)
    by_kind = ceiling["by_kind"]["psnr_close"]
    assert by_kind["n_keys"] == len(close)
    assert abs(accuracy - by_kind["psnr"]["accuracy"]) <= 1 / len(close)  # ceiling.json's figure (rounded PSNRs)
    assert accuracy < by_kind["noise_ceiling"]["ceiling"] - 0.1  # PSNR is not at the ceiling where PSNRs are close


def _digest(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def test_same_seed_same_bytes_serial_or_parallel_and_stale_images_removed(codec_set, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "ref_099_old.png").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("mine")
    again = synthesize_codec_clic(tmp_path, refs=REFS, size=SIZE, seed=SEED, workers=1)
    assert not (tmp_path / "images" / "ref_099_old.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert _digest(again.out_dir, frozenset({"notes.txt"})) == _digest(codec_set.out_dir)
    paths = {"out_dir", "images_dir", "validation_csv", "oracle_csv", "kinds_csv", "files_csv", "ceiling_json"}
    figures = [{k: v for k, v in s.as_dict().items() if k not in paths | {"readme"}} for s in (again, codec_set)]
    assert figures[0] == figures[1]


def test_procedural_references_when_photos_run_out(tmp_path, monkeypatch):
    monkeypatch.setattr(sd, "photo_crops", lambda size, seed: [])
    summary = synthesize_codec_clic(tmp_path, refs=1, size=SIZE, seed=0, codecs=["jpeg420", "jpeg444"], workers=1)
    assert summary.procedural_references == 1 and summary.photo_references == 0
    assert summary.codecs == ["jpeg420", "jpeg444"] and summary.triplets > 0
    assert sd.luminance(_pixels(summary, "ref_000.png")).std() > sd.MIN_CROP_STD


@pytest.mark.parametrize(
    "kwargs",
    [
        {"refs": 0},
        {"size": 255},
        {"seed": -1},
        {"refs": 1.5},
        {"triplets_per_ref": 0},
        {"targets_bpp": []},
        {"targets_bpp": [0.5, float("nan")]},
        {"targets_bpp": [0.5, 0.5]},
        {"codecs": ["jpeg420"]},
        {"codecs": ["nope", "webp"]},
        {"workers": 0},
        {"slope": 0},
        {"lapse": 1.0},
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        synthesize_codec_clic(tmp_path, **kwargs)
    assert not (tmp_path / "oracle.csv").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--kind", "codecs", "--votes", "3"], "--votes applies to --kind distortions only"),
        (["--kind", "codecs", "--size", "128"], "--size"),
        (["--kind", "codecs", "--codecs", "jpeg420,nope"], "unknown codec 'nope'"),
        (["--kind", "codecs", "--codecs", "jpeg420,jpeg420"], "--codecs needs at least two different codecs"),
        (["--codecs", "jpeg420,webp"], "--codecs applies to --kind codecs only"),
    ],
)
def test_cli_codecs_refuses_with_one_line(tmp_path, capsys, args, expected):
    code = main(["synth", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_codecs_json_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cd, "default_codecs", lambda: ["jpeg420", "jpeg444", "jpeg2000"])  # the fast ones
    code = main(["synth", str(tmp_path / "out"), "--kind", "codecs", "--refs", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    doc = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert doc["kind"] == "codecs" and doc["references"] == 1 and doc["triplets"] == sum(doc["kinds"].values()) > 0
    assert 0 < doc["judge_accuracy"] < 1 and doc["n_keys"] == len(read_clic_triplets(doc["validation_csv"]))
    assert Path(doc["ceiling_json"]).is_file() and Path(doc["files_csv"]).is_file()
    assert doc["codecs"] == ["jpeg420", "jpeg444", "jpeg2000"]


def test_cli_codecs_option_selects_jpegxl(tmp_path, capsys):
    if cd.codec_status()["jpegxl"] is not None:
        pytest.skip(cd.codec_status()["jpegxl"])
    argv = ["synth", str(tmp_path / "out"), "--kind", "codecs", "--refs", "1", "--codecs", "jpeg420,jpegxl", "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["codecs"] == ["jpeg420", "jpegxl"] and doc["triplets"] > 0
    with open(doc["files_csv"], newline="") as f:
        assert {row["codec"] for row in csv.DictReader(f)} == {"jpeg420", "jpegxl"}


def test_cli_jpegxl_without_imagecodecs_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    code = main(["synth", str(tmp_path / "out"), "--kind", "codecs", "--codecs", "jpeg420,jpegxl"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not (tmp_path / "out").exists()
    assert captured.err.strip().splitlines() == [
        "error: jpegxl needs imagecodecs, which is not installed: pip install 'prfnet[jxl]'"
    ]


_SIGNALLED_SYNTH = """
import os, signal, sys
from pathlib import Path

from prfnet.cli import main
from prfnet.synth import codec_set

marks = Path(sys.argv[2])


def encode_until_ended(job):  # a pool worker: says that it runs, then works until something ends it
    partial = marks / f".{os.getpid()}"
    partial.write_text(str(os.getppid()))
    os.replace(partial, marks / str(os.getpid()))  # whole when the test sees it
    while True:
        signal.pause()


codec_set._encode_reference = encode_until_ended  # pickled by name: __main__ of the forked workers has it
codec_set.cpus = lambda: 2
sys.exit(main(["synth", sys.argv[1], "--kind", "codecs", "--refs", "6"]))
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a running (not zombie) process of the test's script."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"signalled_synth.py" in cmdline


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker pool forks: Linux only")
@pytest.mark.parametrize(
    ("signum", "to_group", "exit_code", "word"),
    [
        (signal.SIGTERM, True, 143, "terminated"),  # `timeout`, a scheduler: the whole process group
        (signal.SIGTERM, False, 143, "terminated"),  # `kill PID`: the workers must not outlive the parent
        (signal.SIGINT, True, 130, "interrupted"),  # Ctrl-C in a terminal: the whole process group
    ],
    ids=["sigterm-group", "sigterm-parent", "sigint-group"],
)
def test_a_signal_while_the_pool_encodes_ends_it_quietly(tmp_path, signum, to_group, exit_code, word):
    """Signalled while both pool workers are busy: the one error line, 143/130, no traceback from a worker (no
    BrokenPipeError, no KeyboardInterrupt), no staging folder, no worker left running."""
    script, marks, out = tmp_path / "signalled_synth.py", tmp_path / "marks", tmp_path / "set"
    script.write_text(_SIGNALLED_SYNTH)
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out), str(marks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a shell job's
    )
    try:
        # wait (on the marks, not on a clock) until both workers are inside a job; the deadline only ends a hang
        deadline = time.monotonic() + 300
        while len(list(marks.glob("[0-9]*"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        workers = [int(p.name) for p in marks.glob("[0-9]*")]
        assert len(workers) == 2 and {int(p.read_text()) for p in marks.glob("[0-9]*")} == {proc.pid}
        (os.killpg if to_group else os.kill)(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == exit_code, stderr
    assert stdout == "" and "Traceback" not in stderr and "Error" not in stderr.replace("error:", "")
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and word in lines[0], stderr
    assert not out.exists()  # the staging folder went, and the folder the run created with it
    assert not [pid for pid in workers if _alive(pid)]
