"""``prfnet ablate`` (``prfnet.cli.ablate``): ``-o`` reaches the library (its calls replaced by recorders)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tests.cli.test_options import (
    Recorder,
    one_error_line,
    plain,  # noqa: F401  (autouse: wide console, no $PRFNET_CHECKPOINT, cwd tmp_path)
    run,
)


def test_ablate_short_out_flag(capsys, monkeypatch):
    import prfnet.training.ablate

    recorder = Recorder(SimpleNamespace(document={"results": {}}))
    monkeypatch.setattr(prfnet.training.ablate, "run_ablation", recorder)
    code, out, err = run(capsys, "ablate", "-c", "demo", "-o", "sweep", "--seeds", "0,2", "--json")
    assert code == 0, err
    assert recorder.calls[-1][0][2] == Path("sweep") and recorder.kwargs["seeds"] == [0, 2]
    assert json.loads(out) == {"results": {}}
    assert "--seeds" in one_error_line(*run(capsys, "ablate", "-c", "demo", "--seeds", "0,x"))
