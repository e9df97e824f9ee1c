"""The embedded demo end to end, shrunk: 4 references of 256 px (the codec set's smallest size), one epoch per step."""

from __future__ import annotations

import csv
import json
import re
import signal

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

import prfnet.demo as demo_module
from prfnet import PRFNet
from prfnet.api import compare_files
from prfnet.cli import main
from prfnet.demo import KINDS, run_demo
from prfnet.errors import ConfigError, Terminated
from prfnet.outputs import MANIFEST, OutputSet, verify_outputs
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
    assert "against the simulated vote fraction" in html and "human vote fraction" not in html  # not people's votes
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


class _SignalAtFirstBatch(Callback):
    """Sends ``signum`` to this process once the first training batch is done (raise_signal: the handler runs
    before it returns, in the fit, not a moment later)."""

    def __init__(self, signum: int):
        self.signum, self.sent = signum, False

    def on_train_batch_end(self, *args, **kwargs) -> None:
        if not self.sent:
            self.sent = True
            signal.raise_signal(self.signum)


@pytest.mark.parametrize(
    ("signum", "exit_code", "word"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")],
)
def test_a_signal_while_the_demo_trains_says_what_is_left(tmp_path, capsys, monkeypatch, tiny_config, signum,
                                                          exit_code, word):  # fmt: skip
    """The training run is staged and discarded with the rest: the line names no checkpoint and no --resume (the
    demo has none), says that only the data stayed, and the exit code is the signal's (SIGTERM reaches the CLI's
    handler inside Lightning's fit too)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config))
    real_train, hints = demo_module.train, []

    def train_signalled(*args, resume_hint="not given", **kwargs):
        hints.append(resume_hint)
        return real_train(*args, resume_hint=resume_hint, callbacks=[_SignalAtFirstBatch(signum)], **kwargs)

    monkeypatch.setattr(demo_module, "train", train_signalled)
    out = tmp_path / "demo"
    previous = signal.getsignal(signal.SIGTERM)
    argv = ["demo", "--out", str(out), "--refs", "4", "--config", str(config), "--metrics", "prfnet,psnr"]
    assert main([*argv, "--no-progress"]) == exit_code
    err = capsys.readouterr().err
    assert "Traceback" not in err and hints == [None]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1]
    assert word in errors[0] and "while training" in errors[0]
    assert f"only the simulated set {out / 'data'} was kept" in errors[0] and "run prfnet demo again" in errors[0]
    assert "--resume" not in errors[0] and "checkpoint" not in errors[0] and ".run-" not in errors[0]
    assert sorted(p.name for p in out.iterdir()) == [".prfnet-owned.json", "data"]  # no staging folder, no train/
    assert (
        signal.getsignal(signal.SIGTERM) == previous and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, Terminated])
def test_an_interruption_while_encoding_keeps_nothing(tmp_path, capsys, monkeypatch, interruption):
    def interrupted(*args, **kwargs):
        raise interruption()

    monkeypatch.setattr(demo_module, "synthesize_codec_clic", interrupted)
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--no-progress"]) == (143 if interruption is Terminated else 130)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: demo ") and "while encoding: nothing of this run was kept" in line
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_interruption_after_the_set_is_in_place_says_so(tmp_path):
    """A signal held back while the set moves into place arrives after it: the message says the set is whole."""
    outputs = OutputSet(tmp_path, demo_module.DEMO_OUTPUTS)
    stage = demo_module._Stage(outputs)
    (tmp_path / MANIFEST).write_text(json.dumps({"run_id": outputs.run_id}))
    whole = f"once its outputs were in place: {re.escape(str(tmp_path))} holds them all"
    with pytest.raises(Terminated, match=whole), stage:
        raise Terminated()
    (tmp_path / MANIFEST).write_text(json.dumps({"run_id": "an earlier run"}))
    with pytest.raises(KeyboardInterrupt, match="while encoding: nothing of this run was kept") as caught, stage:
        raise KeyboardInterrupt()
    assert type(caught.value) is KeyboardInterrupt


@pytest.mark.parametrize(
    ("options", "message"),
    [({"runtime": "onnx"}, "--runtime must be one of"), ({"runtime": "onnxruntime", "threads": 0}, "--threads")],
)
def test_a_bad_runtime_is_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        run_demo(tmp_path / "demo", refs=4, size=256, progress=False, **options)
    assert not (tmp_path / "demo").exists()
