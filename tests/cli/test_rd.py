"""``prfnet rd`` (``prfnet.cli.rd``): output and store flags, trainer options, the summary, exactly one input, and
no checkpoint refused before any input is read (the library calls replaced by recorders)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_options import (
    Recorder,
    one_error_line,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


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
    out_of = lambda call: getattr(call[0][2], "root", call[0][2])  # noqa: E731 (the checked OutputSet, or a path)
    assert out_of(rd_calls.calls[-1]) == Path("prfnet-rd") and "store" not in rd_calls.kwargs
    for flag in ("--out", "-o"):
        assert run(capsys, *argv, flag, "r1", "--no-store")[0] == 0
        assert out_of(rd_calls.calls[-1]) == Path("r1") and rd_calls.kwargs["store"] is None
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
