"""``prfnet tune`` on the command line: the summary on stdout (strict JSON with --json), exit 2 when no image met
the target (with the closest encodes written), the default codecs, --example, and a metric that cannot run here."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from prfnet.baselines import MetricUnavailable
from prfnet.outputs import verify_outputs
from prfnet.synth.codecs import available_codecs
from prfnet.tune import DEFAULT_TUNE_CODECS, EXAMPLE_PHOTOS
from tests.rd.test_run import strict_json

from .test_options import one_error_line, run


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    y, x = np.mgrid[0:40, 0:56]
    pixels = 110 + 70 * np.sin(x / 5)[..., None] * np.cos(y / 6)[..., None] + rng.normal(0, 8, (40, 56, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def test_json_summary_and_the_default_codecs(capsys, image, tmp_path):
    code, out, err = run(capsys, "tune", image, "-m", "psnr", "--target", "25", "-o", tmp_path / "o", "--json",
                         "--bootstrap", "0")  # fmt: skip
    assert code == 0, err
    summary = strict_json(out)
    assert summary["codecs"] == [c for c in DEFAULT_TUNE_CODECS if c in available_codecs()]
    assert summary["target"] == {"kind": "value", "value": 25.0}
    assert all(c["status"] == "met" and c["distance"] >= 25 for c in summary["images"][0]["codecs"].values())
    assert verify_outputs(tmp_path / "o")["files"]


def test_nothing_met_exits_2_with_the_closest_encodes_written(capsys, image, tmp_path):
    code, out, err = run(capsys, "tune", image, "--codecs", "jpeg420", "-m", "psnr", "--target", "90",
                         "-o", tmp_path / "o", "--no-progress")  # fmt: skip
    assert code == 2 and "no image met the target" in err and "0/1" in out
    rows = (tmp_path / "o" / "tune.csv").read_text().splitlines()
    assert len(rows) == 2 and ",unreachable,q95," in rows[1]


def test_example_runs_the_shipped_photos(capsys, tmp_path):
    code, out, err = run(capsys, "tune", "--example", "--codecs", "jpeg420", "-m", "psnr", "--match",
                         "jpeg420:q60", "-o", tmp_path / "o", "--json", "--bootstrap", "100")  # fmt: skip
    assert code == 0, err
    summary = strict_json(out)
    assert [i["image"] for i in summary["images"]] == list(EXAMPLE_PHOTOS)
    assert max(max(i["width"], i["height"]) for i in summary["images"]) == 384
    saved = summary["totals"]["jpeg420"]["bits_saved_percent"]
    assert saved["n_images"] == len(EXAMPLE_PHOTOS) and saved["estimate"] >= 0  # its own q60 meets the target


def test_a_metric_that_cannot_run_here_is_one_line(capsys, image, tmp_path, monkeypatch):
    import prfnet.scoring.metrics as metrics

    def unavailable(name, device="cpu"):
        raise MetricUnavailable("flip needs flip-evaluator: pip install 'prfnet[codec-metrics]'")

    monkeypatch.setattr(metrics, "get_metric", unavailable)
    line = one_error_line(*run(capsys, "tune", image, "-m", "psnr", "--target", "30", "-o", tmp_path / "o"))
    assert "pip install" in line
    assert not (tmp_path / "o" / "tune.json").exists()


def test_a_default_codec_that_cannot_run_here_is_left_out_with_a_warning(capsys, image, tmp_path, monkeypatch):
    import prfnet.synth.codecs as codecs

    def missing():
        raise codecs.CodecUnavailable("imagecodecs is not installed")

    monkeypatch.setattr(codecs, "imagecodecs_module", missing)
    code, out, err = run(capsys, "tune", image, "-m", "psnr", "--target", "25", "-o", tmp_path / "o", "--json",
                         "--bootstrap", "0")  # fmt: skip
    assert code == 0 and strict_json(out)["codecs"] == ["jpeg420", "webp", "avif"]
    assert "warning: jpegxl left out" in err and "pip install 'prfnet[jxl]'" in err
