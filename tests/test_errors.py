"""The error classes (prfnet.errors): every class docs/errors.md lists is exported by prfnet and is a PRFNetError
(so one ``except prfnet.PRFNetError`` catches every user error), with the extra bases the docs promise; SIGTERM's
Terminated is not a user error."""

from __future__ import annotations

import re
from pathlib import Path

import prfnet
from prfnet import errors

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _documented() -> list[str]:
    table = DOCS.read_text(encoding="utf-8").split("## The classes", 1)[1]
    return re.findall(r"^\| `(\w+)`", table, flags=re.MULTILINE)


def test_every_documented_error_is_exported_and_a_prfnet_error():
    names = _documented()
    assert {"InputError", "ImageReadError", "DataError", "OutputError"} <= set(names)
    defined = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.PRFNetError)}
    assert set(names) | {"PRFNetError"} == defined  # the docs list every class, and nothing else
    for name in names:
        cls = getattr(prfnet, name)
        assert cls is getattr(errors, name) and issubclass(cls, prfnet.PRFNetError) and name in prfnet.__all__


def test_extra_bases_and_terminated():
    assert issubclass(prfnet.InputError, ValueError)  # "also a ValueError"
    assert issubclass(prfnet.ImageReadError, OSError)  # "also an OSError"
    assert not issubclass(prfnet.DataError, (ValueError, OSError))
    assert issubclass(errors.Terminated, KeyboardInterrupt) and not issubclass(errors.Terminated, prfnet.PRFNetError)
