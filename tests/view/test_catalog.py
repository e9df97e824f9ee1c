"""``prfnet.view.catalog``: every kind of output set read into the viewer's document, checked against the run's own
files (submissions, oracle, judges, scores.csv, rd.json and the CompressAI results), the model's own probability,
the 20,000-triplet document without decoding an image, and bad folders refused in one line. Sets are made with the
project's commands on tiny images and the tiny model (CPU, seconds)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from prfnet.cli import main
from prfnet.errors import InputError
from prfnet.outputs import OutputSet, reset_command, set_command
from prfnet.view import ViewData, build_view
from prfnet.view.sources import Command, started_in
from tests.conftest import (
    make_bapps_tree,
    make_clic_dir,
    make_pairs,
    noisy,
    save_tiny_checkpoint,
    smooth_image,
    write_png,
)

TOOLS = ["--no-progress", "--workers", "0", "-c", "tiny.safetensors"]


def _cli(*argv) -> None:
    code = main([str(a) for a in argv])
    assert code == 0, argv


@pytest.fixture(scope="module")
def sets(tmp_path_factory, one_thread):
    """A folder with a tiny checkpoint, CLIC / BAPPS / MOS / RD inputs and one output set of each command (tune on
    the RD originals), run from
    that folder with relative paths (as a user types them)."""
    root = tmp_path_factory.mktemp("sets")
    save_tiny_checkpoint(root / "tiny.safetensors", 0)
    (root / "clic").mkdir()
    clic = make_clic_dir(root / "clic")
    rows = "".join(f"r{r}.png,r{r}_d0.png,r{r}_d1.png\nr{r}.png,r{r}_d1.png,r{r}_d0.png\n" for r in range(4))
    (clic / "validation.csv").write_text(rows)
    kinds = "".join(f"r{r}.png,r{r}_d0.png,r{r}_d1.png,{'close' if r % 2 else 'apart'}\n" for r in range(4))
    (clic / "kinds.csv").write_text(kinds)
    make_bapps_tree(root / "bapps", {"val": {"traditional": [0.2, 0.8, 0.5], "cnn": [0.1, 0.6]}})
    pairs = make_pairs(root / "mos", refs=2, dists=3)
    lines = [f"{Path(r).name},{Path(d).name},{5.0 - i % 3 + 0.1 * (i // 3)}" for i, (r, d) in enumerate(pairs)]
    (root / "mos" / "mos.csv").write_text("ref,dist,score\n" + "\n".join(lines) + "\n")
    rd = ["codec,image,rate_point,decoded_path,original_path,bpp"]
    for image in range(2):
        ref = smooth_image(image, 48)
        write_png(root / "rd" / "orig" / f"i{image}.png", ref)
        for c, codec in enumerate(("jpeg", "webp")):
            for k in range(4):
                write_png(root / "rd" / codec / f"q{k}" / f"i{image}.png", noisy(ref, 0.2 / (k + 1) / (c + 1), k))
                rd.append(f"{codec},i{image},q{k},{codec}/q{k}/i{image}.png,orig/i{image}.png,{0.2 * (k + 1) + c / 20}")
    (root / "rd" / "rd.csv").write_text("\n".join(rd) + "\n")
    metrics = ["--metrics", "prfnet,psnr,ssim"]
    clic_args = ["--csv", "clic/validation.csv", "--root", "clic/images", "--oracle", "clic/oracle.csv"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("PRFNET_CHECKPOINT", raising=False)
        _cli("eval", "clic", *clic_args, "--kinds", "clic/kinds.csv", *metrics, *TOOLS, "--out", "clic_out")
        _cli("eval", "bapps", "--root", "bapps/2afc/val", *metrics, *TOOLS, "-o", "bapps_out")
        _cli("eval", "mos", "--dataset", "csv", "--csv", "mos/mos.csv", *metrics, *TOOLS, "--out", "mos_out")
        _cli("rd", "--csv", "rd/rd.csv", "--metrics", "prfnet,psnr", *TOOLS, "--bootstrap", "20", "--out", "rd_out")
        _cli("tune", "rd/orig", "--codecs", "webp,jpeg420", "--match", "jpeg420:q85", "-m", "prfnet",
             "-c", "tiny.safetensors", "--no-progress", "--bootstrap", "20", "--out", "tune_out")  # fmt: skip
    return root


def _strict(view: ViewData) -> dict:
    """The document after a strict JSON round trip (no NaN/Infinity), with every served file under a root."""
    document = json.loads(json.dumps(view.document, allow_nan=False))
    assert document["format"] == "prfnet-view" and document["version"] == 1
    for image_id, path in view.files.items():
        assert path == path.resolve() and path.is_file() and image_id in document["images"]
        assert any(root == path or root in path.parents for root in view.roots), path
    assert list(document["images"]) == [f"f{i}" for i in range(len(document["images"]))]
    return document


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines() if line]


def test_clic_eval_set_rows_match_the_submissions_oracle_and_model(sets):
    view = build_view(sets / "clic_out")
    doc = _strict(view)
    assert doc["kind"] == "triplets" and doc["source"]["set"] == "eval clic" and doc["notes"] == []
    assert [m["name"] for m in doc["metrics"]] == ["prfnet", "psnr", "ssim"]
    assert [m["higher_better"] for m in doc["metrics"]] == [False, True, True]
    assert view.model == (sets / "tiny.safetensors").resolve() and doc["maps"]["available"]
    assert {r.resolve() for r in view.roots} == {(sets / "clic_out").resolve(), (sets / "clic" / "images").resolve()}
    rows = doc["triplets"]
    assert len(rows) == 8 and [r["id"] for r in rows] == list(range(8))
    names = {i: doc["images"][i]["name"] for i in doc["images"]}
    assert len(set(names.values())) == len(names) == 12  # one id per distinct file: 4 references, 8 distorted
    assert all(doc["images"][i]["width"] == 64 and doc["images"][i]["height"] == 64 for i in names)
    assert all(view.files[i] == (sets / "clic" / "images" / names[i]).resolve() for i in names)
    for metric in ("prfnet", "psnr", "ssim"):
        submission = _rows(sets / "clic_out" / f"submission_{metric}.csv")
        for row, (o, a, b, t) in zip(rows, submission, strict=True):
            assert (names[row["ref"]], names[row["a"]], names[row["b"]]) == (o, a, b) and row["group"] == o
            assert row["decisions"][metric] == ("B" if t == "1" else "A") or (
                t == "0" and row["decisions"][metric] == "tie"
            )
    oracle = _rows(sets / "clic" / "oracle.csv")
    for row in rows:
        o, a, b = (names[row[k]] for k in ("ref", "a", "b"))
        votes = [(x, y, t) for r, x, y, t in oracle if r == o and {x, y} == {a, b}]
        for_a = sum((x == a) == (t == "0") for x, _, t in votes)
        assert row["votes"] == len(votes) == 3 and row["p_a"] == pytest.approx(for_a / 3)
        assert row["majority"] == ("A" if for_a >= 2 else "B")
        assert row["kind"] == ("close" if o in ("r1.png", "r3.png") else "apart")
        p = row["prfnet_p"]
        assert 0.0 < p < 1.0 and row["decisions"]["prfnet"] == ("A" if p > 0.5 else "B" if p < 0.5 else "tie")
    swapped = [r["prfnet_p"] for r in rows]  # rows come as (A, B) then (B, A): the two probabilities sum to 1
    assert all(math.isclose(swapped[i] + swapped[i + 1], 1.0) for i in range(0, 8, 2))

    from prfnet.api import compare_files, load_model

    first = rows[0]
    model = load_model(sets / "tiny.safetensors", "cpu")
    expected = compare_files(model, *(view.files[first[k]] for k in ("ref", "a", "b"))).prob_a
    assert first["prfnet_p"] == pytest.approx(expected, abs=1e-5)
    assert build_view(sets / "clic_out").document == view.document  # the same ids and rows every time


def test_clic_without_its_store_takes_decisions_from_the_submissions_and_says_what_is_null(sets, tmp_path):
    shutil.copytree(sets / "clic", tmp_path / "clic")  # the set and its inputs moved together, the store left behind
    shutil.copytree(sets / "clic_out", tmp_path / "clic_out", ignore=shutil.ignore_patterns("scores.sqlite*"))
    view = build_view(tmp_path / "clic_out")
    doc = _strict(view)
    assert all(path.is_relative_to(tmp_path.resolve()) for path in view.files.values()) and len(view.files) == 12
    rows = doc["triplets"]
    assert len(rows) == 8 and all(r["prfnet_p"] is None for r in rows)
    submission = _rows(sets / "clic_out" / "submission_psnr.csv")
    assert [r["decisions"]["psnr"] for r in rows] == ["B" if t == "1" else "A" for *_, t in submission]
    assert all(r["votes"] == 3 for r in rows) and rows[0]["kind"] == "apart"
    notes = " ".join(doc["notes"])
    assert "no score store" in notes and "prfnet_p is null" in notes and "tie" in notes


def test_bapps_set_has_judge_fractions_subsets_and_stored_decisions(sets):
    view = build_view(sets / "bapps_out")
    doc = _strict(view)
    rows = doc["triplets"]
    assert doc["source"]["set"] == "eval bapps" and len(rows) == 5
    assert [r["kind"] for r in rows] == ["cnn"] * 2 + ["traditional"] * 3
    judges = {"cnn": [0.1, 0.6], "traditional": [0.2, 0.8, 0.5]}
    expected = [1.0 - j for subset in ("cnn", "traditional") for j in judges[subset]]
    assert [r["p_a"] for r in rows] == pytest.approx(expected)
    assert [r["majority"] for r in rows] == ["A", "B", "A", "B", "tie"]
    assert all(r["votes"] is None for r in rows)
    assert all(set(r["decisions"]) == {"prfnet", "psnr", "ssim"} for r in rows)
    assert all(r["decisions"]["psnr"] == "A" for r in rows)  # p0 is the mildly noisy one: closer by PSNR
    for row in rows:
        p = row["prfnet_p"]
        assert 0 < p < 1 and row["decisions"]["prfnet"] == ("A" if p > 0.5 else "B")
        folder = sets / "bapps" / "2afc" / "val" / row["kind"]
        stem = Path(doc["images"][row["ref"]]["name"]).stem
        assert [view.files[row[k]] for k in ("ref", "a", "b")] == [
            (folder / part / f"{stem}.png").resolve() for part in ("ref", "p0", "p1")
        ]
    results = json.loads((sets / "bapps_out" / "results.json").read_text())
    for subset in ("cnn", "traditional"):  # the run's 2AFC score is the mean agreement of these decisions
        mine = [r for r in rows if r["kind"] == subset]
        score = np.mean([r["p_a"] if r["decisions"]["psnr"] == "A" else 1 - r["p_a"] for r in mine])
        assert score == pytest.approx(results["psnr"]["subsets"][subset])


def test_mos_set_has_one_point_per_item_and_the_runs_fits(sets):
    view = build_view(sets / "mos_out")
    doc = _strict(view)
    assert doc["kind"] == "mos" and doc["source"]["set"] == "eval mos"
    points, fits = doc["mos"]["points"], doc["mos"]["fits"]
    lines = (sets / "mos" / "mos.csv").read_text().splitlines()[1:]
    assert len(points) == len(lines) == 6 and [p["id"] for p in points] == list(range(6))
    for point, line in zip(points, lines, strict=True):
        ref, dist, score = line.split(",")
        assert point["mos"] == pytest.approx(float(score))
        assert view.files[point["ref"]] == (sets / "mos" / ref).resolve()
        assert view.files[point["dist"]] == (sets / "mos" / dist).resolve()
        assert set(point["scores"]) == {"prfnet", "psnr", "ssim"}
    results = json.loads((sets / "mos_out" / "results.json").read_text())
    assert fits["psnr"]["sign"] == 1 and fits["prfnet"]["sign"] == -1  # a distance is negated against MOS
    for name, fit in fits.items():
        assert fit["srocc"] == pytest.approx(results[name]["srcc"]) and fit["plcc"] == pytest.approx(
            results[name]["plcc"]
        )
        assert fit["function"] == "logistic4" and fit["params"] == pytest.approx(results[name]["fit"]["params"])
    assert doc["mos"]["mos_label"] == "subjective score (higher = better)"


def test_rd_set_points_match_rd_json_and_the_decoded_files(sets):
    view = build_view(sets / "rd_out")
    doc = _strict(view)
    rd = doc["rd"]
    summary = json.loads((sets / "rd_out" / "rd.json").read_text())
    assert doc["kind"] == "rd" and rd["anchor"] == "jpeg" and rd["codecs"] == ["jpeg", "webp"]
    assert [m["name"] for m in rd["metrics"]] == ["prfnet", "psnr-rgb"]
    assert len(rd["points"]) == 2 * 2 * 4  # metrics x codecs x rate points
    for point in rd["points"]:
        results = json.loads((sets / "rd_out" / "results" / f"{point['codec']}.json").read_text())["results"]
        j = [r["label"] for r in summary["rate_points"][point["codec"]]].index(point["rate_point"])
        assert point["bpp"] == pytest.approx(results["bpp"][j]) and point["value"] == pytest.approx(
            results[point["metric"]][j]
        )
        assert [item["image"] for item in point["items"]] == ["i0", "i1"]
        assert np.mean([item["value"] for item in point["items"]]) == pytest.approx(point["value"])
        assert np.mean([item["bpp"] for item in point["items"]]) == pytest.approx(point["bpp"])
        for item in point["items"]:
            decoded = sets / "rd" / point["codec"] / point["rate_point"] / f"{item['image']}.png"
            assert view.files[item["decoded"]] == decoded.resolve()
            assert view.files[item["orig"]] == (sets / "rd" / "orig" / f"{item['image']}.png").resolve()
    assert rd["bd_rate"]["psnr-rgb"]["jpeg"]["value"] == 0.0
    webp = rd["bd_rate"]["psnr-rgb"]["webp"]
    assert webp["value"] == pytest.approx(summary["bd_rate"]["bd_rate"]["psnr-rgb"]["webp"])
    assert webp["ci95"][0] <= webp["value"] <= webp["ci95"][1]


def test_demo_layout_reads_data_eval_and_the_model(sets, tmp_path, tiny_model):
    from prfnet.demo import DEMO_OUTPUTS
    from prfnet.evaluation import evaluate_clic

    out = tmp_path / "demo"
    outputs = OutputSet(out, DEMO_OUTPUTS).check()
    token = set_command("prfnet demo --out demo")
    try:
        with outputs:
            data = outputs.path("data")
            data.mkdir()
            make_clic_dir(data)
            shutil.copy(sets / "clic" / "validation.csv", data / "test_validation.csv")
            shutil.copy(data / "oracle.csv", data / "test_oracle.csv")
            shutil.copy(sets / "clic" / "kinds.csv", data / "test_kinds.csv")
            outputs.publish_now("data")
            data = out / "data"
            evaluate_clic(data / "test_validation.csv", data / "images", data / "test_oracle.csv", ["prfnet", "psnr"],
                          tiny_model, data / "test_kinds.csv", outputs.sub("eval"), progress=False,
                          report_path=outputs.path("report.html"))  # fmt: skip
            tiny_model.save_pretrained(outputs.path("model.safetensors"))
            (outputs.path("results.json")).write_text("{}")
    finally:
        reset_command(token)
    view = build_view(out)
    doc = _strict(view)
    assert doc["source"]["set"] == "demo" and doc["title"].startswith("prfnet demo: 8 held-out triplets")
    assert view.model == (out / "model.safetensors").resolve() and doc["notes"] == []
    rows = doc["triplets"]
    assert [r["votes"] for r in rows] == [3] * 8 and all(0 < r["prfnet_p"] < 1 for r in rows)
    assert {doc["images"][r["ref"]]["name"] for r in rows} == {f"r{i}.png" for i in range(4)}
    assert all(view.files[r["a"]].parent == (data / "images").resolve() for r in rows)


def test_a_set_made_from_python_opens_with_what_it_recorded(sets, tmp_path, tiny_model):
    from prfnet.evaluation import evaluate_clic

    clic = sets / "clic"
    evaluate_clic(clic / "validation.csv", clic / "images", clic / "oracle.csv", ["psnr"], tiny_model,
                  out_dir=tmp_path / "api", progress=False)  # fmt: skip
    doc = _strict(build_view(tmp_path / "api"))
    assert doc["source"]["command"] == "python" and doc["source"]["set"] == "eval clic"
    assert len(doc["triplets"]) == 8 and all(r["p_a"] is None for r in doc["triplets"])
    assert all("error" in image for image in doc["images"].values())  # the images folder is not recorded
    assert any("images not shown" in note for note in doc["notes"])


def test_an_image_linked_out_of_the_roots_is_not_served(sets, tmp_path):
    shutil.copytree(sets / "clic", tmp_path / "clic", symlinks=True)
    outside = tmp_path / "elsewhere.png"
    shutil.copy(tmp_path / "clic" / "images" / "r0_d0.png", outside)
    (tmp_path / "clic" / "images" / "r0_d0.png").unlink()
    (tmp_path / "clic" / "images" / "r0_d0.png").symlink_to(outside)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        clic = ["--csv", "clic/validation.csv", "--root", "clic/images", "--oracle", "clic/oracle.csv"]
        _cli("eval", "clic", *clic, "--metrics", "psnr", "--no-progress", "--workers", "0", "--no-store", "-o", "o")
    view = build_view(tmp_path / "o")
    linked = [i for i, image in view.document["images"].items() if image["name"] == "r0_d0.png"]
    assert len(linked) == 1 and linked[0] not in view.files and "outside" in view.document["images"][linked[0]]["error"]
    assert len(view.files) == 11


def test_building_writes_nothing_beside_the_store(sets):
    before = sorted(os.listdir(sets / "clic_out"))
    build_view(sets / "clic_out")
    assert sorted(os.listdir(sets / "clic_out")) == before


def _synthetic_clic(root: Path, n: int) -> Path:
    """A CLIC-like eval set of ``n`` triplets (three metrics' submissions, 3 votes each) over 8 tiny images (one a
    JPEG), with a manifest as ``prfnet eval clic`` writes it; no score store."""
    images = root / "images"
    images.mkdir(parents=True)
    names = [f"i{k}.png" for k in range(7)] + ["i7.jpg"]
    for k, name in enumerate(names):
        Image.new("RGB", (16 + k, 12), (k * 30, 0, 0)).save(images / name)
    keys = [(names[i % 2], names[2 + i % 6], names[2 + (i + 1 + i // 6) % 6]) for i in range(n)]
    out = root / "out"
    out.mkdir()
    results = {}
    for m, metric in enumerate(("prfnet", "psnr", "ssim")):
        (out / f"submission_{metric}.csv").write_text(
            "".join(f"{o},{a},{b},{(i + m) % 2}\n" for i, (o, a, b) in enumerate(keys))
        )
        results[metric] = {
            "available": True,
            "higher_better": metric != "prfnet",
            "submission": f"out/submission_{metric}.csv",
        }
    (out / "results.json").write_text(json.dumps(results))
    votes = [f"{o},{a},{b},{v % 2}\n" for i, (o, a, b) in enumerate(keys) for v in (i, i + 1, 0)]
    (root / "oracle.csv").write_text("".join(votes))
    command = "prfnet eval clic --csv v.csv --root images --oracle oracle.csv --metrics prfnet,psnr,ssim --out out"
    manifest = {"format": "prfnet-outputs", "version": 1, "run_id": "x", "command": command, "files": []}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_twenty_thousand_triplets_build_without_decoding_an_image(tmp_path, monkeypatch):
    out = _synthetic_clic(tmp_path, 20_000)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the catalog decoded an image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    doc = _strict(build_view(out))
    rows = doc["triplets"]
    assert len(rows) == 20_000 and rows[-1]["id"] == 19_999
    assert len(doc["images"]) == 8 and doc["images"]["f0"] == {"name": "i0.png", "width": 16, "height": 12}
    jpeg = next(image for image in doc["images"].values() if image["name"] == "i7.jpg")
    assert (jpeg["width"], jpeg["height"]) == (23, 12)  # from the JPEG header, through Pillow
    assert rows[1]["decisions"] == {"prfnet": "B", "psnr": "A", "ssim": "B"}
    assert all(r["votes"] >= 3 and r["prfnet_p"] is None for r in rows[:100])


def test_a_tune_set_shows_each_codecs_choice_beside_the_match_and_the_original(sets):
    view = build_view(sets / "tune_out")
    doc = _strict(view)
    summary = json.loads((sets / "tune_out" / "tune.json").read_text())
    tune = doc["tune"]
    assert doc["kind"] == "tune" and tune["codecs"] == ["webp", "jpeg420"] and tune["target"] == summary["target"]
    assert tune["metric"] == {"name": "prfnet", "label": "PRFNet", "higher_better": False}
    assert tune["totals"] == summary["totals"] and len(tune["rows"]) == len(summary["images"]) == 2
    for row, entry in zip(tune["rows"], summary["images"], strict=True):
        assert view.files[row["ref"]] == (sets / "rd" / "orig" / f"{entry['image']}.png").resolve()
        assert view.files[row["match"]["file"]] == sets / "tune_out" / "files" / "match" / f"{entry['image']}.jpg"
        assert row["match"]["distance"] == entry["match"]["distance"] and row["target"] == entry["target"]
        for codec, cell in row["cells"].items():
            chosen = entry["codecs"][codec]
            assert view.files[cell["file"]] == sets / "tune_out" / chosen["file"]
            assert (cell["label"], cell["bpp"], cell["status"]) == (chosen["label"], chosen["bpp"], chosen["status"])
    assert view.model == (sets / "tiny.safetensors").resolve() and doc["notes"] == []


def test_a_tune_set_from_before_the_originals_were_kept_says_what_it_lacks(sets):
    old = sets / "tune_old"  # beside the run's set: its relative input paths resolve as they did
    shutil.copytree(sets / "tune_out", old, dirs_exist_ok=True)
    summary = json.loads((old / "tune.json").read_text())
    for entry in summary["images"]:
        del entry["original"], entry["match"]["file"]
    summary["images"][1]["source"] = "skimage.data.camera()"  # made in memory: nothing to show
    (old / "tune.json").write_text(json.dumps(summary))
    view = build_view(old)
    first, second = view.document["tune"]["rows"]
    assert view.files[first["ref"]] == (sets / summary["images"][0]["source"]).resolve()  # the input file it named
    assert second["ref"] not in view.files and "kept no copy" in view.document["images"][second["ref"]]["error"]
    assert first["match"]["file"] not in view.files and any("--match" in n for n in view.document["notes"])


def test_a_jnd_set_is_each_pairs_distance_against_the_fraction_who_saw_no_difference(tmp_path):
    from prfnet.data import read_bapps_jnd
    from prfnet.evaluation import evaluate_jnd
    from tests.evaluation.test_jnd import write_jnd

    root = write_jnd(tmp_path / "jnd" / "val", n=4)
    _cli("eval", "jnd", "--root", root, "--metrics", "psnr,gmsd", "--no-progress", "-o", tmp_path / "cli")
    evaluate_jnd(root, metrics=["psnr"], out_dir=tmp_path / "python", progress=False)  # no command line recorded
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    view = build_view(tmp_path / "cli")
    doc = _strict(view)
    pairs = [p for subset in ("cnn", "traditional") for p in read_bapps_jnd(root)[subset]]
    assert doc["kind"] == "mos" and doc["source"]["set"] == "eval jnd"
    assert doc["title"] == "prfnet eval jnd: 8 pairs in 2 subsets"
    points = doc["mos"]["points"]
    assert [(view.files[p["ref"]], view.files[p["dist"]], p["mos"]) for p in points] == [
        (Path(p.p0), Path(p.p1), p.same) for p in pairs
    ]
    assert [p["kind"] for p in points] == ["cnn"] * 4 + ["traditional"] * 4
    for name in ("psnr", "gmsd"):
        fit = doc["mos"]["fits"][name]
        assert fit["params"] is None and f"cnn {results[name]['subsets']['cnn']:.3f}" in fit["summary"]
    assert build_view(tmp_path / "python").document["title"] == "prfnet eval jnd: 8 pairs in 2 subsets"
    (tmp_path / "cli" / "scores.csv").unlink()  # a set of an older prfnet
    with pytest.raises(InputError, match="no per-pair scores.csv"):
        build_view(tmp_path / "cli")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p / "missing", "no such folder"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "a file, not the output folder"),
        (lambda p: p, "no manifest.json"),
        (lambda p: (p / "manifest.json").write_text("{}") and p, "not a prfnet outputs manifest"),
        (lambda p: (p / "manifest.json").write_text("[") and p, "unreadable manifest"),
        (
            lambda p: (
                (p / "manifest.json").write_text(
                    json.dumps({"format": "prfnet-outputs", "command": "prfnet ablate --out x", "files": []})
                )
                and p
            ),
            "which prfnet view does not show",
        ),
    ],
)
def test_a_folder_that_is_no_viewable_set_is_one_clear_line(tmp_path, make, needle):
    with pytest.raises(InputError, match=needle) as caught:
        build_view(make(tmp_path))
    assert "\n" not in str(caught.value)


def test_command_line_and_working_folder_are_read_back():
    command = Command("prfnet eval clic --csv 'my dir/v.csv' --root=images -o out --no-store")
    assert command.name == "eval clic" and command.option("--csv") == "my dir/v.csv"
    assert command.option("--root") == "images" and command.option("--out", "-o") == "out"
    assert command.flag("--no-store") and Command("python").name == ""
    assert started_in("runs/a/results.json", Path("/x/runs/a/results.json")) == Path("/x")
    assert started_in("/abs/results.json", Path("/abs/results.json")) is None
    assert started_in("other/results.json", Path("/x/runs/results.json")) is None
