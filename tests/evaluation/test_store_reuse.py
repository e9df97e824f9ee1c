"""``prfnet eval`` with the score store: ``--store`` (default ``<out-dir>/scores.sqlite``), ``--no-store``,
``--workers``, ``--precision``; bad store paths refused in one line before any model loads; the protocols'
``store=`` / ``workers=``; and a run killed with SIGKILL resumed by the next one (slow: subprocesses)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet
from prfnet.cli import main
from prfnet.evaluation import evaluate_bapps, evaluate_mos
from prfnet.outputs import verify_outputs
from prfnet.scoring import engine
from prfnet.store import ScoreStore
from tests.conftest import HELD_ENV, held_prfnet, wait_for_hold

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one intra-op thread is fastest


def _save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def make_clic(root, refs: int = 2, dists: int = 3, side: int = 64):
    """``refs`` references with ``dists`` noisy versions; headerless O,A,B rows covering every (ref, dist) pair
    once per orientation-free triplet: refs * dists unique pairs. Returns (csv, image folder)."""
    rng = np.random.default_rng(0)
    rows = []
    for r in range(refs):
        ref = rng.random((side, side, 3))
        _save(root / "images" / f"r{r}.png", ref)
        for k in range(dists):
            _save(root / "images" / f"r{r}_d{k}.png", ref + rng.normal(0.0, 0.02 * (k + 1), ref.shape))
        rows += [f"r{r}.png,r{r}_d{k}.png,r{r}_d{(k + 1) % dists}.png" for k in range(dists)]
    (root / "validation.csv").write_text("\n".join(rows) + "\n")
    return root / "validation.csv", root / "images"


def _checkpoint(path):
    torch.manual_seed(0)
    model = PRFNet("test_resnet")
    with torch.no_grad():
        model.head.weight.normal_()
    return model.save_pretrained(path)


@pytest.fixture(scope="module")
def clic_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("clic")
    csv, images = make_clic(root)
    return csv, images, _checkpoint(root / "m.safetensors")


def _argv(clic_set, out, *extra) -> list[str]:
    csv, images, ckpt = clic_set
    return ["eval", "clic", "--csv", str(csv), "--root", str(images), "--metrics", "prfnet,psnr", "-c", str(ckpt),
            "-b", "2", "--no-progress", "--json", "-o", str(out), *extra]  # fmt: skip


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _results(out: str) -> dict:
    """The --json document without the submission paths (they name the output folder)."""
    doc = json.loads(out)
    return {name: {k: v for k, v in entry.items() if k != "submission"} for name, entry in doc.items()}


def _one_line(code, out, err) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.fixture()
def chunks_scored(monkeypatch):
    """How many chunks the engine scores (its ChunkScorer calls)."""
    calls = []
    real = engine.ChunkScorer.__call__

    def counting(self, chunk, ref, dists):
        calls.append(len(chunk.rows))
        return real(self, chunk, ref, dists)

    monkeypatch.setattr(engine.ChunkScorer, "__call__", counting)
    return calls


def test_default_store_beside_the_outputs_and_a_rerun_scores_nothing(capsys, clic_set, tmp_path, chunks_scored):
    out = tmp_path / "out"
    code, first, err = _run(capsys, _argv(clic_set, out))
    assert code == 0, err
    assert f"scores stored in {out / 'scores.sqlite'}" in err.replace("\n", "")
    assert sum(chunks_scored) == 6  # 2 references x 3 distorted images
    with ScoreStore(out / "scores.sqlite") as store:
        assert store.count() == 12 and len(store.metrics()) == 2
    assert "scores.sqlite" not in {f["path"] for f in verify_outputs(out)["files"]}  # not part of the output set

    chunks_scored.clear()
    code, second, err = _run(capsys, _argv(clic_set, out, "--workers", "0"))
    assert code == 0, err
    assert chunks_scored == [] and _results(second) == _results(first)  # every score from the store
    assert (out / "scores.sqlite").is_file()  # kept between runs

    code, third, err = _run(capsys, _argv(clic_set, tmp_path / "plain", "--no-store"))
    assert code == 0, err
    assert sum(chunks_scored) == 6 and _results(third) == _results(first)
    assert not (tmp_path / "plain" / "scores.sqlite").exists() and "scores stored" not in err


def test_onnxruntime_scores_are_stored_under_their_own_identity(capsys, clic_set, tmp_path, chunks_scored):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "out"
    code, torch_run, err = _run(capsys, _argv(clic_set, out, "--metrics", "prfnet"))
    assert code == 0, err
    chunks_scored.clear()
    code, ort_run, err = _run(capsys, _argv(clic_set, out, "--metrics", "prfnet", "--runtime", "onnxruntime"))
    assert code == 0, err
    assert sum(chunks_scored) == 6  # nothing taken from PyTorch's scores in the store
    with ScoreStore(out / "scores.sqlite") as store:
        identities = sorted(store.metrics())
    assert len(identities) == 2 and identities[1] == identities[0] + "/onnxruntime"
    torch_doc, ort_doc = _results(torch_run)["prfnet"], _results(ort_run)["prfnet"]
    assert set(ort_doc) == set(torch_doc)
    for key, value in torch_doc.items():  # the same figures, to float rounding of the probabilities
        assert ort_doc[key] == (pytest.approx(value, abs=1e-5) if isinstance(value, float) else value), key


def test_store_option_puts_the_store_elsewhere(capsys, clic_set, tmp_path):
    store = tmp_path / "cache" / "mine.db"
    code, _, err = _run(capsys, _argv(clic_set, tmp_path / "out", "--store", store))
    assert code == 0, err
    assert not (tmp_path / "out" / "scores.sqlite").exists()
    with ScoreStore(store) as opened:
        assert opened.count() == 12


def test_bad_store_paths_are_one_line_before_any_model_loads(capsys, clic_set, tmp_path, monkeypatch):
    import prfnet.api

    loaded = []
    monkeypatch.setattr(prfnet.api, "load_model", lambda *a, **k: loaded.append(a) or pytest.fail("model loaded"))
    folder = tmp_path / "folder"
    folder.mkdir()
    assert str(folder) in _one_line(*_run(capsys, _argv(clic_set, tmp_path / "o1", "--store", folder)))
    text = tmp_path / "notes.txt"
    text.write_text("not a database, my own notes\n" * 100)
    line = _one_line(*_run(capsys, _argv(clic_set, tmp_path / "o2", "--store", text)))
    assert str(text) in line and "not an SQLite database" in line
    assert text.read_text() == "not a database, my own notes\n" * 100
    below_a_file = text / "scores.sqlite"
    assert str(text) in _one_line(*_run(capsys, _argv(clic_set, tmp_path / "o3", "--store", below_a_file)))
    line = _one_line(*_run(capsys, _argv(clic_set, tmp_path / "o4", "--store", tmp_path / "s.db", "--no-store")))
    assert "--no-store" in line
    assert loaded == [] and not any((tmp_path / f"o{i}").exists() for i in range(1, 5))  # nothing left behind


def test_precision_and_workers_options(capsys, clic_set, tmp_path):
    line = _one_line(*_run(capsys, _argv(clic_set, tmp_path / "a", "--precision", "fp16")))
    assert "fp16" in line and not (tmp_path / "a").exists()  # refused before anything is read or written
    line = _one_line(*_run(capsys, _argv(clic_set, tmp_path / "b", "--precision", "fp8")))
    assert "fp8" in line and "bf16" in line
    code, _, err = _run(capsys, _argv(clic_set, tmp_path / "c", "--workers", "-1"))
    assert code == 2 and "--workers" in err
    code, out, err = _run(capsys, _argv(clic_set, tmp_path / "d", "--precision", "bf16", "--workers", "1"))
    assert code == 0, err
    with ScoreStore(tmp_path / "d" / "scores.sqlite") as store:
        identities = list(store.metrics())
    assert any(i.startswith("prfnet/") and i.endswith("/bf16") for i in identities)
    assert json.loads(out)["prfnet"]["available"]


def test_mos_and_bapps_take_a_store_and_workers(tmp_path):
    images = tmp_path / "mos"
    rng = np.random.default_rng(1)
    rows = ["ref,dist,score"]
    ref = rng.random((48, 48, 3))
    _save(images / "r.png", ref)
    for k in range(4):
        _save(images / f"d{k}.png", ref + rng.normal(0.0, 0.03 * (k + 1), ref.shape))
        rows.append(f"r.png,d{k}.png,{5 - k}")
    (images / "mos.csv").write_text("\n".join(rows) + "\n")
    store = tmp_path / "scores.sqlite"
    first = evaluate_mos("csv", csv=images / "mos.csv", metrics=["psnr"], progress=False, store=store, workers=2)
    with ScoreStore(store) as opened:
        assert opened.count() == 4
        again = evaluate_mos("csv", csv=images / "mos.csv", metrics=["psnr"], progress=False, store=opened)
        assert opened.count() == 4
    assert again["psnr"]["srcc"] == first["psnr"]["srcc"] == pytest.approx(1.0)

    subset = tmp_path / "2afc" / "val" / "cnn"
    for i in range(2):
        _save(subset / "ref" / f"{i:06d}.png", ref)
        _save(subset / "p0" / f"{i:06d}.png", ref + rng.normal(0.0, 0.01, ref.shape))
        _save(subset / "p1" / f"{i:06d}.png", ref + rng.normal(0.0, 0.2, ref.shape))
        (subset / "judge").mkdir(exist_ok=True)
        np.save(subset / "judge" / f"{i:06d}.npy", np.array([0.25]))
    bapps = evaluate_bapps(subset, metrics=["psnr"], progress=False, store=store, workers=2)
    assert bapps["psnr"]["score"] == pytest.approx(0.75)
    with ScoreStore(store) as opened:
        assert opened.count() == 4 + 4


# -- SIGKILL mid-way, then a rerun --------------------------------------------------------------------------------


def _rows(path) -> dict:
    with sqlite3.connect(path) as conn:
        return {(m, r, d): s for m, r, d, s in conn.execute("SELECT metric, ref, dist, score FROM scores")}


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_with_only_the_missing_rows(tmp_path):
    csv, images = make_clic(tmp_path, refs=4, dists=6, side=256)
    ckpt = _checkpoint(tmp_path / "m.safetensors")
    total = 2 * 4 * 6
    env = {**os.environ, "TTY_COMPATIBLE": "1", "TERM": "xterm", "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "prfnet", "eval", "clic", "--csv", str(csv), "--root", str(images),
            "--metrics", "prfnet,psnr", "-c", str(ckpt), "-b", "2", "--json"]  # fmt: skip
    out, store = tmp_path / "out", tmp_path / "out" / "scores.sqlite"

    held = out.parent / "held"  # the victim stops right after its first chunk is committed, and is killed there
    victim = subprocess.Popen(
        [*held_prfnet("prfnet.store:ScoreStore.add"), *base[3:], "-o", str(out), "--no-progress"],
        env=env | {HELD_ENV: str(held)}, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_hold(victim, held)
        os.killpg(victim.pid, signal.SIGKILL)  # the run and its decoding workers
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL
    kept = _rows(store)
    assert len(kept) == 4  # one whole chunk: 2 pairs x 2 metrics, nothing of the next

    rerun = subprocess.run([*base, "-o", str(out), "--workers", "0"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    missing_pairs = (total - len(kept)) // 2
    assert f"scoring {missing_pairs} pairs x 2 metrics" in ANSI.sub("", rerun.stderr)  # only what was missing
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        duplicates = "SELECT COUNT(*) FROM (SELECT 1 FROM scores GROUP BY metric, ref, dist HAVING COUNT(*) > 1)"
        assert conn.execute(duplicates).fetchone()[0] == 0
    after = _rows(store)
    assert len(after) == total and all(after[key] == value for key, value in kept.items())

    clean = subprocess.run([*base, "-o", str(tmp_path / "clean"), "--no-store", "--no-progress"], env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    assert _results(rerun.stdout) == _results(clean.stdout)  # exactly: the same scores, the same figures
    for name in ("prfnet", "psnr"):
        submission = f"submission_{name}.csv"
        assert (out / submission).read_bytes() == (tmp_path / "clean" / submission).read_bytes()


def test_compile_option_compiles_the_backbone_of_the_loaded_model(capsys, clic_set, tmp_path, monkeypatch):
    """--compile reaches PRFNet.optimize_for_inference(compile=True) from `prfnet eval` and from `prfnet rd`'s model
    loader (the compiler is replaced by a recorder here; tests/scoring/test_engine.py compiles for real, in the slow
    tier)."""
    import prfnet.model.prfnet as prfnet_module
    from prfnet.cli.loading import model_loader

    compiled = []
    monkeypatch.setattr(prfnet_module, "compile_backbone", lambda backbone: compiled.append(backbone) or backbone)
    code, out, err = _run(capsys, _argv(clic_set, tmp_path / "e", "--compile"))
    assert code == 0, err
    assert len(compiled) == 1 and json.loads(out)["prfnet"]["available"]
    load = model_loader(clic_set[2], "cpu", False, "seres2net50", None, None, "fp32", True)
    assert load().inference_only and len(compiled) == 2
    load = model_loader(clic_set[2], "cpu", False, "seres2net50", None, None, "fp32", False)
    assert not load().inference_only and len(compiled) == 2
