"""``prfnet metrics --list``: the table (name, direction, range, availability, reference) and ``--json``; cheap:
nothing is downloaded, LPIPS / DISTS say whether their VGG16 file is downloaded on first use or why they cannot
run here."""

from __future__ import annotations

import json
import re

import pytest
import torch

from prfnet.baselines import BASELINE_NAMES
from prfnet.cli import main

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def no_weights(tmp_path, monkeypatch):
    """An empty hub cache, downloads refused (listing must never fetch anything), a wide terminal."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(tmp_path / "no_weights"))
    monkeypatch.delenv("PRFNET_OFFLINE", raising=False)
    monkeypatch.delenv("PRFNET_VGG16_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, ANSI.sub("", captured.out), captured.err


def rows(text: str) -> dict[str, list[str]]:
    """name -> cells, with the lines of a wrapped cell joined by spaces."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if cells[0]:
                table[cells[0]] = current = cells
            else:
                current[:] = [f"{a} {b}".strip() for a, b in zip(current, cells, strict=True)]
    return table


def test_list_prints_every_metric_with_direction_range_availability_and_reference(capsys):
    code, out, err = run(capsys, "metrics", "--list")
    assert code == 0 and err == ""
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "name", "closer when", "range", "available here", "reference",
    ]  # fmt: skip
    table = rows(out)
    assert set(table) == {"vif, vifp"} | (set(BASELINE_NAMES) - {"vif"})
    assert table["psnr"][1:4] == ["higher", "[0, 80] dB", "yes"]
    assert table["gmsd"][1] == "lower" and table["ssim_nods"][1] == "higher"
    assert table["lpips"][3] == "yes (downloads vgg16-397923af.pth on first use)"
    assert "CVPR 2018" in table["lpips"][4] and "2004" in table["ssim"][4]


def test_offline_says_why_below_the_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    code, out, _ = run(capsys, "metrics", "--list")
    assert code == 0 and rows(out)["dists"][3] == "no (see below)"
    reason = next(line for line in out.splitlines() if line.startswith("dists: "))
    assert "vgg16-397923af.pth missing from" in reason and str(tmp_path / "hub" / "checkpoints") in reason


def test_json_is_one_object_and_names_filter(capsys, monkeypatch):
    code, out, _ = run(capsys, "metrics", "--list", "--json")
    assert code == 0
    payload = json.loads(out)
    assert [m["name"] for m in payload["metrics"]] == list(BASELINE_NAMES)
    entry = {m["name"]: m for m in payload["metrics"]}
    assert entry["mdsi"]["direction"] == "lower" and entry["mdsi"]["higher_better"] is False
    assert entry["lpips"]["available"] is True and "first use" in entry["lpips"]["status"]
    assert set(entry["ssim"]) >= {"name", "direction", "range", "available", "status", "reference", "about"}
    monkeypatch.setenv("PRFNET_OFFLINE", "1")
    code, out, _ = run(capsys, "metrics", "lpips", "VIFP", "--json")
    only = json.loads(out)["metrics"]
    assert code == 0 and [m["name"] for m in only] == ["lpips", "vif"]
    assert only[0]["available"] is False and "PRFNET_OFFLINE" in only[0]["status"]


def test_unknown_name_is_one_line_and_exit_2(capsys):
    code, out, err = run(capsys, "metrics", "ssim2")
    assert code == 2 and out == "" and "unknown metric 'ssim2'" in err and len(err.strip().splitlines()) == 1


def test_install_hints_are_printed_whole_not_read_as_markup(capsys, monkeypatch):
    """'prfnet[codec-metrics]' in a reason must not lose its '[...]' to rich's markup, in the table or below it."""
    import prfnet.baselines.codec_metrics as codec_metrics

    monkeypatch.setattr(codec_metrics.importlib.util, "find_spec", lambda name: None)
    code, out, _ = run(capsys, "metrics", "--list", "flip")
    assert code == 0 and "pip install 'prfnet[codec-metrics]'" in out
