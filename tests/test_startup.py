"""Start-up: ``prfnet --help`` and every ``prfnet COMMAND --help`` import no torch, timm or Lightning, and
``import prfnet`` imports the model only when one of its names is used (PEP 562). Each check runs in a fresh Python
process: this one has imported torch long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import prfnet
from prfnet._version import __version__

HEAVY = ("torch", "timm", "lightning")
COMMANDS = {"compare", "score", "rank", "synth", "train", "ablate", "eval", "eval bapps", "eval clic", "eval jnd",
            "eval mos", "rd", "tune", "demo", "view", "metrics", "codecs", "fetch", "export"}  # fmt: skip

HELP_EVERY_COMMAND = """
import contextlib, io, json, sys
import typer.main
from prfnet.cli import main
from prfnet.cli.app import app

def paths(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from paths(command, (*prefix, name))

codes, texts = {}, {}
for path in [(), *paths(typer.main.get_command(app))]:
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        codes[" ".join(path)] = (main([*path, "--help"]), "Usage:" in text.getvalue())
    texts[" ".join(path)] = text.getvalue()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm", "lightning"))
print(json.dumps({"codes": codes, "heavy": heavy, "texts": texts}))
"""


def _python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def help_of_every_command() -> dict:
    return json.loads(_python(HELP_EVERY_COMMAND, COLUMNS="250").splitlines()[-1])


def test_help_of_every_command_imports_no_torch_timm_or_lightning(help_of_every_command):
    result = help_of_every_command
    assert set(result["codes"]) == {"", *COMMANDS}  # every registered command was asked, and only those
    assert all(code == [0, True] for code in result["codes"].values()), result["codes"]
    assert result["heavy"] == []


def test_install_hints_in_help_keep_their_extra(help_of_every_command):
    """Help is rendered as rich markup, where a bare '[onnxruntime]' is a style tag and vanishes: the extras must
    be escaped in the source ('prfnet\\[jxl]')."""
    texts = help_of_every_command["texts"]
    assert not [name for name, text in texts.items() if "'prfnet'" in text]
    assert "pip install 'prfnet[onnxruntime]'" in texts["compare"] and "'prfnet[jxl]'" in texts["codecs"]


def test_import_prfnet_is_lazy_and_its_names_resolve():
    code = (
        "import json, sys, prfnet\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'lightning'))\n"
        "names = {n: type(getattr(prfnet, n)).__name__ for n in prfnet.__all__}\n"
        "print(json.dumps({'before': before, 'names': names, 'dir': sorted(set(prfnet.__all__) - set(dir(prfnet))),"
        " 'torch': 'torch' in sys.modules}))"
    )
    result = json.loads(_python(code).splitlines()[-1])
    assert result["before"] == [] and result["torch"]  # torch arrives with the first model name, not before
    assert result["dir"] == []  # dir(prfnet) lists every public name, imported or not
    assert result["names"]["PRFNet"] == "type" and result["names"]["load_image"] == "function"


def test_public_names_are_the_defining_objects():
    from prfnet.images import load_image
    from prfnet.integrations.loss import PRFNetLoss
    from prfnet.model import PRFNet

    assert prfnet.PRFNet is PRFNet and prfnet.PRFNetLoss is PRFNetLoss and prfnet.load_image is load_image
    assert prfnet.__version__ == __version__
    try:
        prfnet.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
