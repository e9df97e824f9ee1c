"""The BAPPS 2AFC protocol (prfnet.evaluation.bapps): the 2AFC score by hand, per subset and per split, and train
never pooled with val."""

from __future__ import annotations

import json

import pytest

from prfnet.evaluation import bapps_2afc_score, evaluate_bapps, find_splits
from prfnet.evaluation.pages import bapps_table
from tests.conftest import make_bapps_tree


def test_bapps_score_hand_computed():
    d0, d1, judge = [0.1, 0.5, 0.3], [0.2, 0.4, 0.3], [0.25, 0.25, 0.9]
    assert bapps_2afc_score(d0, d1, judge, higher_better=False) == pytest.approx([0.75, 0.25, 0.5])
    assert bapps_2afc_score(d0, d1, judge, higher_better=True) == pytest.approx([0.25, 0.75, 0.5])


def test_evaluate_bapps_per_subset_and_overall(tmp_path):
    make_bapps_tree(tmp_path, {"val": {"cnn": [0.2, 0.6], "traditional": [0.0]}})
    results = evaluate_bapps(tmp_path / "2afc", metrics=["psnr"], out_dir=tmp_path / "out", progress=False)
    psnr = results["psnr"]  # PSNR prefers p0 everywhere: score = 1 - judge
    assert psnr["subsets"] == {"val/cnn": pytest.approx(0.6), "val/traditional": pytest.approx(1.0)}
    assert psnr["score"] == pytest.approx((0.8 + 0.4 + 1.0) / 3)
    assert psnr["mean_of_subsets"] == pytest.approx(0.8)
    assert psnr["n_triplets"] == {"val/cnn": 2, "val/traditional": 1}
    assert list(psnr["splits"]) == ["val"] and psnr["splits"]["val"]["n_triplets"] == 3
    assert (tmp_path / "out" / "report.html").is_file()
    # a split folder or a subset folder: the same split, named after its folder
    assert evaluate_bapps(tmp_path / "2afc" / "val", metrics=["psnr"], progress=False)["psnr"]["score"] == (
        pytest.approx(psnr["score"])
    )
    one = evaluate_bapps(tmp_path / "2afc" / "val" / "cnn", metrics=["psnr"], progress=False)["psnr"]
    assert one["subsets"] == {"cnn": pytest.approx(0.6)} and list(one["splits"]) == ["val"]


def test_evaluate_bapps_keeps_train_and_val_apart(tmp_path):
    """A 2afc root holds train/* (2 judges) and val/* (5 judges): each split is summarised on its own, and no
    figure pools train with val."""
    make_bapps_tree(
        tmp_path,
        {
            "train": {"cnn": [0.0, 0.5], "traditional": [1.0, 1.0, 0.5]},  # PSNR: 0.75 and 1/6
            "val": {"cnn": [0.2, 0.6], "traditional": [0.0]},  # PSNR: 0.6 and 1.0
        },
    )
    assert find_splits(tmp_path / "2afc") == {
        "train": {n: tmp_path / "2afc" / n for n in ("train/cnn", "train/traditional")},
        "val": {n: tmp_path / "2afc" / n for n in ("val/cnn", "val/traditional")},
    }
    out = tmp_path / "out"
    psnr = evaluate_bapps(tmp_path / "2afc", metrics=["psnr"], out_dir=out, progress=False)["psnr"]
    assert psnr["subsets"] == {
        "train/cnn": pytest.approx(0.75),
        "train/traditional": pytest.approx(1 / 6),
        "val/cnn": pytest.approx(0.6),
        "val/traditional": pytest.approx(1.0),
    }
    assert psnr["splits"] == {
        "train": {
            "score": pytest.approx((1.0 + 0.5 + 0.0 + 0.0 + 0.5) / 5),
            "mean_of_subsets": pytest.approx((0.75 + 1 / 6) / 2),
            "n_triplets": 5,
            "subsets": ["train/cnn", "train/traditional"],
        },
        "val": {
            "score": pytest.approx((0.8 + 0.4 + 1.0) / 3),
            "mean_of_subsets": pytest.approx(0.8),
            "n_triplets": 3,
            "subsets": ["val/cnn", "val/traditional"],
        },
    }
    assert "score" not in psnr and "mean_of_subsets" not in psnr  # nothing over train + val
    pooled = {(0.5 + 2.2) / 8, (0.75 + 1 / 6 + 0.6 + 1.0) / 4}  # what pooling would give
    on_disk = json.loads((out / "results.json").read_text())["psnr"]
    assert on_disk["splits"]["val"]["score"] == pytest.approx(2.2 / 3) and "score" not in on_disk
    columns, rows = bapps_table({"psnr": psnr})  # the table (terminal and report): per-split columns only
    assert columns[2:-1] == [*psnr["subsets"], "train: all", "train: mean", "val: all", "val: mean"]
    assert rows[0][-5:-1] == pytest.approx([0.4, (0.75 + 1 / 6) / 2, 2.2 / 3, 0.8])
    assert not any(isinstance(v, float) and v == pytest.approx(p) for v in rows[0] for p in pooled)
    html = (out / "report.html").read_text()
    assert "<th>train: all</th>" in html and "score over the val triplets" in html and "<th>all</th>" not in html
