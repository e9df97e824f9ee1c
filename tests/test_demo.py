"""The embedded demo end to end, shrunk: 4 references of 64 px, one epoch per step."""

from __future__ import annotations

import json

import pytest

from prfnet import PRFNet
from prfnet.cli import main
from prfnet.demo import run_demo
from prfnet.outputs import verify_outputs
from prfnet.training import load_train_config


@pytest.fixture(scope="module")
def tiny_config():
    config = load_train_config("demo").to_dict()
    config["data"]["crop"] = 64
    config["steps"]["classification"]["epochs"] = 1
    config["steps"]["regression"]["epochs"] = 1
    return config


def test_demo_writes_model_report_and_results_on_held_out_references(tmp_path, tiny_config):
    stages = []
    result = run_demo(
        tmp_path / "demo", refs=4, size=64, config=tiny_config, metrics=("prfnet", "psnr", "ms_ssim"),
        progress=False, stage=stages.append,
    )  # fmt: skip
    assert len(stages) == 5
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(results) == {"prfnet", "psnr"}  # ms_ssim needs 176 px: reported unavailable, not dropped silently
    assert "176" in result.unavailable["ms_ssim"]
    for entry in results.values():
        assert 0 <= entry["accuracy"] <= 1
        assert set(entry["accuracy_by_kind"]) == {"within_family", "matched_mse"}
    html = result.report_path.read_text()
    assert "Training curves" in html and "data:image/png;base64," in html
    assert PRFNet.from_pretrained(result.model_path).config.backbone == "test_resnet"
    listed = {entry["path"] for entry in verify_outputs(tmp_path / "demo")["files"]}  # one set, manifest last
    assert {"model.safetensors", "results.json", "report.html", "eval/results.json", "data/oracle.csv"} <= listed
    assert not [p for p in (tmp_path / "demo").iterdir() if p.name.startswith(".")]  # no staging folder left
    assert result.comparison.closer in ("A", "B")
    # no reference is both trained on and evaluated
    data = tmp_path / "demo" / "data"
    train_refs = {line.split(",")[0] for line in (data / "train_oracle.csv").read_text().split()}
    test_refs = {line.split(",")[0] for line in (data / "test_oracle.csv").read_text().split()}
    assert train_refs and test_refs and not train_refs & test_refs


def test_demo_help_names_its_outputs(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out and "prfnet demo --out" in out
