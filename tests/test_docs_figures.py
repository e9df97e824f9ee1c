"""The figures docs/baselines.md quotes are what ``benchmarks/baseline_conventions.py`` prints today."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def conventions() -> dict:
    return runpy.run_path(str(ROOT / "benchmarks" / "baseline_conventions.py"), run_name="figures")


def documented_rows() -> dict[tuple[str, int], list[float]]:
    text = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8")
    rows = {}
    for match in re.finditer(r"^skimage\.data\.(\w+)\(\) \S+ \(W x H\)\s+(\d+)((?:\s+[\d.]+)+)$", text, re.M):
        rows[match[1], int(match[2])] = [float(v) for v in match[3].split()]
    return rows


def test_the_table_lists_every_image_and_quality_of_the_script(conventions):
    assert set(documented_rows()) == {(n, q) for n in conventions["IMAGES"] for q in conventions["QUALITIES"]}


@pytest.mark.parametrize("name, quality", [("coffee", 10)])  # the row the first paragraph quotes
def test_documented_ssim_figures_are_reproduced(conventions, name, quality):
    computed = conventions["row"](name, quality)
    columns = [c for c in computed if c not in ("image", "jpeg_quality")]
    documented = documented_rows()[name, quality]
    assert len(documented) == len(columns)
    for column, value in zip(columns, documented, strict=True):
        assert computed[column] == pytest.approx(value, abs=6e-5), column  # printed with 4 decimals
    if (name, quality) == ("coffee", 10):  # the numbers quoted in the first paragraph
        intro = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8").split("\n\n")[1]
        for column in ("piq_ssim", "ssim", "piq_ms_ssim", "ms_ssim"):
            assert f"{computed[column]:.3f}" in intro, column
