"""Intervals, paired differences, calibration and the noise ceiling of ``prfnet eval clic|bapps|mos``
(prfnet.stats.intervals): present in the JSON, containing their estimates, known answers on constructed
data, and the same resamples as the tested functions of prfnet.stats."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet.baselines import get_metric
from prfnet.cli import main
from prfnet.data import read_clic_oracle
from prfnet.evaluation import evaluate_bapps, evaluate_clic, evaluate_mos
from prfnet.evaluation.pages import bapps_table, clic_table, mos_table
from prfnet.images import load_image
from prfnet.stats.bootstrap import accuracy_ci, paired_difference
from prfnet.stats.ceilings import clic_correct, clic_noise_ceiling
from prfnet.stats.intervals import N_BOOT, SEED, ceiling_of, clic_uncertainty, mean_intervals, paired_differences

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a busy 2-core machine: one thread is faster

CLIC_FIGURES = ("accuracy", "accuracy_majority", "accuracy_votes")


def _inside(ci, value, tol=1e-12):
    return ci is not None and ci[0] - tol <= value <= ci[1] + tol


def _png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


class PsnrTwin:
    """PSNR under PRFNet's name: the paired difference of two identical metrics must be exactly 0."""

    name = "prfnet"
    higher_better = True

    def __init__(self):
        self.psnr = get_metric("psnr")

    def __call__(self, ref, dist):
        return self.psnr(ref, dist)


@pytest.fixture()
def clic(clic_dir, tmp_path):
    """conftest's CLIC set (4 references, 8 keys, 12 votes) with its triplet CSV and a kinds file."""
    keys = sorted({",".join(row.split(",")[:3]) for row in (clic_dir / "oracle.csv").read_text().split()})
    (tmp_path / "validation.csv").write_text("\n".join(keys) + "\n")
    (tmp_path / "kinds.csv").write_text("\n".join(f"{k},{'even' if int(k[1]) % 2 == 0 else 'odd'}" for k in keys))
    return clic_dir, tmp_path


def _evaluate_clic(clic, metrics, model=None, oracle=None, kinds=True, out=None):
    data, tmp = clic
    return evaluate_clic(
        tmp / "validation.csv",
        data / "images",
        oracle=oracle or data / "oracle.csv",
        metrics=metrics,
        model=model,
        kinds=tmp / "kinds.csv" if kinds else None,
        out_dir=out,
        progress=False,
    )


# -- CLIC ------------------------------------------------------------------------------------------


def test_clic_intervals_paired_difference_brier_and_ceiling(clic, tiny_model):
    data, tmp = clic
    results = _evaluate_clic(clic, ["prfnet", "psnr"], tiny_model, out=tmp / "out")
    oracle = read_clic_oracle(data / "oracle.csv")
    for name, entry in results.items():
        assert entry["n_references"] == 4
        for figure in CLIC_FIGURES:
            assert _inside(entry[f"{figure}_ci95"], entry[figure]), (name, figure)
        assert set(entry["accuracy_by_kind_ci95"]) == set(entry["accuracy_by_kind"]) == {"even", "odd"}
        for kind, value in entry["accuracy_by_kind"].items():
            assert _inside(entry["accuracy_by_kind_ci95"][kind], value)
        assert entry["noise_ceiling"] == clic_noise_ceiling(oracle.rows)  # 2 of 8 keys contradict their twin
        assert entry["noise_ceiling"]["ceiling"] == 0.75
    assert ceiling_of(results) == clic_noise_ceiling(oracle.rows)

    # the official accuracy's interval is accuracy_ci of clic_correct, the paired difference paired_difference's
    official = [(*key, t) for key, t in oracle.official.items()]
    correct = {}
    for name in results:
        submission = {tuple(r[:3]): int(r[3]) for r in _rows(tmp / "out" / f"submission_{name}.csv")}
        correct[name], refs = clic_correct(official, submission)
        ci = accuracy_ci(correct[name], refs, n_boot=N_BOOT, seed=SEED)
        assert results[name]["accuracy_ci95"] == pytest.approx([ci.low, ci.high])
    diff = results["psnr"]["paired_difference"]
    assert "paired_difference" not in results["prfnet"]
    assert diff["mean"] == pytest.approx(results["prfnet"]["accuracy"] - results["psnr"]["accuracy"])
    expected = paired_difference(correct["prfnet"], correct["psnr"], refs, n_boot=N_BOOT, seed=SEED)
    assert diff["ci95"] == pytest.approx(expected["ci95"]) and diff["n_groups"] == 4
    assert _inside(diff["ci95"], diff["mean"])

    # Brier: P(A closer) = model.compare against the vote fraction for the first-seen A (the swapped row counts
    # for the other image): d0 gets 3 of 3 votes for even references, 2 of 3 for odd ones
    images = data / "images"
    prob, frac = [], []
    for t in oracle.triplets:
        assert (t.a, t.b) == (f"{t.ref[:-4]}_d0.png", f"{t.ref[:-4]}_d1.png")
        ref, a, b = (load_image(images / name) for name in (t.ref, t.a, t.b))
        with torch.no_grad():
            prob.append(float(tiny_model.compare(ref, a, b)))
        frac.append(1.0 if int(t.ref[1]) % 2 == 0 else 2 / 3)
    prf = results["prfnet"]
    assert prf["brier"] == pytest.approx(np.mean((np.array(prob) - np.array(frac)) ** 2), abs=1e-6)
    assert _inside(prf["brier_ci95"], prf["brier"]) and 0 <= prf["ece"] <= 1
    assert sum(row["count"] for row in prf["calibration"]) == 4

    on_disk = json.loads((tmp / "out" / "results.json").read_text())
    assert on_disk["psnr"]["paired_difference"]["ci95"] == pytest.approx(diff["ci95"])
    html = (tmp / "out" / "report.html").read_text()
    acc, (low, high) = results["psnr"]["accuracy"], results["psnr"]["accuracy_ci95"]
    assert f"{acc:.3f} [{low:.3f}, {high:.3f}]" in html
    assert "prfnet - metric" in html and "Noise ceiling of the votes: accuracy 0.750" in html and "Brier" in html


def _rows(path):
    return [line.split(",") for line in path.read_text().split()]


def _oracle(path, rows) -> None:
    path.write_text("\n".join(f"r{r}.png,r{r}_d0.png,r{r}_d1.png,{t}" for r, t in rows) + "\n")


def test_clic_known_answers(clic):
    """PSNR always picks the mildly noisy d0. Two references, one all right and one all wrong: accuracy 0.5 and
    an interval from 0 to 1 (a resample draws r0 twice, r1 twice, or both); all right: exactly [1, 1]."""
    _, tmp = clic
    (tmp / "validation.csv").write_text("r0.png,r0_d0.png,r0_d1.png\nr1.png,r1_d0.png,r1_d1.png\n")
    (tmp / "kinds.csv").write_text("r0.png,r0_d0.png,r0_d1.png,x\n")
    _oracle(tmp / "split.csv", [(0, 0), (0, 0), (1, 1), (1, 1)])
    half = _evaluate_clic(clic, ["psnr"], oracle=tmp / "split.csv")["psnr"]
    assert half["accuracy"] == 0.5 and half["accuracy_ci95"] == [0.0, 1.0] and half["n_references"] == 2
    assert half["accuracy_votes"] == 0.5 and half["accuracy_votes_ci95"] == [0.0, 1.0]
    assert half["accuracy_by_kind_ci95"] == {"untagged": [0.0, 0.0], "x": [1.0, 1.0]}
    _oracle(tmp / "right.csv", [(0, 0), (1, 0), (1, 0)])
    right = _evaluate_clic(clic, ["psnr"], oracle=tmp / "right.csv", kinds=False)["psnr"]
    assert right["accuracy"] == 1.0 and right["accuracy_ci95"] == [1.0, 1.0]
    assert right["accuracy_majority_ci95"] == [1.0, 1.0] and right["accuracy_by_kind_ci95"] is None
    assert right["noise_ceiling"]["ceiling"] == 1.0


def test_identical_metrics_have_a_zero_paired_difference(clic):
    results = _evaluate_clic(clic, [PsnrTwin(), "psnr"])
    assert results["prfnet"]["accuracy_ci95"] == results["psnr"]["accuracy_ci95"]
    diff = results["psnr"]["paired_difference"]
    assert diff["mean"] == 0.0 and diff["ci95"] == [0.0, 0.0]


def test_without_oracle_the_interval_keys_are_null(clic):
    data, tmp = clic
    results = evaluate_clic(tmp / "validation.csv", data / "images", metrics=[PsnrTwin(), "psnr"], progress=False)
    for entry in results.values():
        assert entry["accuracy"] is None and entry["accuracy_ci95"] is None and entry["noise_ceiling"] is None
    assert results["psnr"]["paired_difference"] is None and results["prfnet"]["brier"] is None
    assert ceiling_of(results) is None


def test_paired_interval_is_narrower_than_separate_ones_when_metrics_agree():
    rng = np.random.default_rng(3)
    refs = np.repeat(np.arange(40), 5)
    base = (rng.random(200) < 0.7).astype(float)
    other = np.where(rng.random(200) < 0.1, 1 - base, base)  # agrees with base on ~90 % of the items
    cis, replicates, n_groups = mean_intervals({"prfnet": other, "psnr": base}, refs)
    diff = paired_differences(replicates, n_groups, len(refs))["psnr"]
    assert diff["mean"] == pytest.approx(other.mean() - base.mean())
    assert diff["ci95"] == pytest.approx(paired_difference(other, base, refs, N_BOOT, SEED)["ci95"])
    width = diff["ci95"][1] - diff["ci95"][0]
    assert width < 0.7 * sum(c.high - c.low for c in cis.values())


def test_clic_intervals_of_2000_keys_take_well_under_a_second_of_cpu():
    """12 metrics on 2000 keys of 200 references (6000 votes): every interval, difference and the ceiling."""
    from prfnet.data.clic import ClicOracle, aggregate_votes
    from prfnet.data.triplets import Triplet

    rng = np.random.default_rng(0)
    oracle = ClicOracle()
    triplets = [Triplet(f"r{k % 200}.png", f"d{k}a.png", f"d{k}b.png") for k in range(2000)]
    oracle.rows = [(t, int(rng.random() < 0.3)) for t in triplets for _ in range(3)]
    oracle.official = {t.names(): v for t, v in oracle.rows}
    oracle.triplets = aggregate_votes(oracle.rows)
    names = ["prfnet", *(f"m{i}" for i in range(11))]
    submissions = {n: {t.names(): int(rng.random() < 0.4) for t in triplets} for n in names}
    decisions = {n: np.array([submissions[n][(t.ref, t.a, t.b)] for t in oracle.triplets]) for n in names}
    results = {n: {"available": True} for n in names}
    kinds = ["a" if i % 3 else "b" for i in range(2000)]
    start = time.process_time()
    clic_uncertainty(results, oracle, submissions, decisions, kinds, rng.random(2000))
    assert time.process_time() - start < 3.0  # about 0.3 s on one idle core; generous for busy CI machines
    assert all(len(r["accuracy_ci95"]) == 2 and r["n_references"] == 200 for r in results.values())
    assert set(results["m0"]["accuracy_by_kind_ci95"]) == {"a", "b"} and results["prfnet"]["brier"] > 0


# -- BAPPS -----------------------------------------------------------------------------------------


def _bapps(root, judges: dict[str, list[float]]) -> None:
    rng = np.random.default_rng(0)
    for subset, values in judges.items():
        for i, judge in enumerate(values):
            ref = rng.random((64, 64, 3))
            _png(root / subset / "ref" / f"{i}.png", ref)
            _png(root / subset / "p0" / f"{i}.png", ref + rng.normal(0, 0.02, ref.shape))
            _png(root / subset / "p1" / f"{i}.png", ref + rng.normal(0, 0.2, ref.shape))
            (root / subset / "judge").mkdir(exist_ok=True)
            np.save(root / subset / "judge" / f"{i}.npy", np.array([judge]))


def test_bapps_intervals_and_paired_difference(tmp_path, tiny_model):
    _bapps(tmp_path / "2afc" / "val", {"cnn": [0.2, 0.6, 0.1, 0.4], "traditional": [0.0, 0.3, 0.5]})
    results = evaluate_bapps(
        tmp_path / "2afc" / "val",
        metrics=["prfnet", "psnr"],
        model=tiny_model,
        out_dir=tmp_path / "out",
        progress=False,
    )
    for entry in results.values():
        for subset, score in entry["subsets"].items():
            assert _inside(entry["subsets_ci95"][subset], score)
        split = entry["splits_ci95"]["val"]
        assert _inside(split["score"], entry["score"]) and split["score"] == entry["score_ci95"]
        assert _inside(split["mean_of_subsets"], entry["mean_of_subsets"])
    diff = results["psnr"]["paired_difference"]
    assert diff == results["psnr"]["splits_paired_difference"]["val"] and diff["n_groups"] == 7
    assert diff["mean"] == pytest.approx(results["prfnet"]["score"] - results["psnr"]["score"])
    assert _inside(diff["ci95"], diff["mean"])
    # PSNR prefers p0 everywhere, so its triplet scores are 1 - judge; each triplet is its own group
    psnr = 1 - np.array([0.2, 0.6, 0.1, 0.4, 0.0, 0.3, 0.5])
    ci = accuracy_ci(psnr, range(7), N_BOOT, SEED)
    assert results["psnr"]["score_ci95"] == pytest.approx([ci.low, ci.high])
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"{results['psnr']['score']:.3f} [{ci.low:.3f}, {ci.high:.3f}]" in html and "prfnet - metric" in html
    columns, rows = bapps_table(results, intervals=True)
    assert columns[-2] == "prfnet - metric" and rows[1][-2].startswith(f"{diff['mean']:+.3f} [")


def test_bapps_unanimous_judges_give_a_zero_width_interval(tmp_path):
    _bapps(tmp_path / "2afc", {"train/cnn": [0.0, 0.0, 0.0], "val/cnn": [0.0, 1.0]})
    psnr = evaluate_bapps(tmp_path / "2afc", metrics=["psnr"], progress=False)["psnr"]
    assert psnr["subsets_ci95"]["train/cnn"] == [1.0, 1.0]
    assert psnr["splits_ci95"]["train"] == {"score": [1.0, 1.0], "mean_of_subsets": [1.0, 1.0]}
    assert psnr["splits_ci95"]["val"]["score"] == [0.0, 1.0]
    assert "score_ci95" not in psnr and "paired_difference" not in psnr  # two splits: nothing pooled


# -- MOS -------------------------------------------------------------------------------------------


def _mos_csv(tmp_path, refs: int = 3, levels=(0.01, 0.03, 0.07, 0.15)):
    rng = np.random.default_rng(1)
    rows = ["ref,dist,score"]
    for r in range(refs):
        ref = rng.random((48, 48, 3))
        _png(tmp_path / f"r{r}.png", ref)
        for level, sigma in enumerate(levels):
            _png(tmp_path / f"r{r}_{level}.png", ref + rng.normal(0, sigma * (1 + 0.3 * r), ref.shape))
            rows.append(f"r{r}.png,r{r}_{level}.png,{10 - 20 * sigma + 0.3 * ((r + level) % 3)}")
    (tmp_path / "mos.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "mos.csv"


def test_mos_intervals_and_paired_difference(tmp_path, tiny_model):
    csv = _mos_csv(tmp_path)
    results = evaluate_mos("csv", csv=csv, metrics=["prfnet", "psnr"], model=tiny_model, out_dir=tmp_path / "out",
                           progress=False)  # fmt: skip
    for entry in results.values():
        assert entry["n_references"] == 3
        for figure in ("srcc", "krcc", "plcc"):
            ci = entry[f"{figure}_ci95"]
            assert ci is not None and -1 <= ci[0] <= ci[1] <= 1, figure
        assert _inside(entry["srcc_ci95"], entry["srcc"]) and _inside(entry["krcc_ci95"], entry["krcc"])
    diff = results["psnr"]["paired_difference"]
    assert diff["mean"] == pytest.approx(results["prfnet"]["srcc"] - results["psnr"]["srcc"])
    assert diff["ci95"][0] <= diff["ci95"][1] and diff["n_groups"] == 3
    columns, rows = mos_table(results, intervals=True)
    assert columns[-2] == "SRCC: prfnet - metric" and rows[1][-2].startswith(f"{diff['mean']:+.3f}")
    assert "SRCC with its 95 % interval" in (tmp_path / "out" / "report.html").read_text()


def test_mos_identical_metrics_and_a_perfect_ranking(tmp_path):
    csv = _mos_csv(tmp_path)
    results = evaluate_mos("csv", csv=csv, metrics=[PsnrTwin(), "psnr"], progress=False)
    assert results["psnr"]["paired_difference"]["mean"] == 0.0
    assert results["psnr"]["paired_difference"]["ci95"] == [0.0, 0.0]
    # the noise level as a DMOS: PSNR ranks every resample perfectly
    lines = csv.read_text().split()
    sigma = {f"r{r}_{lv}.png": s * (1 + 0.3 * r) for r in range(3) for lv, s in enumerate((0.01, 0.03, 0.07, 0.15))}
    csv.write_text("\n".join([lines[0], *(f"{ln.split(',')[0]},{ln.split(',')[1]},{sigma[ln.split(',')[1]]}"
                                           for ln in lines[1:])]) + "\n")  # fmt: skip
    psnr = evaluate_mos("csv", csv=csv, metrics=["psnr"], higher_better=False, progress=False)["psnr"]
    assert psnr["srcc"] == pytest.approx(1.0) and psnr["srcc_ci95"] == pytest.approx([1.0, 1.0])
    assert psnr["krcc_ci95"] == pytest.approx([1.0, 1.0])


# -- command line ----------------------------------------------------------------------------------


def test_cli_json_and_tables_carry_the_intervals(clic, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the table's cells on one line each
    data, tmp = clic
    base = ["eval", "clic", "--csv", str(tmp / "validation.csv"), "--root", str(data / "images"), "--oracle",
            str(data / "oracle.csv"), "--metrics", "prfnet,psnr", "--random-init", "--backbone", "test_resnet",
            "--no-progress", "--out-dir", str(tmp_path / "clic")]  # fmt: skip
    assert main(base) == 0  # the table; results.json is what --json prints (test_evaluation)
    out = " ".join(capsys.readouterr().out.split())
    doc = json.loads((tmp_path / "clic" / "results.json").read_text())
    assert doc["psnr"]["accuracy_ci95"] and doc["psnr"]["paired_difference"]["ci95"] and doc["prfnet"]["ece"] >= 0
    assert "prfnet - metric" in out and "Noise ceiling of the votes" in out and "2000 resamples, seed 0" in out
    acc, (low, high) = doc["psnr"]["accuracy"], doc["psnr"]["accuracy_ci95"]
    diff = doc["psnr"]["paired_difference"]
    assert f"{acc:.3f} [{low:.3f}, {high:.3f}]" in out and f"{diff['mean']:+.3f} [{diff['ci95'][0]:+.3f}," in out
    assert clic_table(doc, intervals=True)[0][-2] == "prfnet - metric"

    csv = _mos_csv(tmp_path / "mos")
    assert main(["eval", "mos", "--dataset", "csv", "--csv", str(csv), "--metrics", "psnr", "--no-progress",
                 "--out-dir", str(tmp_path / "mos_out"), "--json"]) == 0  # fmt: skip
    mos = json.loads(capsys.readouterr().out)["psnr"]
    assert mos["srcc_ci95"] and mos["n_references"] == 3
    _bapps(tmp_path / "bapps", {"cnn": [0.2, 0.6, 0.3]})
    assert main(["eval", "bapps", "--root", str(tmp_path / "bapps" / "cnn"), "--metrics", "psnr", "--no-progress",
                 "--out-dir", str(tmp_path / "bapps_out"), "--json"]) == 0  # fmt: skip
    bapps = json.loads(capsys.readouterr().out)["psnr"]
    assert bapps["score_ci95"] and bapps["subsets_ci95"]["cnn"] == bapps["score_ci95"]
