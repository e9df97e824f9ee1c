"""``prfnet tune``'s run (prfnet.tune.run): one output set, the reference encoded once per image, totals with
intervals, the same bytes twice, and nothing written on a refusal."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet
from prfnet.baselines import get_metric
from prfnet.errors import ImageReadError, InputError, OutputError
from prfnet.outputs import OutputSet, verify_outputs
from prfnet.scoring.metrics import PRFNetMetric
from prfnet.tune import TUNE_OUTPUTS, Target, file_images, parse_encoding, run_tune
from prfnet.tune.run import CSV_COLUMNS, TuneImage

CODECS = ["jpeg420", "webp"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three 64 x 80 images with texture and edges (PNG files)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:64, 0:80]
    for i in range(3):
        base = 120 + 80 * np.sin(x / (4 + 3 * i))[..., None] * np.cos(y / 7)[..., None]
        pixels = np.clip(base + rng.normal(0, 12 + 6 * i, (64, 80, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


def run(photos, out, metric, target, codecs=CODECS, **kw):
    return run_tune(file_images([photos]), codecs, metric, target, OutputSet(out, TUNE_OUTPUTS).check(),
                    bootstrap=200, **kw)  # fmt: skip


def test_match_run_writes_one_consistent_set(photos, tmp_path):
    out = tmp_path / "out"
    summary = run(photos, out, get_metric("psnr"), Target(match=parse_encoding("jpeg420:q85")))
    listed = {f["path"] for f in verify_outputs(out)["files"]}
    assert {"tune.json", "tune.csv", "report.html"} <= listed
    rows = list(csv.DictReader(io.StringIO((out / "tune.csv").read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 3 * len(CODECS)
    for row in rows:
        assert row["file"] in listed and row["status"] == "met"
        data = (out / row["file"]).read_bytes()
        width, height = Image.open(out / row["file"]).size
        assert int(row["bytes"]) == len(data) and float(row["bpp"]) == pytest.approx(8 * len(data) / (width * height))
        assert float(row["distance"]) >= float(row["target"])  # PSNR: higher = closer
    jpeg = [r for r in rows if r["codec"] == "jpeg420"]
    assert all(int(r["setting"][1:]) <= 85 for r in jpeg)  # JPEG's own q85 meets its target: nothing above it is needed
    assert all(float(r["saved_percent"]) >= 0 for r in jpeg)
    saved = summary["totals"]["webp"]["bits_saved_percent"]
    assert saved["n_images"] == 3 and saved["low"] <= saved["estimate"] <= saved["high"]
    assert json.loads((out / "tune.json").read_text()) == json.loads(json.dumps(summary))


def test_the_match_bitstreams_are_kept_and_the_inputs_named_for_the_viewer(photos, tmp_path):
    out = tmp_path / "out"
    summary = run(photos, out, get_metric("psnr"), Target(match=parse_encoding("jpeg420:q85")), codecs=["webp"])
    listed = {f["path"] for f in verify_outputs(out)["files"]}
    assert not any(path.startswith("files/original/") for path in listed)  # the inputs are files: no copies
    for entry in summary["images"]:
        assert entry["original"] == str((photos / f"{entry['image']}.png").resolve())
        match = entry["match"]
        assert match["file"] == f"files/match/{entry['image']}.jpg" and match["file"] in listed
        data = (out / match["file"]).read_bytes()
        assert len(data) == match["bytes"] and Image.open(io.BytesIO(data)).format == "JPEG"
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
        original = np.asarray(Image.open(entry["original"]).convert("RGB"), dtype=np.float64)
        psnr = 10 * np.log10(255.0**2 / np.mean((decoded - original) ** 2))
        assert psnr == pytest.approx(match["distance"], abs=0.01)  # the file is the encoding the target came from


def test_images_made_in_memory_are_written_losslessly_as_the_originals(photos, tmp_path):
    pixels = np.asarray(Image.open(photos / "img1.png").convert("RGB"))
    made = TuneImage("made", "made in memory", (pixels.shape[1], pixels.shape[0]), lambda: pixels)
    out = tmp_path / "out"
    summary = run_tune([made], ["webp"], get_metric("psnr"), Target(value=30.0), OutputSet(out, TUNE_OUTPUTS).check(),
                       bootstrap=0)  # fmt: skip
    (entry,) = summary["images"]
    assert entry["original"] == "files/original/made.png" and entry["match"] is None
    assert np.array_equal(np.asarray(Image.open(out / entry["original"])), pixels)
    assert entry["original"] in {f["path"] for f in verify_outputs(out)["files"]}


def test_the_same_inputs_give_the_same_bytes(photos, tmp_path):
    target = Target(value=32.0)
    run(photos, tmp_path / "a", get_metric("psnr"), target)
    run(photos, tmp_path / "b", get_metric("psnr"), target)
    for name in ("tune.json", "tune.csv"):
        first, second = (tmp_path / d / name for d in "ab")
        assert first.read_text().replace(str(tmp_path / "a"), "") == second.read_text().replace(str(tmp_path / "b"), "")


def test_prfnet_encodes_each_reference_once(photos, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = PRFNet("test_resnet").eval()
    calls = {"encode": 0}
    encode = model.encode

    def counting(ref):
        calls["encode"] += 1
        return encode(ref)

    monkeypatch.setattr(model, "encode", counting)
    metric = PRFNetMetric(model)
    summary = run(photos, tmp_path / "out", metric, Target(match=parse_encoding("jpeg420:q70")))
    assert calls["encode"] == 3  # one per image: the match encoding and both codecs' searches share it
    row = summary["images"][0]["codecs"]["webp"]
    assert row["status"] == "met" and row["distance"] <= row["target"]  # a distance: lower = closer
    assert summary["metric"] == {"name": "prfnet", "higher_better": False, "about": metric.about}


def test_an_unreachable_target_is_reported_not_hidden(photos, tmp_path):
    summary = run(photos, tmp_path / "out", get_metric("psnr"), Target(value=99.0), codecs=["jpeg420"])
    totals = summary["totals"]["jpeg420"]
    assert totals["n_met"] == 0 and totals["n_unreachable"] == 3 and totals["mean_bpp"] is None
    assert all(i["codecs"]["jpeg420"]["label"] == "q95" for i in summary["images"])  # the closest: the top setting


def test_refusals_come_before_any_output(photos, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="minimum side of 176"):
        run(photos, out, get_metric("ms_ssim"), Target(value=0.9))
    assert not out.exists() or not any(out.iterdir())
    out.mkdir(exist_ok=True)
    (out / "tune.csv").write_text("mine\n")  # the user's file where the run writes
    with pytest.raises(OutputError, match="tune.csv"):
        run(photos, out, get_metric("psnr"), Target(value=30.0))
    assert (out / "tune.csv").read_text() == "mine\n"


def test_file_images_names_are_unique_and_checked(tmp_path, photos):
    other = tmp_path / "other"
    other.mkdir()
    (other / "img0.png").write_bytes((photos / "img0.png").read_bytes())
    images = file_images([photos / "img0.png", other / "img0.png"])
    assert [i.name for i in images] == ["img0", "img0-2"] and images[0].size == (80, 64)
    assert images[0].load().dtype == np.uint8
    with pytest.raises(ImageReadError, match="not found"):
        file_images([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        file_images([tmp_path / "empty"])
