"""The figures the docs quote are those their commands print.

- docs/baselines.md: what ``benchmarks/baseline_conventions.py`` prints today (recomputed: a few seconds).
- The README's demo paragraph, docs/synthetic.md's demo table and the RD example's table (README "Codec
  evaluation", docs/rd.md): what ``prfnet demo`` and ``prfnet rd --example`` wrote when last run, recorded in
  ``docs/figures/`` (their ``results.json`` and ``bd_rate.json``, copied as written). Rerunning them takes
  minutes, so the docs are checked against the recorded files, and the text must name the command, the date and
  the machine of the run (``docs/figures/sources.json``). Every number of the demo's "Measured ..." sentence is
  one of the recorded figures or the run's time, seed or machine: a figure typed by hand fails here.
"""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest

from prfnet.rd.figures import percent_cell

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


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


# -- the demo and the RD example: recorded outputs of their commands ---------------------------------------------------


def sources() -> dict:
    return json.loads((FIGURES / "sources.json").read_text(encoding="utf-8"))


def recorded(name: str) -> dict:
    return json.loads((FIGURES / name).read_text(encoding="utf-8"))


def doc(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def paragraph(text: str, start: str) -> str:
    (found,) = [p for p in text.split("\n\n") if p.startswith(start)]
    return " ".join(found.split())


def acc(entry: dict) -> str:
    return f"{entry['accuracy']:.3f} [{entry['accuracy_ci95'][0]:.3f}, {entry['accuracy_ci95'][1]:.3f}]"


def diff(entry: dict) -> str:
    d = entry["paired_difference"]
    return f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def provenance(text: str, source: dict) -> None:
    """The text names the command (or says it is the one above), the date, the run time and the machine."""
    for key in ("date", "run_time", "machine"):
        assert source[key] in text, (key, source[key])


def test_sources_name_every_recorded_file():
    assert set(sources()) == {p.name for p in FIGURES.glob("*.json")} - {"sources.json"}
    for name, source in sources().items():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["date"]), name
        assert source["command"].startswith("prfnet "), name


def test_readme_demo_paragraph_is_the_recorded_demo():
    results, source = recorded("demo_results.json"), sources()["demo_results.json"]
    text = paragraph(doc("README.md"), "The demo builds")
    measured = text[text.index("Measured") :]
    prfnet, psnr, ssim, ceiling = results["prfnet"], results["psnr"], results["ssim"], results["ceiling"]
    figures = [
        f"PRFNet {acc(prfnet)}",
        f"PSNR {acc(psnr)}",
        f"PRFNet minus PSNR {diff(psnr)}",
        f"SSIM {ssim['accuracy']:.3f}",
        f"the hidden judge itself {ceiling['judge_accuracy']:.3f} on the same {ceiling['n_keys']} keys",
        f"from {prfnet['brier_step1']:.3f} to {prfnet['brier']:.3f}",
    ]
    for figure in figures:
        assert figure in measured, figure
    provenance(measured, source)
    assert f"`{source['command']}`" in measured
    # every number of the sentence is one of the figures above, of the run's date, time, machine and seed, or the
    # name "step 2"
    words = (*figures, source["run_time"], source["machine"], "seed 0", "step 2")
    allowed = [n for s in words for n in NUMBER.findall(s)]
    rest = measured.replace(source["date"], "").replace("docs/figures/demo_results.json", "")
    for number in NUMBER.findall(rest):
        assert number in allowed, f"{number} in the README's demo paragraph is not a recorded figure"
        allowed.remove(number)


def test_synthetic_md_demo_table_is_the_recorded_demo():
    results, source = recorded("demo_results.json"), sources()["demo_results.json"]
    text = doc("docs/synthetic.md")
    section = text[text.index("## The demo's set") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \| (.+) \|$", section, re.M)}
    metrics = [m for m in results if m != "ceiling"]
    assert set(rows) == set(metrics)
    for name in metrics:
        entry = results[name]
        by_kind = entry["accuracy_by_kind"]
        cells = [acc(entry), f"{by_kind['psnr_close']:.3f}", f"{by_kind['psnr_apart']:.3f}"]
        cells.append(diff(entry) if name != "prfnet" else "")
        assert [c.strip() for c in rows[name].split(" | ")] == cells, name
    provenance(" ".join(section.split()), source)
    ceiling, prfnet = results["ceiling"], results["prfnet"]
    prose = " ".join(section.split())
    judge = ceiling["judge_accuracy_ci95"]
    assert f"gets {ceiling['judge_accuracy']:.3f} [{judge[0]:.3f}, {judge[1]:.3f}]" in prose
    assert f"noise ceiling of those votes is {ceiling['noise_ceiling']:.3f}" in prose
    assert f"from {prfnet['brier_step1']:.3f} (the step-1 model) to {prfnet['brier']:.3f}" in prose
    assert f"expected calibration error is {prfnet['ece']:.3f}" in prose


RD_CODECS = {"WebP": "webp", "JPEG 2000": "jpeg2000", "AVIF": "avif", "JPEG XL": "jpegxl"}
RD_COLUMNS = {
    "PRFNet (demo model)": "prfnet",
    "PSNR": "psnr-rgb",
    "MS-SSIM (RGB)": "ms-ssim-rgb",
    "SSIMULACRA 2": "ssimulacra2",
    "ColorVideoVDP": "cvvdp",
    "FLIP": "flip",
}


def bd_cell(bd: dict, key: str, codec: str) -> str:
    return percent_cell(bd["bd_rate"][key][codec], bd["bd_rate_ci95"][key][codec])


def test_readme_rd_table_is_the_recorded_example():
    bd, source = recorded("rd_example_bd_rate.json"), sources()["rd_example_bd_rate.json"]
    readme = doc("README.md")
    section = readme[readme.index("## Codec evaluation") :]
    section = section[: section.index("\n## ")]
    assert f"prfnet {source['command'].removeprefix('prfnet ')}" in section  # the command shown above the table
    header = re.search(r"^\| codec \| (.+) \|$", section, re.M)
    columns = [RD_COLUMNS[c] for c in header[1].split(" | ")]
    rows = {m[1]: m[2].split(" | ") for m in re.finditer(r"^\| ([\w ]+?) \| (-.+) \|$", section, re.M)}
    assert set(rows) == set(RD_CODECS)
    assert {c for c in bd["bd_rate"]["prfnet"] if c != bd["anchor"]} == set(RD_CODECS.values())
    for label, codec in RD_CODECS.items():
        expected = [f"{bd_cell(bd, key, codec)}".replace(" [", " % [", 1) for key in columns]
        assert rows[label] == expected, label
    intro = paragraph(section, "`--example` encodes")
    provenance(intro, source)


def test_rd_md_console_table_is_the_recorded_example():
    bd, source = recorded("rd_example_bd_rate.json"), sources()["rd_example_bd_rate.json"]
    text = doc("docs/rd.md")
    rows = {m[1]: m[2] for m in re.finditer(r"^│ (\w+)\s+│(.+)│$", text, re.M)}
    keys = list(RD_COLUMNS.values())
    assert set(rows) == {"jpeg", *RD_CODECS.values()}
    for codec, cells in rows.items():
        found = [c.strip() for c in cells.split("│")]
        expected = ["anchor"] * len(keys) if codec == bd["anchor"] else [f"{bd_cell(bd, k, codec)} %" for k in keys]
        assert found == expected, codec
    after = " ".join(text[text.index("└") :].split("\n\n")[1].split())
    provenance(after, source)


# -- prfnet tune --example: docs/tune.md's tables ---------------------------------------------------------------------

TUNE_RUNS = ("tune_example_prfnet.json", "tune_example_ssimulacra2.json")


@pytest.mark.parametrize("name", TUNE_RUNS)
def test_tune_md_tables_are_the_recorded_runs(name):
    from prfnet.tune.report import totals_rows

    summary, source = recorded(name), sources()[name]
    text = doc("docs/tune.md")
    section = text[text.index("## The example, measured") :]
    blocks = section.split("\n\n")
    (at,) = [i for i, b in enumerate(blocks) if f"`{source['command']}`" in " ".join(b.split())]
    intro, table = " ".join(blocks[at].split()), blocks[at + 1].splitlines()
    provenance(intro, source)
    assert summary["metric"]["name"] in source["command"]
    columns, rows = totals_rows(summary)
    assert table[0] == "| " + " | ".join(columns) + " |"
    assert table[2:] == ["| " + " | ".join(row) + " |" for row in rows]
