"""``prfnet codecs --list``: the table (name, library, version, binding, parameter, availability) and ``--json``."""

from __future__ import annotations

import json
import re
import sys

import pytest

from prfnet.cli import main
from prfnet.synth.codecs import CODECS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, ANSI.sub("", captured.out), captured.err


def test_list_names_every_codec_with_library_and_status(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run(capsys, "codecs", "--list")
    assert code == 0 and err == ""
    lines = {line.split("│")[1].strip(" *"): line for line in out.splitlines() if line.startswith("│")}
    assert list(lines) == list(CODECS) == ["jpeg420", "jpeg444", "webp", "jpeg2000", "avif", "jpegxl", "mozjpeg"]
    assert "libjxl" in lines["jpegxl"] and "imagecodecs" in lines["jpegxl"]
    assert "OpenJPEG" in lines["jpeg2000"] and "ratio 2..400" in lines["jpeg2000"]
    assert "jpeg420 *" in out and "jpegxl *" not in out  # * = in the simulated codec set by default


def test_json_has_one_entry_per_codec(capsys):
    code, out, _ = run(capsys, "codecs", "--json")
    assert code == 0
    infos = json.loads(out)["codecs"]
    assert [i["name"] for i in infos] == list(CODECS)
    for info in infos:
        assert set(info) >= {"name", "library", "library_version", "binding", "binding_version", "available", "status"}
        assert (info["status"] == "yes") == info["available"]
    by_name = {i["name"]: i for i in infos}
    assert by_name["jpegxl"]["library"] == "libjxl" and by_name["jpegxl"]["binding"] == "imagecodecs"
    assert by_name["jpegxl"]["parameter"] == "quality" and by_name["jpegxl"]["range"] == [1, 99]
    assert by_name["jpegxl"]["default"] is False and by_name["jpeg420"]["default"] is True


def test_mozjpeg_missing_from_the_build_is_reported(capsys, monkeypatch):
    imagecodecs = pytest.importorskip("imagecodecs")
    monkeypatch.setattr(imagecodecs.MOZJPEG, "available", False, raising=False)
    code, out, _ = run(capsys, "codecs", "mozjpeg", "--json")
    assert code == 0
    (info,) = json.loads(out)["codecs"]
    assert not info["available"] and info["status"] == "not available: this imagecodecs build has no mozjpeg"


def test_without_imagecodecs_the_list_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    code, out, _ = run(capsys, "codecs", "jpegxl", "jpeg420", "--json")
    assert code == 0
    jxl, jpeg = json.loads(out)["codecs"]
    assert not jxl["available"] and jxl["binding_version"] is None
    assert jxl["status"] == "jpegxl needs imagecodecs, which is not installed: pip install 'prfnet[jxl]'"
    assert jpeg["available"]


def test_unknown_codec_is_one_line(capsys):
    code, out, err = run(capsys, "codecs", "jpegxs")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "unknown codec 'jpegxs'" in err


def test_the_install_hint_is_printed_whole_not_read_as_markup(capsys, monkeypatch):
    """'prfnet[jxl]' in a reason must not lose '[jxl]' to the terminal's markup (rich reads [..] as a style)."""
    import prfnet.synth.codecs as codecs

    def missing():
        raise codecs.CodecUnavailable("imagecodecs is not installed")

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(codecs, "imagecodecs_module", missing)
    code, out, _ = run(capsys, "codecs", "--list", "jpegxl")
    assert code == 0 and "pip install 'prfnet[jxl]'" in out
