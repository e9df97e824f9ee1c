"""BAPPS JND (prfnet.evaluation.jnd): average precision as the LPIPS repository defines it, checked against a plain
loop over its definition; the reader of jnd/val folders; evaluate_jnd and `prfnet eval jnd` on a generated set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from prfnet.cli import main
from prfnet.data import read_bapps_jnd
from prfnet.errors import DataError
from prfnet.evaluation import evaluate_jnd, jnd_average_precision
from prfnet.outputs import verify_outputs


def ap_by_definition(distance, same) -> float:
    """VOC average precision of the ranking by ascending distance, written as a loop over the definition."""
    order = sorted(range(len(distance)), key=lambda i: distance[i])  # stable, as np.argsort(kind="stable")
    tp = fp = 0.0
    precision, recall = [], []
    total = sum(same)
    for i in order:
        tp += same[i]
        fp += 1.0 - same[i]
        precision.append(tp / (tp + fp))
        recall.append(tp / total)
    mrec, mpre = [0.0, *recall, 1.0], [0.0, *precision, 0.0]
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def test_average_precision_follows_its_definition():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 50):
        distance, same = rng.random(n), rng.random(n)
        assert jnd_average_precision(distance, same) == pytest.approx(ap_by_definition(distance, same), abs=1e-12)
    assert jnd_average_precision([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 1.0  # every "same" pair first
    assert jnd_average_precision([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == pytest.approx(ap_by_definition(
        [0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]))  # fmt: skip


def test_rows_are_rankings_of_their_own():
    rng = np.random.default_rng(4)
    distance, same = rng.random((5, 12)), rng.random((5, 12))
    batch = jnd_average_precision(distance, same)
    assert batch.shape == (5,)
    for row in range(5):
        assert batch[row] == pytest.approx(ap_by_definition(list(distance[row]), list(same[row])), abs=1e-12)


def write_jnd(root, n: int = 24, seed: int = 0):
    """jnd/val/{cnn,traditional}/{p0,p1,same}: pairs whose 'same' fraction falls with the size of the change."""
    rng = np.random.default_rng(seed)
    for subset in ("cnn", "traditional"):
        for k in range(n):
            base = rng.random((32, 32, 3))
            change = k / n
            other = np.clip(base + change * rng.normal(0, 0.5, base.shape), 0, 1)
            for name, image in (("p0", base), ("p1", other)):
                (root / subset / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray((image * 255).astype(np.uint8)).save(root / subset / name / f"{k:03d}.png")
            (root / subset / "same").mkdir(exist_ok=True)
            np.save(root / subset / "same" / f"{k:03d}.npy", np.array([1.0 - change]))
    return root


def test_reader_finds_subsets_and_refuses_unpaired_files(tmp_path):
    root = write_jnd(tmp_path / "jnd" / "val", n=3)
    for where in (tmp_path / "jnd", root, root / "cnn"):
        found = read_bapps_jnd(where)
        assert all(len(pairs) == 3 for pairs in found.values()) and found
    assert sorted(read_bapps_jnd(root)) == ["cnn", "traditional"]
    assert read_bapps_jnd(root)["cnn"][0].same == 1.0
    (root / "cnn" / "same" / "002.npy").unlink()
    with pytest.raises(DataError, match="no same file for p0/002"):
        read_bapps_jnd(root)


def test_evaluate_jnd_ranks_in_each_metrics_direction(tmp_path):
    root = write_jnd(tmp_path / "jnd" / "val")
    results = evaluate_jnd(root, metrics=["psnr", "gmsd"], out_dir=tmp_path / "out", progress=False)
    change = np.arange(24) / 24  # the change of each pair; its 'same' fraction is 1 - change
    best, worst = jnd_average_precision(change, 1 - change), jnd_average_precision(-change, 1 - change)
    assert best - worst > 0.2
    for name in ("psnr", "gmsd"):  # a similarity and a distance: both rank the least changed pairs first
        entry = results[name]
        assert entry["available"] and entry["n_pairs"] == {"cnn": 24, "traditional": 24}
        for subset, ap in entry["subsets"].items():
            low, high = entry["subsets_ci95"][subset]
            assert ap == pytest.approx(best, abs=0.03) and low <= ap <= high
    listed = {f["path"] for f in verify_outputs(tmp_path / "out")["files"]}
    assert listed >= {"results.json", "report.html", "scores.csv"}
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").open(encoding="utf-8")))
    pairs = read_bapps_jnd(root)
    assert [r["subset"] for r in rows] == ["cnn"] * 24 + ["traditional"] * 24
    assert [(r["p0"], r["p1"], float(r["same"])) for r in rows] == [
        (p.p0, p.p1, p.same) for subset in ("cnn", "traditional") for p in pairs[subset]
    ]
    psnr = np.array([float(r["psnr"]) for r in rows[:24]])  # the values the AP was computed from
    assert jnd_average_precision(-psnr, 1 - change) == pytest.approx(results["psnr"]["subsets"]["cnn"])


def test_prfnet_eval_jnd_command(capsys, tmp_path):
    root = write_jnd(tmp_path / "jnd" / "val", n=6)
    code = main(["eval", "jnd", "--root", str(root), "--metrics", "psnr", "-o", str(tmp_path / "o"), "--json",
                 "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert set(json.loads(out)["psnr"]["subsets"]) == {"cnn", "traditional"}
    code = main(["eval", "jnd", "--root", str(tmp_path), "--metrics", "psnr", "-o", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown BAPPS JND layout" in err[0]
