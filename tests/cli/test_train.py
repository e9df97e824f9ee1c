"""``prfnet train`` (``prfnet.cli.train``): ``-o``, trainer settings passed to the library, and the text output of
``train`` and ``ablate`` (the library calls replaced by recorders)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tests.cli.test_options import (
    Recorder,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


def test_train_short_out_flag_and_trainer_settings(capsys, monkeypatch):
    import prfnet.training

    result = SimpleNamespace(model_path=Path("m"), metrics_csv=Path("c"), report_path=Path("r"), best_val=None,
                             already_finished=False)  # fmt: skip
    recorder = Recorder(result)
    monkeypatch.setattr(prfnet.training, "train", recorder)
    code, out, err = run(capsys, "train", "-c", "demo", "-o", "runs/x", "--devices", "1", "--precision", "32-true",
                         "--json")  # fmt: skip
    assert code == 0, err
    (cfg, data, out_dir), _ = recorder.calls[-1]
    assert out_dir == Path("runs/x") and data is None
    assert cfg.trainer.devices == 1 and cfg.trainer.precision == "32-true"
    assert json.loads(out)["model"] == "m"
    assert run(capsys, "train", "-c", "demo", "--json")[0] == 0
    assert recorder.calls[-1][0][2] == Path("runs/demo")


def test_train_and_ablate_text_output(capsys, monkeypatch):
    import prfnet.training
    import prfnet.training.ablate

    best = {"step": "regression", "epoch": 3, "val_acc": 0.8125}
    result = SimpleNamespace(model_path=Path("m"), metrics_csv=Path("c"), report_path=Path("r"), best_val=best,
                             already_finished=True)  # fmt: skip
    monkeypatch.setattr(prfnet.training, "train", Recorder(result))
    code, out, err = run(capsys, "train", "-c", "demo", "-o", "run")
    assert code == 0, err
    assert out.splitlines() == ["model:   m", "metrics: c", "report:  r"]
    assert "run: this run has already finished" in err and "regression epoch 3: accuracy 0.8125" in err

    entry = {"mean": {"accuracy": 0.75, "n_seeds": 2}, "difference_to_paper": {"mean": -0.05}}
    sweep = SimpleNamespace(document={"results": {"concat": entry}}, trained=[], json_path=Path("a.json"),
                            plot_path=Path("a.png"), report_path=Path("a.html"))  # fmt: skip
    monkeypatch.setattr(prfnet.training.ablate, "run_ablation", Recorder(sweep))
    code, out, err = run(capsys, "ablate", "-c", "demo", "-o", "sweep")
    assert code == 0, err
    assert out.splitlines()[0] == "          concat: accuracy 0.7500 (2 seeds)  minus paper -0.0500"
    assert "results: a.json" in out and "nothing (every run had finished)" in err
