"""The shared options of the command line (``prfnet.cli.options``) and the one model loader (``prfnet.cli.loading``):
``--out/-o`` on every command that writes a set (``--out-dir`` a hidden alias for ``eval``, a positional for
``synth``), ``--store`` / ``--no-store`` passed to the library as given (no ``store=`` when neither: the library's
default), and the model loaded only when the library asks for it. The library calls are replaced by recorders here:
these tests check what the command line passes, the library's own tests check what it does with it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import prfnet.api
from prfnet.cli import main
from prfnet.cli.loading import model_loader
from prfnet.cli.options import devices_value, out_value, store_argument
from prfnet.errors import ConfigError


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(code: int, out: str, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error:"), (code, out, err)
    return lines[0]


class Recorder:
    """Stands in for a library function: records its arguments and returns ``result``."""

    def __init__(self, result):
        self.result = result
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.result

    @property
    def kwargs(self) -> dict:
        return self.calls[-1][1]


@pytest.fixture(autouse=True)
def plain(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    monkeypatch.chdir(tmp_path)


# -- the value helpers ---------------------------------------------------------------------------------------------


def test_out_value_merges_out_and_its_old_name():
    default = Path("prfnet-eval/clic")
    assert out_value(None, None, default) == default
    assert out_value(Path("a"), None, default) == Path("a")
    assert out_value(None, Path("b"), default) == Path("b")
    assert out_value(Path("a"), Path("a"), default) == Path("a")
    with pytest.raises(ConfigError, match="--out a and --out-dir b differ"):
        out_value(Path("a"), Path("b"), default)


def test_store_argument_leaves_the_default_to_the_library():
    assert store_argument(None, False) == {}  # no store= at all: the library's default applies
    assert store_argument(None, True) == {"store": None}
    assert store_argument(Path("s.sqlite"), False) == {"store": Path("s.sqlite")}
    with pytest.raises(ConfigError, match="--store and --no-store"):
        store_argument(Path("s.sqlite"), True)


def test_devices_value_counts_are_ints():
    assert devices_value(None) is None
    assert devices_value("4") == 4 and devices_value(" 2 ") == 2
    assert devices_value("auto") == "auto" and devices_value("0,1") == "0,1"


# -- the model loader ----------------------------------------------------------------------------------------------


def test_model_loader_checks_options_now_and_loads_when_called(monkeypatch, capsys):
    load = Recorder("the model")
    monkeypatch.setattr(prfnet.api, "load_model", load)
    loader = model_loader(None, "cpu", True, "test_resnet", 64, 32, "bf16", True)
    assert load.calls == [] and "WARNING" not in capsys.readouterr().err  # nothing loaded yet
    assert loader() == "the model"
    assert load.calls[-1] == (
        (None, "cpu", True, "test_resnet", 64, 32),
        {"warn": False, "precision": "bf16", "compile": True},
    )  # no seed here: load_model seeds a --random-init model the same way for every command
    assert "--random-init: untrained weights" in capsys.readouterr().err
    model_loader(Path("w.safetensors"), "cpu", True, "test_resnet")()
    assert "WARNING" not in capsys.readouterr().err  # a checkpoint is not an untrained model


@pytest.mark.parametrize(
    "args, message",
    [
        ((16, None, "fp32", "cpu"), "--tile must be >= 32"),
        ((None, 8, "fp32", "cpu"), "--tile-stride 8 needs --tile"),
        ((64, 0, "fp32", "cpu"), "--tile-stride must be positive"),
        ((64, 65, "fp32", "cpu"), "must not exceed --tile"),
        ((None, None, "fp16", "cpu"), "fp16 needs a GPU"),
        ((None, None, "fp8", "cpu"), "fp8"),
    ],
)
def test_model_loader_refuses_bad_options_before_loading(monkeypatch, args, message):
    load = Recorder("the model")
    monkeypatch.setattr(prfnet.api, "load_model", load)
    tile, stride, precision, device = args
    with pytest.raises(ConfigError, match=message):
        model_loader(None, device, True, "test_resnet", tile, stride, precision)
    assert load.calls == []


# -- eval: --out/-o, the hidden --out-dir, --store/--no-store --------------------------------------------------------


@pytest.fixture()
def eval_calls(monkeypatch):
    """The three protocols replaced by recorders (results: ``{}``), and the printing of their results too."""
    import prfnet.cli.evaluate as cli_evaluate
    import prfnet.evaluation

    recorders = {name: Recorder({}) for name in ("clic", "bapps", "mos")}
    for name, recorder in recorders.items():
        monkeypatch.setattr(prfnet.evaluation, f"evaluate_{name}", recorder)
    monkeypatch.setattr(cli_evaluate, "_emit", Recorder(None))
    return recorders


EVAL_ARGV = {
    "clic": ["eval", "clic", "--csv", "v.csv", "--root", "images", "--metrics", "psnr"],
    "bapps": ["eval", "bapps", "--root", "2afc", "--metrics", "psnr"],
    "mos": ["eval", "mos", "--dataset", "csv", "--csv", "mos.csv", "--metrics", "psnr"],
}


@pytest.mark.parametrize("protocol", ["clic", "bapps", "mos"])
def test_eval_output_folder_flags(capsys, eval_calls, protocol):
    recorder, argv = eval_calls[protocol], EVAL_ARGV[protocol]
    for flags, expected in (
        ([], Path("prfnet-eval") / protocol),
        (["--out", "o1"], Path("o1")),
        (["-o", "o2"], Path("o2")),
        (["--out-dir", "o3"], Path("o3")),  # the old name still works
        (["--out", "o4", "--out-dir", "o4"], Path("o4")),
    ):
        code, _, err = run(capsys, *argv, *flags)
        assert code == 0, err
        assert recorder.kwargs["out_dir"] == expected
    line = one_error_line(*run(capsys, *argv, "-o", "o5", "--out-dir", "o6"))
    assert "--out o5" in line and "--out-dir o6" in line
    assert len(recorder.calls) == 5  # the refused run called nothing


@pytest.mark.parametrize("protocol", ["clic", "bapps", "mos"])
def test_eval_store_flags_reach_the_library_as_given(capsys, eval_calls, protocol):
    recorder, argv = eval_calls[protocol], EVAL_ARGV[protocol]
    assert run(capsys, *argv)[0] == 0
    assert "store" not in recorder.kwargs  # the library decides the default store
    assert run(capsys, *argv, "--no-store")[0] == 0
    assert recorder.kwargs["store"] is None
    assert run(capsys, *argv, "--store", "s.sqlite")[0] == 0
    assert recorder.kwargs["store"] == Path("s.sqlite")
    assert "--no-store" in one_error_line(*run(capsys, *argv, "--store", "s.sqlite", "--no-store"))
    assert len(recorder.calls) == 3


def test_eval_help_documents_out_and_hides_out_dir(capsys):
    code, out, _ = run(capsys, "eval", "clic", "--help")
    assert code == 0 and "--out" in out and "-o" in out and "--out-dir" not in out


# -- rd --------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def rd_calls(monkeypatch):
    import prfnet.cli.rd as cli_rd
    import prfnet.rd.run

    monkeypatch.setattr(cli_rd, "_input_items", lambda *args: ([], {"csv": "rd.csv"}))
    recorder = Recorder({"summary": 1})
    monkeypatch.setattr(prfnet.rd.run, "run_rd", recorder)
    return recorder


def test_rd_out_and_store_flags(capsys, rd_calls):
    argv = ["rd", "--csv", "rd.csv", "-m", "psnr", "--json"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert json.loads(out) == {"summary": 1}
    assert rd_calls.calls[-1][0][2] == Path("prfnet-rd") and "store" not in rd_calls.kwargs
    for flag in ("--out", "-o"):
        assert run(capsys, *argv, flag, "r1", "--no-store")[0] == 0
        assert rd_calls.calls[-1][0][2] == Path("r1") and rd_calls.kwargs["store"] is None
    assert run(capsys, *argv, "--store", "s.sqlite")[0] == 0
    assert rd_calls.kwargs["store"] == Path("s.sqlite")
    assert "--no-store" in one_error_line(*run(capsys, *argv, "--store", "s.sqlite", "--no-store"))
    assert len(rd_calls.calls) == 4


def test_rd_without_a_checkpoint_fails_before_reading_inputs(capsys, rd_calls):
    line = one_error_line(*run(capsys, "rd", "--csv", "rd.csv", "-m", "prfnet,psnr"))
    assert "checkpoint" in line and rd_calls.calls == []


def test_rd_trainer_options_become_trainer_settings(capsys, rd_calls):
    argv = ["rd", "--csv", "rd.csv", "-m", "psnr", "--devices", "2", "--accelerator", "cpu", "--strategy", "ddp"]
    code, _, err = run(capsys, *argv, "--num-nodes", "1", "--json")
    assert code == 0, err
    assert rd_calls.kwargs["trainer"] == {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp"}


def test_rd_summary_names_the_store_or_says_there_is_none(capsys):
    from prfnet.cli.rd import _print_summary

    summary = {
        "bd_rate": None,
        "n_images": 3,
        "metrics": {"psnr": {"available": True}, "lpips": {"available": False, "reason": "no weights"}},
        "store": {"path": "out/scores.sqlite", "from_store": 4, "computed": 2},
        "outputs": {"report": "out/report.html"},
    }
    _print_summary(summary)
    captured = capsys.readouterr()
    assert "BD-rate not computed" in captured.out and "lpips: not scored, no weights" in captured.out
    assert "scores: 4 from the store, 2 computed (store: out/scores.sqlite)" in captured.err
    _print_summary({**summary, "store": {"path": None, "from_store": 0, "computed": 6}})
    assert "scores: 0 from the store, 6 computed (no score store)" in capsys.readouterr().err


# -- synth: a positional output folder or --out/-o ------------------------------------------------------------------


def test_synth_output_folder_as_positional_or_option(capsys, tmp_path):
    small = ["--refs", "1", "--size", "64", "--json"]
    for argv, folder in (
        (["synth", "p"], "p"),
        (["synth", "--out", "q"], "q"),
        (["synth", "-o", "r"], "r"),
        (["synth", "s", "-o", "s"], "s"),
    ):
        code, out, err = run(capsys, *argv, *small)
        assert code == 0, err
        assert json.loads(out)["out_dir"] == folder and (tmp_path / folder / "validation.csv").is_file()
    line = one_error_line(*run(capsys, "synth", "t", "-o", "u", *small))
    assert "t" in line and "--out u" in line
    assert "--out" in one_error_line(*run(capsys, "synth", *small))
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()


def test_synth_output_folder_that_is_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    assert "afile" in one_error_line(*run(capsys, "synth", "-o", "afile", "--refs", "1", "--size", "64"))


# -- train, ablate, demo: -o ----------------------------------------------------------------------------------------


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


def test_ablate_short_out_flag(capsys, monkeypatch):
    import prfnet.training.ablate

    recorder = Recorder(SimpleNamespace(document={"results": {}}))
    monkeypatch.setattr(prfnet.training.ablate, "run_ablation", recorder)
    code, out, err = run(capsys, "ablate", "-c", "demo", "-o", "sweep", "--seeds", "0,2", "--json")
    assert code == 0, err
    assert recorder.calls[-1][0][2] == Path("sweep") and recorder.kwargs["seeds"] == [0, 2]
    assert json.loads(out) == {"results": {}}
    assert "--seeds" in one_error_line(*run(capsys, "ablate", "-c", "demo", "--seeds", "0,x"))


def test_demo_short_out_flag(capsys, monkeypatch):
    import prfnet.demo

    recorder = Recorder(SimpleNamespace(results={"prfnet": {}}))
    monkeypatch.setattr(prfnet.demo, "run_demo", recorder)
    code, out, err = run(capsys, "demo", "-o", "d", "--json", "--no-progress")
    assert code == 0, err
    assert recorder.calls[-1][0][0] == Path("d") and json.loads(out) == {"prfnet": {}}


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


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--refs", "0"], "--refs"),
        (["--size", "32"], "--size"),
        (["--seed", "-1"], "--seed"),
        (["--votes", "0"], "--votes"),
        (["--kind", "codecs", "--votes", "3"], "--votes"),
    ],
)
def test_synth_bad_values_name_their_option(capsys, tmp_path, extra, needle):
    assert needle in one_error_line(*run(capsys, "synth", "-o", "x", *extra))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        ([], "got none"),
        (["--csv", "rd.csv", "--example"], "--csv and --example"),
        (["--decoded", "dec"], "--originals is missing"),
    ],
)
def test_rd_takes_exactly_one_input(capsys, monkeypatch, tmp_path, extra, needle):
    import prfnet.rd.run

    recorder = Recorder({})
    monkeypatch.setattr(prfnet.rd.run, "run_rd", recorder)
    assert needle in one_error_line(*run(capsys, "rd", "-m", "psnr", *extra))
    assert recorder.calls == [] and list(tmp_path.iterdir()) == []


def test_export_refuses_an_unknown_what(capsys):
    assert "--what" in one_error_line(*run(capsys, "export", "--onnx", "m.onnx", "--what", "nonsense"))
