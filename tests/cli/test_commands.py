"""The command line as a user runs it, checked against the Python API: the text and table outputs of compare,
score, rank and eval (rows, values, order), the progress bars (stderr only, --no-progress), --tile,
--tile-stride and --device, ``eval bapps`` and ``eval mos`` (results, scores.csv, report), a failed logistic fit,
and ``prfnet demo`` (option wiring, and one real short run)."""

from __future__ import annotations

import csv
import json
import logging
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from scipy import stats

from prfnet import PRFNet
from prfnet.api import Comparison, compare_files
from prfnet.cli import main
from prfnet.data import Triplet
from prfnet.evaluation import evaluate_bapps, evaluate_clic, evaluate_mos
from prfnet.images import load_image
from prfnet.stats.correlation import fit_logistic
from prfnet.training import load_train_config
from tests.conftest import make_bapps_tree, noisy, smooth_image, write_noisy_copies, write_png

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the rich tables in ``text`` (cells stripped), top to bottom."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.strip().startswith("│")]


def table_header(text: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.strip().startswith("┃"))
    return [c.strip() for c in line.split("┃")[1:-1]]


def table_dicts(text: str) -> list[dict[str, str]]:
    """Each body row as {column: cell}."""
    header = table_header(text)
    return [dict(zip(header, row, strict=True)) for row in table_rows(text)]


def estimate(cell: str) -> str:
    """The figure of a cell, without the interval that may follow it ("0.833 [0.500, 1.000]" -> "0.833")."""
    return cell.split()[0] if cell else cell


@pytest.fixture(autouse=True)
def wide_plain_console(monkeypatch):
    """Tables wide enough for temporary paths, without colour codes (no terminal)."""
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)


@pytest.fixture()
def terminal(monkeypatch):
    """stderr and stdout count as an interactive terminal (rich draws its progress bars), as in a shell; the
    stderr console of the CLI was created at import, so its interactivity is set here too."""
    from prfnet.cli.app import err

    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(err, "is_interactive", True)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model):
    """A 64x72 reference, an exact copy and five noisier versions (d0 mildest), and the tiny model's checkpoint."""
    d = tmp_path_factory.mktemp("cli_imgs")
    paths = write_noisy_copies(d, 3, [0.03, 0.1, 0.2, 0.3, 0.45])
    paths["ckpt"] = tiny_model.save_pretrained(d / "tiny.safetensors")
    return {k: str(v) for k, v in paths.items()}


def _model(files, tile=None, stride=None) -> PRFNet:
    model = PRFNet.from_pretrained(files["ckpt"])
    return model.set_tiling(tile, stride) if tile is not None else model


def _scores(model, files, names) -> list[float]:
    dists = torch.cat([load_image(files[n]) for n in names])
    return model.score(load_image(files["ref"]), dists).tolist()


# -- compare / score / rank: text and tables --------------------------------------------------------------------


def test_compare_text_output_is_the_models_answer(capsys, files):
    code, out, err = run(capsys, "compare", files["ref"], files["d3"], files["d0"], "-c", files["ckpt"], "-d", "cpu")
    assert code == 0, err
    model = _model(files)
    ref, a, b = (load_image(files[n]) for n in ("ref", "d3", "d0"))
    prob = float(model.compare(ref, a, b).detach())
    score_a, score_b = _scores(model, files, ["d3", "d0"])
    assert score_b < score_a  # the milder noise is closer for this model: B, so a swapped A/B would show
    assert out.splitlines() == [
        f"closer: B  (P(A closer) = {prob:.4f})",
        f"score A: {score_a:.6f}  {files['d3']}",
        f"score B: {score_b:.6f}  {files['d0']}",
    ]


def test_score_table_keeps_input_order_and_rank_table_sorts_best_first(capsys, files):
    names = ["d2", "same", "d4", "d0"]
    expected = dict(zip(names, _scores(_model(files), files, names), strict=True))
    code, out, err = run(capsys, "score", files["ref"], *(files[n] for n in names), "-c", files["ckpt"], "-b", "3")
    assert code == 0, err
    assert f"distance to {files['ref']}" in out
    assert table_header(out) == ["#", "score (lower = closer)", "path"]
    assert table_rows(out) == [[str(i), f"{expected[n]:.6f}", files[n]] for i, n in enumerate(names, 1)]

    code, out, err = run(capsys, "rank", files["ref"], *(files[n] for n in names), "-c", files["ckpt"])
    assert code == 0, err
    assert f"ranking against {files['ref']} (best first)" in out
    best_first = sorted(names, key=expected.get)
    assert best_first[0] == "same" and best_first != names
    assert table_rows(out) == [[str(i), f"{expected[n]:.6f}", files[n]] for i, n in enumerate(best_first, 1)]


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize("command", ["score", "rank"])
def test_scoring_progress_bar_goes_to_stderr_from_four_images(capsys, files, command):
    four = [files[n] for n in ("d0", "d1", "d2", "d3")]
    code, out, err = run(capsys, command, files["ref"], *four, "-c", files["ckpt"], "--json", "-b", "1")
    assert code == 0, err
    assert len(json.loads(out)) == 4  # stdout is the JSON document only
    bar = ANSI.sub("", err)
    assert "scoring" in bar and "4/4" in bar
    code, out, err = run(capsys, command, files["ref"], *four[:3], "-c", files["ckpt"], "--json")
    assert code == 0 and len(json.loads(out)) == 3
    assert "scoring" not in err  # three images: no bar


# -- --tile, --tile-stride, --device ------------------------------------------------------------------------------


@pytest.mark.parametrize(("tile", "stride"), [(32, None), (32, 20), (40, 16)])
def test_tile_options_score_like_set_tiling(capsys, files, tile, stride):
    names = ["d0", "d1", "d4"]
    tiled = _scores(_model(files, tile, stride), files, names)
    whole = _scores(_model(files), files, names)
    assert not np.allclose(tiled, whole, rtol=1e-3)  # tiling changes the scores here, so the option must arrive
    if stride is not None:
        assert not np.allclose(tiled, _scores(_model(files, tile), files, names), rtol=1e-3)
    extra = ["--tile", tile] + (["--tile-stride", stride] if stride is not None else [])
    code, out, err = run(
        capsys, "score", files["ref"], *(files[n] for n in names), "-c", files["ckpt"], "--json", "--device", "cpu",
        *extra,
    )  # fmt: skip
    assert code == 0, err
    assert [r["score"] for r in json.loads(out)] == pytest.approx(tiled, rel=1e-5, abs=1e-7)
    code, out, err = run(
        capsys, "compare", files["ref"], files["d0"], files["d1"], "-c", files["ckpt"], "--json", *extra
    )
    assert code == 0, err
    model = _model(files, tile, stride)
    prob = float(model.compare(*(load_image(files[n]) for n in ("ref", "d0", "d1"))).detach())
    assert json.loads(out)["prob_a"] == pytest.approx(prob, abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tile", "32", "--tile-stride", "0"], "--tile-stride must be positive, got 0"),
        (["--device", "cuda:99"], "device 'cuda:99' cannot be used here"),
        (["--device", "warp-drive"], "bad device 'warp-drive'"),
    ],
)
def test_bad_tiling_or_device_is_one_line_and_exit_2(capsys, files, extra, message):
    code, out, err = run(capsys, "score", files["ref"], files["d0"], "-c", files["ckpt"], *extra)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


# -- eval clic: the table and the progress bar --------------------------------------------------------------------


@pytest.fixture(scope="module")
def clic_csv(clic_dir):
    """The triplets of the tiny CLIC set (O,A,B, each key once)."""
    keys = dict.fromkeys(",".join(line.split(",")[:3]) for line in (clic_dir / "oracle.csv").read_text().split())
    path = clic_dir / "validation.csv"
    path.write_text("\n".join(keys) + "\n")
    return path


def test_eval_clic_table_rows_hold_the_evaluation_figures(capsys, clic_dir, clic_csv, files, tmp_path):
    argv = [
        "eval", "clic", "--csv", clic_csv, "--root", clic_dir / "images", "--oracle", clic_dir / "oracle.csv",
        "--metrics", "psnr,prfnet,ms_ssim", "-c", files["ckpt"], "--no-progress",
    ]  # fmt: skip
    code, out, err = run(capsys, *argv, "--out-dir", tmp_path / "table")
    assert code == 0, err
    expected = evaluate_clic(
        clic_csv, clic_dir / "images", oracle=clic_dir / "oracle.csv", metrics=["psnr,prfnet,ms_ssim"],
        model=_model(files), progress=False,
    )  # fmt: skip
    assert table_header(out)[:5] == ["metric", "closer when", "accuracy", "majority", "per vote"]
    rows = table_dicts(out)
    assert [r["metric"] for r in rows] == ["psnr", "prfnet", "ms_ssim"]  # the order of --metrics
    columns = {"accuracy": "accuracy", "majority": "accuracy_majority", "per vote": "accuracy_votes"}
    assert expected["psnr"]["accuracy"] != expected["psnr"]["accuracy_votes"]  # a swapped column would show
    for row in rows[:2]:
        e = expected[row["metric"]]
        assert row["closer when"] == ("higher" if row["metric"] == "psnr" else "lower") and row["status"] == "ok"
        assert {c: estimate(row[c]) for c in columns} == {c: f"{e[k]:.3f}" for c, k in columns.items()}
    assert {c: rows[2][c] for c in ("closer when", *columns, "status")} == {
        "closer when": "",
        **dict.fromkeys(columns, "n/a"),
        "status": "unavailable",
    }
    reason = [line for line in out.splitlines() if line.startswith("ms_ssim: ")]
    assert len(reason) == 1 and "176" in reason[0]  # the reason, below the table
    assert f"wrote {tmp_path / 'table' / 'results.json'}" in err.replace("\n", "")
    on_disk = json.loads((tmp_path / "table" / "results.json").read_text())
    assert on_disk["psnr"]["accuracy"] == pytest.approx(expected["psnr"]["accuracy"])


@pytest.mark.usefixtures("terminal")
def test_eval_progress_bar_on_stderr_unless_no_progress(capsys, clic_dir, clic_csv, tmp_path):
    argv = [
        "eval", "clic", "--csv", clic_csv, "--root", clic_dir / "images", "--metrics", "psnr,ssim",
        "--json", "--out-dir", tmp_path / "out",
    ]  # fmt: skip
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert set(json.loads(out)) == {"psnr", "ssim"}  # stdout: the JSON document only
    bar = ANSI.sub("", err)
    assert "scoring 8 pairs x 2 metrics" in bar and "8/8" in bar
    code, out, err = run(capsys, *argv, "--no-progress")
    assert code == 0 and set(json.loads(out)) == {"psnr", "ssim"}
    assert "scoring" not in err and "wrote" in err


# -- eval bapps ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bapps_root(tmp_path_factory):
    """2afc/val/{cnn,traditional}: p0 mildly noisy, p1 strongly noisy; judge = fraction preferring p1."""
    base = tmp_path_factory.mktemp("bapps")
    make_bapps_tree(base, {"val": {"cnn": [0.2, 0.6], "traditional": [0.0]}})
    return base / "2afc"


def test_eval_bapps_json_files_and_table(capsys, bapps_root, files, tmp_path):
    out_dir = tmp_path / "bapps"
    argv = ["eval", "bapps", "--root", bapps_root, "--metrics", "prfnet,psnr", "-c", files["ckpt"], "--no-progress"]
    code, out, err = run(capsys, *argv, "--out-dir", out_dir, "--json", "-b", "2")
    assert code == 0, err
    doc = json.loads(out)
    expected = evaluate_bapps(bapps_root, metrics=["prfnet,psnr"], model=_model(files), progress=False)
    assert list(doc) == ["prfnet", "psnr"]
    # PSNR prefers p0 everywhere: 1 - judge per triplet
    assert doc["psnr"]["subsets"] == {"val/cnn": pytest.approx(0.6), "val/traditional": pytest.approx(1.0)}
    for name in doc:
        assert doc[name]["subsets"] == pytest.approx(expected[name]["subsets"])
        assert doc[name]["splits"]["val"]["score"] == pytest.approx(expected[name]["splits"]["val"]["score"])
    assert json.loads((out_dir / "results.json").read_text()) == doc
    html = (out_dir / "report.html").read_text()
    assert "BAPPS 2AFC evaluation" in html
    assert re.search(r"<td>psnr</td><td>higher</td><td>0\.600[^<]*</td><td>1\.000[^<]*</td>", html)

    code, out, err = run(capsys, *argv, "--out-dir", tmp_path / "table")
    assert code == 0, err
    assert f"BAPPS 2AFC: {bapps_root}" in out
    assert table_header(out)[:6] == ["metric", "closer when", "val/cnn", "val/traditional", "all", "mean"]
    rows = table_dicts(out)
    assert [r["metric"] for r in rows] == ["prfnet", "psnr"]
    columns = ("val/cnn", "val/traditional", "all", "mean")
    for row in rows:
        e = doc[row["metric"]]
        figures = [*e["subsets"].values(), e["splits"]["val"]["score"], e["splits"]["val"]["mean_of_subsets"]]
        assert row["closer when"] == ("lower" if row["metric"] == "prfnet" else "higher") and row["status"] == "ok"
        assert [estimate(row[c]) for c in columns] == [f"{v:.3f}" for v in figures]
    assert [estimate(rows[1][c]) for c in columns] == ["0.600", "1.000", "0.733", "0.800"]


# -- eval mos ----------------------------------------------------------------------------------------------------------


def _psnr(ref_path, dist_path) -> float:
    a, b = (np.asarray(Image.open(p), dtype=np.float64) / 255 for p in (ref_path, dist_path))
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def mos_csv(tmp_path_factory):
    """Two references, four noise levels each; the score is the noise level, a DMOS (lower = better)."""
    d = tmp_path_factory.mktemp("mos")
    rows = ["ref,dist,score"]
    for r, sigmas in enumerate([(0.01, 0.03, 0.07, 0.15), (0.02, 0.05, 0.1, 0.2)]):
        write_png(d / f"r{r}.png", smooth_image(r))
        for level, sigma in enumerate(sigmas):
            write_png(d / f"r{r}_{level}.png", noisy(smooth_image(r), sigma, 10 * r + level))
            rows.append(f"r{r}.png,r{r}_{level}.png,{sigma}")
    (d / "dmos.csv").write_text("\n".join(rows) + "\n")
    return d / "dmos.csv"


def test_eval_mos_json_scores_csv_report_and_table(capsys, mos_csv, files, tmp_path):
    out_dir = tmp_path / "mos"
    argv = [
        "eval", "mos", "--dataset", "CSV", "--csv", mos_csv, "--lower-better", "--metrics", "prfnet,psnr",
        "-c", files["ckpt"], "--tile", "32", "--tile-stride", "8", "--no-progress",
    ]  # fmt: skip
    code, out, err = run(capsys, *argv, "--out-dir", out_dir, "--json")
    assert code == 0, err
    doc = json.loads(out)
    tiled = _model(files, 32, 8)
    expected = evaluate_mos(
        "csv", csv=mos_csv, metrics=["prfnet,psnr"], model=tiled, higher_better=False, progress=False
    )
    assert list(doc) == ["prfnet", "psnr"]
    assert doc["psnr"]["srcc"] == pytest.approx(1.0) and doc["psnr"]["n"] == 8  # oriented against the DMOS
    for name in doc:
        for figure in ("srcc", "krcc", "plcc"):
            assert doc[name][figure] == pytest.approx(expected[name][figure], abs=1e-6), (name, figure)
    assert json.loads((out_dir / "results.json").read_text()) == doc

    # scores.csv: one row per item in file order, with the subjective score and each metric's raw score
    with open(out_dir / "scores.csv", newline="") as f:
        table = list(csv.reader(f))
    items = [row.split(",") for row in mos_csv.read_text().split()[1:]]
    assert table[0] == ["ref", "dist", "mos", "prfnet", "psnr"]
    assert [row[:3] for row in table[1:]] == [[r, d, str(float(s))] for r, d, s in items]
    folder = mos_csv.parent
    psnr = [_psnr(folder / r, folder / d) for r, d, _ in items]
    assert [float(row[4]) for row in table[1:]] == pytest.approx(psnr, abs=1e-3)  # dB

    def prfnet_scores(model):
        return [float(model.score(load_image(folder / r), load_image(folder / d)).detach()) for r, d, _ in items]

    prfnet = prfnet_scores(tiled)
    assert not np.allclose(prfnet, prfnet_scores(_model(files, 32)), rtol=1e-3)  # the stride matters here
    assert [float(row[3]) for row in table[1:]] == pytest.approx(prfnet, rel=1e-5, abs=1e-7)
    assert doc["prfnet"]["srcc"] == pytest.approx(stats.spearmanr(prfnet, [float(s) for *_, s in items]).statistic)

    html = (out_dir / "report.html").read_text()
    assert "MOS correlation evaluation" in html and "8 distorted images, subjective scores lower = better" in html
    srcc, plcc = (f"{doc['psnr'][k]:.3f}" for k in ("srcc", "plcc"))
    assert re.search(rf"<td>psnr</td><td>higher</td><td>{srcc}[^<]*</td><td>{plcc}[^<]*</td>", html)

    code, out, err = run(capsys, *argv, "--out-dir", tmp_path / "table")
    assert code == 0, err
    assert "MOS correlations: CSV" in out
    assert table_header(out)[:6] == ["metric", "closer when", "SRCC", "PLCC", "KRCC", "n"]
    rows = table_dicts(out)
    assert [(r["metric"], r["closer when"], r["n"], r["status"]) for r in rows] == [
        ("prfnet", "lower", "8", "ok"),
        ("psnr", "higher", "8", "ok"),
    ]
    assert doc["prfnet"]["srcc"] != doc["prfnet"]["plcc"]
    for row in rows:
        assert [estimate(row[c]) for c in ("SRCC", "PLCC", "KRCC")] == [
            f"{doc[row['metric']][k]:.3f}" for k in ("srcc", "plcc", "krcc")
        ]


def test_eval_mos_bad_device_is_one_line(capsys, mos_csv, tmp_path):
    code, out, err = run(
        capsys, "eval", "mos", "--dataset", "csv", "--csv", mos_csv, "--metrics", "psnr", "--device", "cuda:99",
        "--out-dir", tmp_path / "x",
    )  # fmt: skip
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "cuda:99" in err and not (tmp_path / "x").exists()


def test_eval_mos_failed_logistic_fit_falls_back_to_pearson(capsys, caplog, tmp_path):
    """A step (only the best image has a high score) sends the logistic's slope to zero: curve_fit gives up.
    PLCC is then the linear correlation, the fit is reported unconverged, and a warning says so."""
    rows = ["ref,dist,score"]
    write_png(tmp_path / "r.png", smooth_image(0))
    for level, (sigma, score) in enumerate(zip((0.01, 0.04, 0.1, 0.2), (1.0, 0.0, 0.0, 0.0), strict=True)):
        write_png(tmp_path / f"d{level}.png", noisy(smooth_image(0), sigma, level))
        rows.append(f"r.png,d{level}.png,{score}")
    (tmp_path / "mos.csv").write_text("\n".join(rows) + "\n")
    psnr = np.array([_psnr(tmp_path / "r.png", tmp_path / f"d{i}.png") for i in range(4)])
    mos = np.array([1.0, 0.0, 0.0, 0.0])
    assert np.all(np.diff(psnr) < 0) and not fit_logistic(psnr, mos).converged  # the data do make the fit fail
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="prfnet"):
        code, out, err = run(
            capsys, "eval", "mos", "--dataset", "csv", "--csv", tmp_path / "mos.csv", "--metrics", "psnr",
            "--no-progress", "--out-dir", tmp_path / "out", "--json",
        )  # fmt: skip
    assert code == 0, err
    entry = json.loads(out)["psnr"]
    with open(tmp_path / "out" / "scores.csv", newline="") as f:
        used = np.array([float(row["psnr"]) for row in csv.DictReader(f)])  # the scores the evaluation used
    assert used == pytest.approx(psnr, abs=1e-3)
    assert entry["fit"]["converged"] is False and entry["fit"]["params"] == [None] * 4
    assert entry["plcc"] == pytest.approx(np.corrcoef(used, mos)[0, 1], abs=1e-6)
    assert entry["srcc"] == pytest.approx(stats.spearmanr(used, mos).statistic)
    assert "plcc" not in entry["undefined"]
    warnings = [r.getMessage() for r in caplog.records if "logistic fit failed" in r.getMessage()]
    assert warnings and "PLCC falls back to the linear correlation" in warnings[0]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["psnr"] == entry
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # the scatter is drawn without a curve
    assert "the logistic fit did not converge" in report and "with the logistic fit used for PLCC" not in report


# -- demo ----------------------------------------------------------------------------------------------------------


class RecordedDemo:
    """Stands in for :func:`prfnet.demo.run_demo`: records its arguments, reports one stage, returns a fixed result."""

    results = {
        "prfnet": {
            "accuracy": 0.75,
            "accuracy_ci95": [0.625, 0.875],
            "accuracy_by_kind": {"psnr_close": 1.0, "psnr_apart": 0.5},
            "brier": 0.0625,
            "brier_step1": 0.125,
            "ece": 0.05,
        },
        "psnr": {
            "accuracy": 0.6,
            "accuracy_ci95": [0.5, 0.7],
            "accuracy_by_kind": {"psnr_close": None, "psnr_apart": 0.25},
            "paired_difference": {"mean": 0.15, "ci95": [0.05, 0.25]},
        },
    }
    ceiling = {"judge_accuracy": 0.8, "judge_accuracy_ci95": [0.7, 0.9], "n_keys": 20, "noise_ceiling": 0.95}

    def __init__(self):
        self.calls = []

    def __call__(self, out_dir, refs, size, seed, **kwargs):
        from prfnet.demo import DemoResult

        self.calls.append(dict(out_dir=out_dir, refs=refs, size=size, seed=seed, **kwargs))
        kwargs["stage"]("1/5 recorded stage")
        return DemoResult(
            out_dir, out_dir / "model.safetensors", out_dir / "report.html", out_dir / "results.json", self.results,
            {"lpips": "no weights here"}, Comparison("B", 0.25, 0.5, 0.3), Triplet("r.png", "a.png", "b.png"),
            self.ceiling,
        )  # fmt: skip


def test_demo_options_reach_run_demo_and_its_result_is_printed(capsys, monkeypatch, tmp_path):
    import prfnet.demo

    recorder = RecordedDemo()
    monkeypatch.setattr(prfnet.demo, "run_demo", recorder)
    out = tmp_path / "d"
    code, stdout, err = run(
        capsys, "demo", "--out", out, "--refs", "5", "--size", "320", "--seed", "3", "--config", "my.yaml",
        "--metrics", " psnr, ,ssim ", "--no-progress", "--json",
    )  # fmt: skip
    assert code == 0, err
    call = recorder.calls[-1]
    assert (call["out_dir"], call["refs"], call["size"], call["seed"]) == (out, 5, 320, 3)
    assert (call["config"], call["metrics"], call["progress"]) == ("my.yaml", ["psnr", "ssim"], False)
    assert json.loads(stdout) == RecordedDemo.results  # results.json's document, nothing else on stdout
    assert "1/5 recorded stage" in err

    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(capsys, "demo")
    assert code == 0, err
    call = recorder.calls[-1]
    assert (str(call["out_dir"]), call["refs"], call["size"], call["seed"]) == ("prfnet_demo", 48, 256, 0)
    assert (call["config"], call["metrics"], call["progress"]) == ("demo", None, True)
    assert table_header(stdout) == ["metric", "accuracy", "psnr_close", "psnr_apart", "prfnet - metric"]
    assert table_rows(stdout) == [
        ["prfnet", "0.750 [0.625, 0.875]", "1.000", "0.500", ""],
        ["psnr", "0.600 [0.500, 0.700]", "-", "0.250", "+0.150 [+0.050, +0.250]"],
    ]
    assert "ceiling: the hidden judge scores 0.800 [0.700, 0.900] on the same 20 keys" in stdout
    assert "0.125 after step 1, 0.062 after step 2 (ECE 0.050)" in stdout
    assert "lpips: unavailable (no weights here)" in stdout
    assert "compare r.png a.png b.png: closer B (P(A closer) = 0.250, score A 0.5000, score B 0.3000)" in stdout

    code, stdout, err = run(capsys, "demo", "--refs", "3")
    assert code == 2 and stdout == "" and "--refs" in err
    code, stdout, err = run(capsys, "demo", "--size", "128")  # codec rate floors: 256 px at least
    assert code == 2 and stdout == "" and "--size" in err


@pytest.mark.usefixtures("terminal")
def test_demo_command_runs_the_pipeline_and_prints_what_it_wrote(capsys, tmp_path):
    config = load_train_config("demo").to_dict()
    config["data"]["crop"] = 64
    config["steps"]["classification"]["epochs"] = 1
    config["steps"]["regression"]["epochs"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "demo"
    code, stdout, err = run(
        capsys, "demo", "--out", out, "--refs", "4", "--size", "256", "--seed", "1", "--config",
        tmp_path / "tiny.yaml", "--metrics", "prfnet,psnr,ms_ssim",
    )  # fmt: skip
    assert code == 0, err
    stdout, err = ANSI.sub("", stdout), ANSI.sub("", err)
    stages = [line.split()[0] for line in err.splitlines() if re.match(r"\d/5 ", line)]
    assert stages == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert "Epoch 0" in err and "scoring" in err  # the training and evaluation progress bars, on stderr
    assert "Epoch" not in stdout and "scoring" not in stdout
    assert "seed: 1\n" in (out / "train" / "config.yaml").read_text()  # --seed is the training seed too

    results = json.loads((out / "results.json").read_text())
    ceiling = results.pop("ceiling")
    rows = table_rows(stdout)
    assert [row[0] for row in rows] == list(results) == ["prfnet", "psnr", "ms_ssim"]
    for row, entry in zip(rows, results.values(), strict=True):
        low, high = entry["accuracy_ci95"]
        assert row[1] == f"{entry['accuracy']:.3f} [{low:.3f}, {high:.3f}]"
        assert row[2:4] == ["-" if v is None else f"{v:.3f}" for v in entry["accuracy_by_kind"].values()]
        paired = entry.get("paired_difference")
        assert row[4].startswith(f"{paired['mean']:+.3f} [") if paired else row[4] == ""
    assert f"the hidden judge scores {ceiling['judge_accuracy']:.3f}" in stdout
    line = next(line for line in stdout.splitlines() if line.startswith("compare "))
    ref, a, b = line.split()[1:4]
    b = b.rstrip(":")
    with open(out / "data" / "test_kinds.csv", newline="") as f:
        assert [ref, a, b, "psnr_close"] in list(csv.reader(f))  # a held-out pair of codecs within 1 dB PSNR
    images = out / "data" / "images"
    again = compare_files(PRFNet.from_pretrained(out / "model.safetensors"), images / ref, images / a, images / b)
    assert f"closer {again.closer} (P(A closer) = {again.prob_a:.3f}, score A {again.score_a:.4f}" in line
    assert re.search(
        rf"^wrote {re.escape(str(out / 'report.html'))}, {re.escape(str(out / 'model.safetensors'))}, "
        rf"{re.escape(str(out / 'results.json'))} in \d+ s$",
        stdout,
        re.M,
    )
    assert stdout.strip().splitlines()[-1] == f"look at them: prfnet view {out}"  # the last line: see it
