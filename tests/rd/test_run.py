"""``prfnet rd`` as a user runs it: CSV and folder inputs end to end (every output in the manifest, CompressAI values
equal to the means of per-image scores computed here, the sign of BD-rate), ``--json``, re-runs served by the score
store, every bad input refused before scoring with one line and nothing written, and ``--example``."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet
from prfnet.baselines import get_metric
from prfnet.cli import main
from prfnet.errors import ConfigError
from prfnet.images import load_image
from prfnet.outputs import verify_outputs
from prfnet.rd import read_rd_csv
from prfnet.rd.example import default_example_codecs
from prfnet.rd.run import codec_file_names, run_rd

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = "test_resnet"
SIZE = (72, 64)  # width, height
IMAGES = ("img0", "img1", "img2")
RATES = ("r0", "r1", "r2", "r3")
SIGMAS = (0.2, 0.1, 0.05, 0.025)  # noise of the decoded images, falling with the rate: quality rises strictly
BPP = (0.25, 0.5, 1.0, 2.0)  # bpp of codec A at its rate points (times an image factor)
FACTORS = (1.0, 1.3, 0.8)
B_SCALE = 0.8  # codec B: the same decoded images as A with 20 % fewer bits -> BD-rate -20 % for every metric
CODECS = {"A": 1.0, "B": B_SCALE}


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


def make_rd_data(root: Path) -> list[dict]:
    """originals/<image>.png; decoded/<codec>/<rate>/<image>.png with <image>.bin beside (size = the bpp); rows of
    the CSV (codec, image, rate_point, decoded_path, original_path, bpp), paths relative to ``root``."""
    rng = np.random.default_rng(0)
    width, height = SIZE
    yy, xx = np.mgrid[0:height, 0:width] / max(SIZE)
    rows = []
    for i, image in enumerate(IMAGES):
        smooth = np.stack([np.sin(3 * xx + i), np.cos(4 * yy - i), np.sin(2 * (xx + yy) + 2 * i)], -1) * 0.4 + 0.5
        _save(smooth, root / "originals" / f"{image}.png")
        for r, (rate, sigma) in enumerate(zip(RATES, SIGMAS, strict=True)):
            decoded = smooth + rng.normal(0, sigma, smooth.shape)
            for codec, scale in CODECS.items():
                path = root / "decoded" / codec / rate / f"{image}.png"
                _save(decoded, path)
                n_bytes = round(BPP[r] * FACTORS[i] * scale * width * height / 8)
                path.with_suffix(".bin").write_bytes(b"\0" * n_bytes)
                bpp = 8 * n_bytes / (width * height)
                rel = path.relative_to(root).as_posix()
                rows.append({"codec": codec, "image": image, "rate_point": rate, "decoded_path": rel,
                             "original_path": f"originals/{image}.png", "bpp": repr(bpp)})  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def rd_data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("rd")
    rows = make_rd_data(root)
    checkpoint = root / "tiny.safetensors"
    PRFNet(TINY).save_pretrained(checkpoint)
    return {"root": root, "rows": rows, "csv": write_csv(root / "rd.csv", rows), "ckpt": checkpoint}


@pytest.fixture(autouse=True)
def plain_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


FAST = ("--no-progress", "--workers", "0", "--bootstrap", "50")


def rd_csv(capsys, rd_data, out: Path, *extra) -> tuple[int, str, str]:
    return run(capsys, "rd", "--csv", rd_data["csv"], "-m", "prfnet,psnr", "-c", rd_data["ckpt"], "--out", out,
               *FAST, *extra)  # fmt: skip


# ------------------------------------------------------------------------------------------------ end to end


def per_image_means(rd_data, codec: str) -> dict[str, list[float]]:
    """Mean over images at each rate point of psnr and prfnet, scored here one pair at a time."""
    model = PRFNet.from_pretrained(rd_data["ckpt"]).eval()
    psnr = get_metric("psnr")
    root = rd_data["root"]
    means: dict[str, list[float]] = {"psnr-rgb": [], "prfnet": [], "bpp": []}
    for r, rate in enumerate(RATES):
        scores: dict[str, list[float]] = {"psnr-rgb": [], "prfnet": []}
        for image in IMAGES:
            ref = load_image(root / "originals" / f"{image}.png")
            dist = load_image(root / "decoded" / codec / rate / f"{image}.png")
            scores["psnr-rgb"].append(float(psnr(ref, dist)[0]))
            with torch.no_grad():
                scores["prfnet"].append(float(model.score(ref, dist)[0]))
        for key, values in scores.items():
            means[key].append(float(np.mean(values)))
        bpps = [float(row["bpp"]) for row in rd_data["rows"] if row["codec"] == codec and row["rate_point"] == rate]
        means["bpp"].append(float(np.mean(bpps)))
        assert len(bpps) == len(IMAGES) and r == RATES.index(rate)
    return means


def test_csv_end_to_end_outputs_values_sign_and_rerun_from_the_store(capsys, rd_data, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = rd_csv(capsys, rd_data, out, "--json")
    assert code == 0, stderr
    summary = strict_json(stdout)
    assert stdout.count("\n") == 1  # one JSON object, one line, nothing else on stdout

    names = {"results/A.json", "results/B.json", "bd_rate.json", "rd_prfnet.png", "rd_psnr.png", "report.html",
             "rd.json"}  # fmt: skip
    manifest = verify_outputs(out)
    assert {f["path"] for f in manifest["files"]} == names
    assert all((out / n).is_file() for n in names)
    assert (out / "scores.sqlite").is_file() and "scores.sqlite" not in {f["path"] for f in manifest["files"]}
    assert strict_json((out / "rd.json").read_text()) == summary

    for codec in CODECS:
        results = strict_json((out / "results" / f"{codec}.json").read_text())
        assert results["name"] == codec and set(results["results"]) == {"bpp", "psnr-rgb", "prfnet"}
        expected = per_image_means(rd_data, codec)
        for key, values in expected.items():
            np.testing.assert_allclose(results["results"][key], values, rtol=1e-5, err_msg=f"{codec} {key}")

    bd = strict_json((out / "bd_rate.json").read_text())
    assert bd["anchor"] == "A" and bd["method"] == "akima" and set(bd["bd_rate"]) == {"psnr-rgb", "prfnet"}
    assert bd["bd_rate"]["psnr-rgb"]["A"] == 0.0
    assert bd["bd_rate"]["psnr-rgb"]["B"] == pytest.approx((B_SCALE - 1) * 100, abs=0.5)  # fewer bits: negative
    low, high = bd["bd_rate_ci95"]["psnr-rgb"]["B"]
    assert low <= bd["bd_rate"]["psnr-rgb"]["B"] <= high < 0
    assert bd["direction"] == {"psnr-rgb": "higher", "prfnet": "lower"}
    assert summary["bd_rate"] == bd

    assert summary["codecs"] == ["A", "B"] and summary["anchor"] == "A" and summary["n_images"] == len(IMAGES)
    assert [p["label"] for p in summary["rate_points"]["A"]] == list(RATES)
    assert summary["metrics"]["prfnet"] == {"available": True, "higher_better": False, "direction": "lower",
                                            "key": "prfnet"}  # fmt: skip
    store = summary["store"]
    n_scores = len(rd_data["rows"]) * 2
    assert store["path"] == str(out / "scores.sqlite") and store["scores"] == n_scores
    assert store["from_store"] + store["computed"] == n_scores and store["computed"] > 0

    before = {n: (out / n).read_bytes() for n in names - {"rd.json"}}
    code, stdout, stderr = rd_csv(capsys, rd_data, out, "--json")
    assert code == 0, stderr
    again = strict_json(stdout)
    assert again["store"]["computed"] == 0 and again["store"]["from_store"] == n_scores  # nothing scored again
    assert again["store"]["by_metric"] == {
        m: {"from_store": len(rd_data["rows"]), "computed": 0} for m in ("prfnet", "psnr")
    }
    assert {n: (out / n).read_bytes() for n in before} == before
    assert {k: v for k, v in again.items() if k != "store"} == {k: v for k, v in summary.items() if k != "store"}


def test_folder_input_table_and_notes(capsys, rd_data, tmp_path):
    """Folder layout with the default 2 decoding workers; MS-SSIM refuses 72x64 images and is listed, not fatal."""
    out = tmp_path / "out"
    root = rd_data["root"]
    code, stdout, stderr = run(capsys, "rd", "--decoded", root / "decoded", "--originals", root / "originals",
                               "-m", "psnr,ms_ssim_rgb,lpips", "--anchor", "B", "--out", out, "--no-progress",
                               "--bootstrap", "50")  # fmt: skip
    assert code == 0, stderr
    row = next(line for line in stdout.splitlines() if line.strip().startswith("│ A"))
    estimate = float(re.search(r"([+-]\d+\.\d) \[", row).group(1))
    assert estimate == pytest.approx((1 / B_SCALE - 1) * 100, abs=0.5)  # A spends 25 % more bits than B
    assert "%" in row and "anchor" in next(line for line in stdout.splitlines() if line.strip().startswith("│ B"))
    summary = strict_json((out / "rd.json").read_text())
    assert summary["inputs"] == {"decoded": str(root / "decoded"), "originals": str(root / "originals")}
    assert (
        summary["metrics"]["ms_ssim_rgb"]["available"] is False and "161" in summary["metrics"]["ms_ssim_rgb"]["reason"]
    )
    assert "ms_ssim_rgb: not scored" in stdout and not (out / "rd_ms_ssim_rgb.png").exists()
    if not summary["metrics"]["lpips"]["available"]:  # no LPIPS weights here: listed with the reason, not fatal
        assert "lpips: not scored" in stdout and not (out / "rd_lpips.png").exists()
    assert set(strict_json((out / "results" / "A.json").read_text())["results"]) == {"bpp", "psnr-rgb"}
    assert "wrote " in stderr and "wrote " not in stdout


def test_trainer_options_score_through_lightning(capsys, rd_data, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = rd_csv(capsys, rd_data, out, "-m", "psnr", "--accelerator", "cpu", "--devices", "1",
                                  "--json")  # fmt: skip
    assert code == 0, stderr
    summary = strict_json(stdout)
    assert summary["store"]["computed"] == len(rd_data["rows"])
    assert summary["bd_rate"]["bd_rate"]["psnr-rgb"]["B"] == pytest.approx((B_SCALE - 1) * 100, abs=0.5)
    assert (out / "manifest.json").is_file()


def test_no_bd_rate_removes_the_stale_bd_rate_json(capsys, rd_data, tmp_path):
    out = tmp_path / "out"
    assert rd_csv(capsys, rd_data, out, "-m", "psnr")[0] == 0
    assert (out / "bd_rate.json").is_file()
    code, stdout, stderr = rd_csv(capsys, rd_data, out, "-m", "psnr", "--no-bd-rate")
    assert code == 0, stderr
    assert not (out / "bd_rate.json").exists() and "BD-rate not computed" in stdout
    assert "bd_rate.json" not in {f["path"] for f in verify_outputs(out)["files"]}


# ------------------------------------------------------------------------------------------------ bad inputs


def _broken_rows(rd_data, tmp: Path, case: str) -> list[dict]:
    """The module's rows, absolute paths, with one problem ``case``."""
    root = rd_data["root"]
    rows = [{**r, "decoded_path": str(root / r["decoded_path"]), "original_path": str(root / r["original_path"])}
            for r in rd_data["rows"]]  # fmt: skip
    pick = next(i for i, r in enumerate(rows) if (r["codec"], r["image"], r["rate_point"]) == ("A", "img1", "r1"))
    if case == "missing decoded file":
        rows[pick]["decoded_path"] = str(tmp / "nowhere.png")
    elif case == "size mismatch":
        small = tmp / "small.png"
        _save(np.zeros((40, 40, 3)), small)
        rows[pick]["decoded_path"] = str(small)
    elif case == "rate point missing an image":
        del rows[pick]
    elif case == "non-monotone bpp":  # img1 at r1 above its r2 bpp, the mean order unchanged
        r2 = next(r for r in rows if (r["codec"], r["image"], r["rate_point"]) == ("A", "img1", "r2"))
        rows[pick]["bpp"] = repr(float(r2["bpp"]) * 1.01)
    elif case == "fewer than 4 rate points":
        rows = [r for r in rows if not (r["codec"] == "B" and r["rate_point"] == "r3")]
    return rows


BAD = {
    "missing decoded file": ("codec A", "rate point r1", "nowhere.png"),
    "size mismatch": ("codec A", "rate point r1", "small.png", "40x40"),
    "rate point missing an image": ("codec A", "rate point r1", "img1"),
    "non-monotone bpp": ("codec A", "rate point r2", "img1.png"),
    "fewer than 4 rate points": ("codec B", "only 3", "--no-bd-rate"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(capsys, rd_data, tmp_path, case):
    path = write_csv(tmp_path / "bad.csv", _broken_rows(rd_data, tmp_path, case))
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "rd", "--csv", path, "-m", "psnr", "--out", out, *FAST)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1, stderr
    for needle in BAD[case]:
        assert needle in stderr, (needle, stderr)
    assert not out.exists()  # no results, no manifest, no store
    if case == "fewer than 4 rate points":
        code, stdout, stderr = run(capsys, "rd", "--csv", path, "-m", "psnr", "--out", out, "--no-bd-rate", *FAST)
        assert code == 0, stderr
        assert (out / "rd_psnr.png").is_file() and not (out / "bd_rate.json").exists()
        assert [p["label"] for p in strict_json((out / "rd.json").read_text())["rate_points"]["B"]] == list(RATES[:3])


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (("--anchor", "nope"), ("anchor 'nope'", "A, B")),
        (("-m", "psnr,nosuch"), ("unknown metric 'nosuch'",)),
        (("--example",), ("exactly one input",)),
        (("--bd-method", "spline"), ("akima, pchip, cubic",)),
        (("-m", "prfnet"), ("checkpoint",)),
    ],
)
def test_bad_options_exit_2_with_one_line_and_write_nothing(capsys, rd_data, tmp_path, extra, needles):
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "rd", "--csv", rd_data["csv"], "-m", "psnr", "--out", out, *FAST, *extra)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1, stderr
    for needle in needles:
        assert needle in stderr, (needle, stderr)
    assert not out.exists()


def test_codec_file_names_are_sanitised_and_collisions_refused(rd_data, tmp_path):
    assert codec_file_names(["jpeg", "x/y 2", ".hidden"]) == {"jpeg": "jpeg", "x/y 2": "x_y_2", ".hidden": "hidden"}
    with pytest.raises(ConfigError, match="both give the results file name"):
        codec_file_names(["a b", "a_b"])
    items = [replace(it, codec={"A": "a/b", "B": "a_b"}[it.codec]) for it in read_rd_csv(rd_data["csv"])]
    with pytest.raises(ConfigError, match="both give the results file name results/a_b.json"):  # before scoring
        run_rd(items, "psnr", tmp_path / "out", bootstrap=0, progress=False)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ example


@pytest.mark.slow
def test_example_end_to_end_with_the_tiny_backbone(capsys, tmp_path):
    out = tmp_path / "out"
    argv = (
        "rd",
        "--example",
        "--out",
        out,
        "--random-init",
        "--backbone",
        TINY,
        "--no-progress",
        "--json",
        "--ms-ssim-db",
    )
    code, stdout, stderr = run(capsys, *argv)
    assert code == 0, stderr
    assert "--random-init" in stderr  # the loud warning
    summary = strict_json(stdout)
    assert summary["anchor"] == "jpeg" and summary["codecs"] == list(default_example_codecs())
    assert summary["n_images"] == 4 and all(len(r) == 5 for r in summary["rate_points"].values())
    assert all(summary["metrics"][m]["available"] for m in ("prfnet", "psnr", "ms_ssim_rgb"))
    bd = summary["bd_rate"]["bd_rate"]["psnr-rgb"]
    assert bd["jpeg"] == 0.0 and all(bd[c] is not None for c in summary["codecs"])
    assert {f["path"] for f in verify_outputs(out)["files"]} >= {"results/jpeg.json", "bd_rate.json", "rd_psnr.png"}
    jpeg = strict_json((out / "results" / "jpeg.json").read_text())["results"]
    np.testing.assert_allclose(jpeg["ms-ssim-rgb-db"], -10 * np.log10(1 - np.array(jpeg["ms-ssim-rgb"])))
    csv_path = out / "example" / "rd.csv"
    stamp = csv_path.stat().st_mtime_ns
    shutil.rmtree(out / "results")
    code, stdout, stderr = run(capsys, *argv)
    assert code == 0, stderr
    assert csv_path.stat().st_mtime_ns == stamp and "using the example inputs" in stderr  # not written again
    assert strict_json(stdout)["store"]["computed"] == 0


@pytest.mark.slow
def test_ddp_two_processes_rank_zero_writes(rd_data, tmp_path):
    """Lightning re-runs the command in a second process: one JSON object on stdout, one set of outputs."""
    out = tmp_path / "out"
    argv = ["rd", "--csv", str(rd_data["csv"]), "-m", "psnr,prfnet", "-c", str(rd_data["ckpt"]), "--out", str(out),
            "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", *FAST, "--json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")}
    done = subprocess.run([sys.executable, "-m", "prfnet", *argv], capture_output=True, text=True, env=env,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = strict_json(done.stdout)
    assert summary["store"]["computed"] == 2 * len(rd_data["rows"])
    assert summary["bd_rate"]["bd_rate"]["psnr-rgb"]["B"] == pytest.approx((B_SCALE - 1) * 100, abs=0.5)
    assert {f["path"] for f in verify_outputs(out)["files"]} >= {"results/A.json", "results/B.json", "rd.json"}
    assert not [p for p in out.iterdir() if p.name.startswith(".run-")]


def test_metric_names_are_canonical_with_options():
    from prfnet.rd.run import figure_stem, metric_names

    names = metric_names("prfnet,PSNR,MS-SSIM-RGB,vifp,cvvdp:standard_fhd,cvvdp:standard_4k,flip")
    assert names == ["prfnet", "psnr", "ms_ssim_rgb", "vif", "cvvdp:standard_fhd", "cvvdp", "flip"]
    assert figure_stem("cvvdp:standard_fhd") == "cvvdp-standard_fhd"
    with pytest.raises(ConfigError, match="'cinema' is not a cvvdp display; choose one of standard_4k"):
        metric_names("cvvdp:cinema")
