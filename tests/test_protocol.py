"""ProtocolRun (prfnet.protocol), the template of ``prfnet eval`` and ``prfnet rd``: the output folder checked
before anything is read, image files checked before any model loads, entries in the requested order, one set of
outputs published (and nothing at all without an output folder)."""

from __future__ import annotations

import json

import pytest

from prfnet.errors import ConfigError, DataError, OutputError
from prfnet.outputs import MANIFEST, verify_outputs
from prfnet.protocol import EVAL_OUTPUTS, ProtocolRun
from prfnet.report.html import Report
from prfnet.scoring.metrics import MetricSelection
from tests.conftest import noisy, smooth_image, write_png


class Named:
    def __init__(self, name: str, higher_better: bool):
        self.name, self.higher_better = name, higher_better


def _pairs(folder, n: int = 2) -> list[tuple[str, str]]:
    pairs = []
    for i in range(n):
        write_png(folder / f"r{i}.png", smooth_image(i))
        write_png(folder / f"d{i}.png", noisy(smooth_image(i), 0.1, i))
        pairs.append((str(folder / f"r{i}.png"), str(folder / f"d{i}.png")))
    return pairs


def _no_model():
    raise AssertionError("the model must not load")


def test_entries_keep_the_requested_order_and_mark_unavailable_metrics():
    selection = MetricSelection(
        metrics=[Named("psnr", True), Named("prfnet", False)],
        unavailable={"lpips": "no weights"},
        names=["prfnet", "lpips", "psnr"],
    )
    seen = []

    def intervals(results):
        seen.append(list(results))
        results["psnr"]["ci"] = [0.0, 1.0]

    results = ProtocolRun.entries(selection, lambda metric: {"score": len(metric.name)}, intervals)
    assert list(results) == ["prfnet", "lpips", "psnr"]  # request order, not the order of scoring
    assert results["lpips"] == {"available": False, "reason": "no weights"}
    assert results["prfnet"] == {"available": True, "higher_better": False, "score": 6}
    assert results["psnr"] == {"available": True, "higher_better": True, "score": 4, "ci": [0.0, 1.0]}
    assert len(seen) == 1 and sorted(seen[0]) == ["lpips", "prfnet", "psnr"]  # intervals see every entry, once
    assert list(ProtocolRun.entries(selection, lambda metric: {})) == ["prfnet", "lpips", "psnr"]


def test_without_an_output_folder_nothing_is_written(tmp_path, monkeypatch):
    pairs = _pairs(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    run = ProtocolRun(None, EVAL_OUTPUTS)
    assert run.outputs is None and run.store is None and run.store_path is None  # no default store either
    assert run.final("results.json") is None
    selection, scores = run.score(pairs, "pairs.csv", ["psnr"], model=_no_model, progress=False)
    assert [m.name for m in selection.metrics] == ["psnr"] and scores.lookup("psnr", pairs).shape == (2,)
    run.publish({"psnr": {}}, Report("nothing"), lambda sink: pytest.fail("no sink without an output folder"))
    with pytest.raises(ValueError, match="writes no outputs"), run.writing():
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_the_folder_is_checked_before_anything_is_read(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        ProtocolRun(blocker, EVAL_OUTPUTS)
    run = ProtocolRun(tmp_path / "out", EVAL_OUTPUTS)
    assert run.outputs.checked and run.store_path == tmp_path / "out" / "scores.sqlite"
    pairs = _pairs(tmp_path / "images")
    missing = [*pairs, (pairs[0][0], str(tmp_path / "images" / "gone.png"))]
    with pytest.raises(DataError, match=r"gone\.png: image not found \(listed in pairs\.csv\)"):
        run.score(missing, "pairs.csv", ["prfnet", "psnr"], model=_no_model, progress=False)  # before the model
    assert not (tmp_path / "out" / MANIFEST).exists() and not (tmp_path / "out" / "scores.sqlite").exists()


def test_require_refuses_a_run_without_any_usable_metric(tmp_path, monkeypatch):
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(tmp_path / "no_weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))
    pairs = _pairs(tmp_path / "images", n=1)
    run = ProtocolRun(None, EVAL_OUTPUTS)
    with pytest.raises(ConfigError, match=r"none of the metrics can run here \(lpips: .*weights"):
        run.score(pairs, "pairs.csv", ["lpips"], progress=False, require=True)
    selection, _ = run.score(pairs, "pairs.csv", ["lpips"], progress=False)  # without require: listed as unusable
    assert selection.metrics == [] and "weights" in selection.unavailable["lpips"]


def test_publish_writes_results_report_and_more_as_one_set(tmp_path):
    out = tmp_path / "out"
    run = ProtocolRun(out, EVAL_OUTPUTS, store=None)
    assert run.store is None and run.final("results.json") == out / "results.json"
    report = Report("protocol")
    report.add_text("hello")
    run.publish({"psnr": {"score": 0.5}}, report, lambda sink: sink.path("scores.csv").write_text("a,b\n"))
    listed = {entry["path"] for entry in verify_outputs(out)["files"]}
    assert listed == {"results.json", "report.html", "scores.csv"}
    assert json.loads((out / "results.json").read_text()) == {"psnr": {"score": 0.5}}
    assert "<p>hello</p>" in (out / "report.html").read_text()
