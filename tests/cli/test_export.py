"""``prfnet export`` (``prfnet.cli.export``): an unknown ``--what`` is refused in one line."""

from __future__ import annotations

from tests.cli.test_options import (
    one_error_line,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


def test_export_refuses_an_unknown_what(capsys):
    assert "--what" in one_error_line(*run(capsys, "export", "--onnx", "m.onnx", "--what", "nonsense"))
