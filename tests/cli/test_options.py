"""The shared option values of the command line (``prfnet.cli.options``): ``--out`` merged with its old name
``--out-dir``, ``--store`` / ``--no-store`` passed to the library as given (no ``store=`` when neither: the
library's default), device counts; and ``prfnet demo -o``. The helpers here (``run``, ``one_error_line``,
``Recorder``, the autouse ``plain``) serve the command modules' tests (``test_evaluate.py``, ``test_rd.py``, ...):
the library calls are replaced by recorders, so they check what the command line passes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from prfnet.cli import main
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


# -- demo: -o -------------------------------------------------------------------------------------------------------


def test_demo_short_out_flag(capsys, monkeypatch):
    import prfnet.demo

    recorder = Recorder(SimpleNamespace(results={"prfnet": {}}))
    monkeypatch.setattr(prfnet.demo, "run_demo", recorder)
    code, out, err = run(capsys, "demo", "-o", "d", "--json", "--no-progress")
    assert code == 0, err
    assert recorder.calls[-1][0][0] == Path("d") and json.loads(out) == {"prfnet": {}}
