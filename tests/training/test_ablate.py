"""``prfnet ablate``: a tiny sweep (test_resnet, the tiny CLIC fixture) that is interrupted, resumed and rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from lightning.pytorch.callbacks import Callback

from prfnet import ConfigError
from prfnet.cli import main
from prfnet.errors import DataError, OutputError
from prfnet.training import load_train_config
from prfnet.training.ablate import RunScores, run_ablation, select_variants, summarise, variant_config
from tests.training.test_run import TINY

pytestmark = pytest.mark.usefixtures("one_thread")

VARIANTS = ["paper", "concat", "step1_only"]
SWEEP = {
    "steps.classification.epochs": 1,
    "steps.regression.epochs": 1,
    "trainer.limit_train_batches": 1,
    "data.val.holdout_fraction": 0.5,  # 2 of the 4 references: the bootstrap has two groups to draw
}


def sweep_config(extra: dict | None = None):
    return load_train_config(TINY, {**SWEEP, **(extra or {})})


class InterruptRun(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C does) at the first training batch of the run folder ``name``."""

    def __init__(self, name: str):
        self.name = name

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.name in Path(trainer.default_root_dir).parts:
            raise KeyboardInterrupt


def _model_times(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("*/seed*/**/model.safetensors"))}


def _strict_json(path: Path) -> dict:
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_sweep_interrupted_resumed_and_rerun(clic_dir, tmp_path):
    out = tmp_path / "ablation"
    config = sweep_config()
    with pytest.raises(KeyboardInterrupt):
        run_ablation(config, clic_dir, out, VARIANTS, progress=False, callbacks=[InterruptRun("concat")])
    assert (out / "paper" / "seed0" / "model.safetensors").is_file()
    assert not (out / "concat" / "seed0" / "model.safetensors").exists()
    assert _strict_json(out / "ablation.json")["status"] == "running"  # claimed for this config from the start
    paper_time = _model_times(out)

    result = run_ablation(config, clic_dir, out, VARIANTS, progress=False)
    assert result.trained == ["concat/seed0", "step1_only/seed0"]  # paper had finished: not trained again
    times = _model_times(out)
    assert all(times[k] == t for k, t in paper_time.items())
    # each variant is an ordinary run folder with its own config
    saved = yaml.safe_load((out / "concat" / "seed0" / "config.yaml").read_text())
    assert saved["model"]["pair_block"] == "concat" and saved["seed"] == 0
    assert (
        yaml.safe_load((out / "step1_only" / "seed0" / "config.yaml").read_text())["steps"]["regression"]["epochs"] == 0
    )
    assert len(list((out / "concat" / "seed0" / "step1_classification" / "logs").glob("version_*"))) == 2  # resumed

    document = _strict_json(out / "ablation.json")
    assert document == json.loads(json.dumps(result.document))
    assert document["status"] == "complete" and list(document["results"]) == VARIANTS
    for entry in document["results"].values():
        acc = entry["runs"]["0"]["accuracy"]
        assert acc["low"] <= acc["estimate"] <= acc["high"] and acc["n_groups"] == 2
        assert 0 <= entry["runs"]["0"]["agreement"] <= 1
        assert entry["mean"]["accuracy"] == acc["estimate"] and entry["mean"]["n_seeds"] == 1
        diff = entry["difference_to_paper"]["per_seed"]["0"]
        assert diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
    itself = document["results"]["paper"]["difference_to_paper"]
    assert itself["per_seed"]["0"]["mean"] == 0.0 and itself["per_seed"]["0"]["ci95"] == [0.0, 0.0]
    assert itself["mean"] == 0.0
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "single" not in html and "step1_only" in html

    again = run_ablation(config, clic_dir, out, VARIANTS, progress=False)
    assert again.trained == [] and _model_times(out) == times  # a rerun trains nothing
    assert again.document["results"] == document["results"]

    # the CLI on the finished sweep: nothing trained, the same results
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(TINY))
    sets = [arg for key, value in SWEEP.items() for arg in ("--set", f"{key}={value}")]
    code = main(
        [
            "ablate",
            "-c",
            str(config_file),
            "--data",
            str(clic_dir),
            "--out",
            str(out),
            "--no-progress",
            "--variants",
            ",".join(VARIANTS),
        ]
        + sets
    )
    assert code == 0 and _model_times(out) == times
    assert _strict_json(out / "ablation.json")["results"] == document["results"]

    with pytest.raises(ConfigError, match="different config.*steps.classification.lr"):
        run_ablation(sweep_config({"steps.classification.lr": 0.5}), clic_dir, out, VARIANTS, progress=False)
    assert _model_times(out) == times


def test_checks_before_any_training(clic_dir, tmp_path):
    out = tmp_path / "none"
    with pytest.raises(ConfigError, match="unknown ablation variant 'bogus'"):
        run_ablation(sweep_config(), clic_dir, out, ["paper", "bogus"], progress=False)
    with pytest.raises(ConfigError, match="needs --alt-backbone"):
        run_ablation(sweep_config(), clic_dir, out, ["backbone"], progress=False)
    with pytest.raises(ConfigError, match="not a timm model"):
        run_ablation(sweep_config(), clic_dir, out, None, alt_backbone="no_such_net", progress=False)
    # a variant whose config is invalid: step2_only of a config without step 2 has nothing to train
    with pytest.raises(ConfigError, match="step2_only.*nothing to train"):
        run_ablation(sweep_config({"steps.regression.epochs": 0}), clic_dir, out, ["step2_only"], progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        run_ablation(sweep_config(), clic_dir, blocker, ["paper"], progress=False)
    assert not out.exists()


def test_variant_selection_and_configs():
    assert select_variants(None, None) == [
        "paper",
        "concat",
        "single_scale",
        "no_attention",
        "step1_only",
        "step2_only",
    ]
    assert select_variants(None, "test_resnet")[-1] == "backbone=test_resnet"
    assert select_variants(["paper", "backbone"], "test_resnet") == ["paper", "backbone=test_resnet"]
    base = sweep_config({"model.backbone_weights": "weights.safetensors"})
    alt = variant_config(base, "backbone=test_resnet", 3)
    assert alt.seed == 3 and alt.model.backbone == "test_resnet" and alt.model.backbone_weights is None
    assert not variant_config(base, "no_attention", 0).model.attention
    assert variant_config(base, "single_scale", 0).model.fusion == "single_scale"
    assert variant_config(base, "step2_only", 0).steps.classification.epochs == 0
    assert base.seed == 0 and base.model.attention  # the base config is left as it was


def _scores(correct, refs):
    keys = [(r, f"{r}_a{i}", f"{r}_b{i}", 1.0) for i, r in enumerate(refs)]
    c = np.asarray(correct, dtype=float)
    return RunScores(keys, list(refs), c, c)


def test_summary_pairs_runs_of_the_same_seed():
    refs0, refs1 = ["r0", "r0", "r1", "r2"], ["r3", "r3", "r4", "r5"]  # each seed holds out its own references
    scores = {
        ("paper", 0): _scores([1, 0, 1, 1], refs0),
        ("paper", 1): _scores([1, 1, 0, 0.5], refs1),
        ("concat", 0): _scores([1, 1, 1, 1], refs0),
        ("concat", 1): _scores([0, 1, 0, 0.5], refs1),
    }
    summary = summarise(scores, ["paper", "concat"], [0, 1], n_boot=200)
    concat = summary["results"]["concat"]
    assert concat["mean"]["accuracy"] == pytest.approx((1.0 + 0.375) / 2)
    assert concat["difference_to_paper"]["per_seed"]["0"]["mean"] == pytest.approx(0.25)
    assert concat["difference_to_paper"]["per_seed"]["1"]["mean"] == pytest.approx(-0.25)
    assert concat["difference_to_paper"]["mean"] == pytest.approx(0.0)
    paper = summary["results"]["paper"]["difference_to_paper"]["per_seed"]
    assert all(d["mean"] == 0.0 and d["ci95"] == [0.0, 0.0] for d in paper.values())
    json.dumps(summary, allow_nan=False)

    scores[("concat", 1)] = _scores([0, 1, 0, 0.5], refs0)  # validated on other triplets than paper's seed 1
    with pytest.raises(DataError, match="different triplets"):
        summarise(scores, ["paper", "concat"], [0, 1], n_boot=50)
