"""The embedded demo end to end, shrunk: 4 references of 256 px (the codec set's smallest size), one epoch per step."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch

from prfnet import PRFNet
from prfnet.api import compare_files
from prfnet.cli import main
from prfnet.demo import KINDS, run_demo
from prfnet.outputs import verify_outputs
from prfnet.training import load_train_config

pytestmark = pytest.mark.usefixtures("one_thread")  # the checks score images with the tiny model: one thread is fastest


@pytest.fixture(scope="module")
def tiny_config():
    config = load_train_config("demo").to_dict()
    config["data"]["crop"] = 64
    config["steps"]["classification"]["epochs"] = 1
    config["steps"]["regression"]["epochs"] = 1
    return config


def _rows(path):
    return [line.split(",") for line in path.read_text().split()]


def test_demo_writes_model_report_and_results_on_held_out_references(tmp_path, tiny_config):
    stages = []
    result = run_demo(
        tmp_path / "demo", refs=4, size=256, config=tiny_config, metrics=("prfnet", "psnr", "ms_ssim"),
        progress=False, stage=stages.append,
    )  # fmt: skip
    demo, data = tmp_path / "demo", tmp_path / "demo" / "data"
    assert [s.split()[0] for s in stages] == ["1/5", "2/5", "3/5", "4/5", "5/5"]

    # the split: by reference, disjoint, covering the set; the held-out files hold exactly the held-out triplets
    all_refs = {row[0] for row in _rows(data / "oracle.csv")}
    train_refs = {row[0] for row in _rows(data / "train_oracle.csv")}
    test_refs = {row[0] for row in _rows(data / "test_oracle.csv")}
    assert len(all_refs) == 4 and len(test_refs) >= 1 and len(train_refs) >= 2
    assert train_refs | test_refs == all_refs and not train_refs & test_refs
    held_out = [tuple(r) for r in _rows(data / "validation.csv") if r[0] in test_refs]
    assert [tuple(r) for r in _rows(data / "test_validation.csv")] == held_out
    kinds = {tuple(r[:3]): r[3] for r in _rows(data / "test_kinds.csv")}
    assert set(kinds) == set(held_out)
    oracle = {tuple(r[:3]): int(r[3]) for r in _rows(data / "test_oracle.csv")}  # last row of a key wins
    assert set(oracle) <= set(held_out) and oracle
    assert len(_rows(data / "train_oracle.csv")) + len(_rows(data / "test_oracle.csv")) == len(
        _rows(data / "oracle.csv")
    )
    assert "train: train_oracle.csv" in (demo / "train" / "config.yaml").read_text()

    # results.json: the evaluation's figures (eval/results.json) with their intervals, and the judge's ceiling
    document = json.loads((demo / "results.json").read_text())
    ceiling = document.pop("ceiling")
    results = document
    assert results == result.results and ceiling == result.ceiling
    full = json.loads((demo / "eval" / "results.json").read_text())
    assert set(results) == {"prfnet", "psnr", "ms_ssim"}
    for name, entry in results.items():
        assert entry["accuracy"] == full[name]["accuracy"]
        assert entry["accuracy_by_kind"] == {k: full[name]["accuracy_by_kind"][k] for k in KINDS}
        low, high = entry["accuracy_ci95"]
        assert low <= entry["accuracy"] <= high and entry["n_references"] == len(test_refs)
    for name in ("psnr", "ms_ssim"):  # PRFNet minus the baseline, on the same keys
        difference = results[name]["paired_difference"]
        assert difference["mean"] == pytest.approx(results["prfnet"]["accuracy"] - results[name]["accuracy"])
        assert difference["ci95"][0] <= difference["mean"] <= difference["ci95"][1]
    assert "paired_difference" not in results["prfnet"]
    prfnet = results["prfnet"]
    assert 0 <= prfnet["brier"] <= 1 and 0 <= prfnet["brier_step1"] <= 1 and 0 <= prfnet["ece"] <= 1
    assert prfnet["brier"] != prfnet["brier_step1"]  # step 1's model is scored on its own, not copied

    # the ceiling: the hidden judge's distances (files.csv) decide every held-out key, scored like a metric
    with open(data / "files.csv", newline="") as f:
        judge = {(row["reference"], row["image"]): float(row["judge_distance"]) for row in csv.DictReader(f)}
    oracle_keys = {tuple(r[:3]): int(r[3]) for r in _rows(data / "test_oracle.csv")}  # last row of a key wins
    judged = [int(judge[(o, a)] > judge[(o, b)]) == t for (o, a, b), t in oracle_keys.items()]
    assert ceiling["judge_accuracy"] == pytest.approx(sum(judged) / len(judged))
    assert ceiling["n_keys"] == len(oracle_keys)
    assert ceiling["judge_accuracy_ci95"][0] <= ceiling["judge_accuracy"] <= ceiling["judge_accuracy_ci95"][1]
    assert ceiling["judge_accuracy"] <= ceiling["noise_ceiling"] <= 1

    # model.safetensors is the trained model, and it gives the reported accuracy on the held-out triplets
    model = PRFNet.from_pretrained(result.model_path)
    trained = PRFNet.from_pretrained(demo / "train" / "model.safetensors")
    assert model.config.backbone == "test_resnet"
    for (key, value), (key2, value2) in zip(model.state_dict().items(), trained.state_dict().items(), strict=True):
        assert key == key2 and torch.equal(value, value2), key
    images = data / "images"
    decided = {}
    for key in held_out:
        c = compare_files(model, *(images / name for name in key))
        decided[key] = 0 if c.score_a <= c.score_b else 1  # T = 0: A closer; a tie counts as A
    hits = [decided[key] == label for key, label in oracle.items()]
    assert results["prfnet"]["accuracy"] == pytest.approx(sum(hits) / len(hits))
    for kind in KINDS:
        of_kind = [decided[k] == label for k, label in oracle.items() if kinds[k] == kind]
        assert results["prfnet"]["accuracy_by_kind"][kind] == pytest.approx(sum(of_kind) / len(of_kind))

    # the example comparison: a held-out pair of codecs within 1 dB PSNR, reproduced by the saved model
    compared = result.compared
    assert kinds[(compared.ref, compared.a, compared.b)] == "psnr_close"
    again = compare_files(model, images / compared.ref, images / compared.a, images / compared.b)
    assert again.prob_a == pytest.approx(result.comparison.prob_a, abs=1e-6)
    assert again.closer == result.comparison.closer

    html = result.report_path.read_text()
    assert "Training curves" in html and "data:image/png;base64," in html
    assert f"{len(train_refs)} references for training, {len(test_refs)} held out" in html
    assert f"the hidden judge itself scores {ceiling['judge_accuracy']:.3f}" in html
    accuracy = f"{results['prfnet']['accuracy']:.3f}".replace(".", r"\.")
    assert re.search(rf"<td>prfnet</td><td>lower</td><td>{accuracy}[^<]*</td>", html)  # an interval may follow
    listed = {entry["path"] for entry in verify_outputs(demo)["files"]}  # one set, hashes checked, manifest last
    assert {"model.safetensors", "results.json", "report.html", "eval/results.json", "data/oracle.csv"} <= listed
    assert not [p for p in demo.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_demo_help_names_its_outputs(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "prfnet demo --out" in out
