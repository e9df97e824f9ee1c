"""``prfnet eval clic|bapps|mos`` (``prfnet.cli.evaluate``): the output folder flags (``--out-dir`` a hidden alias) and
``--store`` / ``--no-store`` reach the library as given (its calls replaced by recorders)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_options import (
    Recorder,
    one_error_line,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


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
