"""report.html of a CLIC evaluation shows PRFNet's per-pixel maps of the example triplets when PRFNet was
evaluated (and only then); a map that cannot be computed leaves a note, never a failed evaluation."""

from __future__ import annotations

import json

import pytest

from prfnet.errors import InputError
from prfnet.evaluation import evaluate_clic
from prfnet.report.plots import MAPS_CAPTION
from tests.conftest import make_clic_dir

PNG = "data:image/png;base64"
CAPTION = "per-pixel distance maps for the example triplets"


@pytest.fixture(scope="module")
def clic(tmp_path_factory):
    root = make_clic_dir(tmp_path_factory.mktemp("clic_maps"))
    rows = dict.fromkeys(",".join(line.split(",")[:3]) for line in (root / "oracle.csv").read_text().split())
    (root / "validation.csv").write_text("\n".join(rows) + "\n")
    return root


def _evaluate(clic, out, metrics, model):
    return evaluate_clic(
        clic / "validation.csv",
        clic / "images",
        oracle=clic / "oracle.csv",
        metrics=metrics,
        model=model,
        out_dir=out,
        progress=False,
    )


def test_report_has_the_maps_figure_with_prfnet_and_not_without(clic, tiny_model, tmp_path):
    assert CAPTION in MAPS_CAPTION
    with_prfnet = _evaluate(clic, tmp_path / "prfnet", ["prfnet", "psnr"], tiny_model)
    html = (tmp_path / "prfnet" / "report.html").read_text()
    assert CAPTION in html and "red where A is farther" in html
    assert "exactly PRFNet&#x27;s distance" in html  # the caption states the relation mean(map) = distance
    # bars, reliability, examples, maps
    assert html.count(PNG) == 4
    assert json.loads((tmp_path / "prfnet" / "results.json").read_text()) == json.loads(json.dumps(with_prfnet))

    _evaluate(clic, tmp_path / "psnr", ["psnr"], None)
    html = (tmp_path / "psnr" / "report.html").read_text()
    assert CAPTION not in html and "Where PRFNet sees" not in html
    assert html.count(PNG) == 2  # bars, examples (no reliability, no maps)


def test_a_map_that_cannot_be_computed_leaves_a_note_and_the_same_results(clic, tiny_model, tmp_path, monkeypatch):
    good = _evaluate(clic, tmp_path / "good", ["prfnet"], tiny_model)

    def refuse(*args, **kwargs):
        raise InputError("images too small for a map")

    monkeypatch.setattr(tiny_model, "compare_maps", refuse)
    results = _evaluate(clic, tmp_path / "bad", ["prfnet"], tiny_model)
    html = (tmp_path / "bad" / "report.html").read_text()
    assert "No PRFNet maps of the example triplets: images too small for a map" in html
    assert CAPTION not in html
    assert (tmp_path / "good" / "report.html").read_text().count(PNG) == html.count(PNG) + 1
    # results.json is the same with or without the figure (but for where each run put its submission)
    written = [json.loads((tmp_path / run / "results.json").read_text())["prfnet"] for run in ("good", "bad")]
    for entry in [*written, results["prfnet"], good["prfnet"]]:
        assert entry.pop("submission").endswith("submission_prfnet.csv")
    assert written[0] == written[1] == json.loads(json.dumps(good["prfnet"]))
    assert json.loads(json.dumps(results)) == json.loads(json.dumps(good))
