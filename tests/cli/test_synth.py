"""``prfnet synth`` (``prfnet.cli.synth``): the output folder as a positional or ``--out``, a file in its place and bad
values refused in one line naming the option."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_options import (
    one_error_line,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


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
