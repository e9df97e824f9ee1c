"""The CLIC protocol (prfnet.evaluation.clic): official-scorer semantics, majority accuracy, submissions, pairs
scored once, unusable baselines, and ``prfnet eval clic`` on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prfnet.api import NO_CHECKPOINT_HELP
from prfnet.cli import main
from prfnet.data import read_clic_oracle
from prfnet.errors import DataError
from prfnet.evaluation import decisions, evaluate_clic, majority_accuracy, official_accuracy, score_submission
from prfnet.images import load_image
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric
from tests.conftest import SMOOTH_SIDE as SIDE
from tests.conftest import noisy, smooth_image, write_png


def _write_csv(path, rows) -> None:
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))


@pytest.fixture()
def clic(tmp_path):
    """Two references with three noise levels each; humans always prefer the less noisy image."""
    images = tmp_path / "images"
    for r in range(2):
        ref = smooth_image(r)
        write_png(images / f"r{r}.png", ref)
        for level, sigma in enumerate((0.02, 0.08, 0.2)):
            write_png(images / f"r{r}_n{level}.png", noisy(ref, sigma, 10 * r + level))
    triplets = [("r0", 0, 1), ("r0", 2, 1), ("r0", 0, 2), ("r1", 1, 0), ("r1", 1, 2), ("r1", 0, 1)]
    csv_rows = [(f"{r}.png", f"{r}_n{a}.png", f"{r}_n{b}.png") for r, a, b in triplets]
    oracle_rows = [(*row, 0 if row[1] < row[2] else 1) for row in csv_rows]  # file names sort by noise level
    oracle_rows.append((*csv_rows[0], 1))  # a repeated key disagreeing: the official scorer keeps this last row
    oracle_rows.append(oracle_rows[3])
    _write_csv(tmp_path / "validation.csv", csv_rows)
    _write_csv(tmp_path / "oracle.csv", oracle_rows)
    kinds = [(*row, "easy" if i % 2 == 0 else "hard") for i, row in enumerate(csv_rows)]
    _write_csv(tmp_path / "kinds.csv", kinds)
    return tmp_path


class CountingMetric:
    """A distance (mean absolute difference) that records every batch it is given."""

    name = "counting"
    higher_better = False

    def __init__(self):
        self.calls: list[tuple[int, tuple[int, int]]] = []

    def __call__(self, ref, dist):
        assert ref.shape == dist.shape  # pairs of one size per batch
        self.calls.append((dist.shape[0], tuple(dist.shape[-2:])))
        return (ref - dist).abs().mean(dim=(1, 2, 3))


# -- CLIC: official scorer semantics -------------------------------------------------------------


def test_official_accuracy_last_row_wins_and_swapped_keys_count_separately(tmp_path):
    _write_csv(tmp_path / "o.csv", [("R", "A", "B", 0), ("R", "B", "A", 0), ("R", "C", "D", 1), ("R", "A", "B", 1)])
    official = read_clic_oracle(tmp_path / "o.csv").official  # keyed (O, A, B), the scorer's "O,A,B"
    rab, rba, rcd, rxy = ("R", "A", "B"), ("R", "B", "A"), ("R", "C", "D"), ("R", "X", "Y")
    assert official == {rab: 1, rba: 0, rcd: 1}
    assert official_accuracy({rab: 1, rba: 1, rcd: 1}, official) == pytest.approx(2 / 3)
    assert official_accuracy({rab: 0, rba: 0, rcd: 1, rxy: 0}, official) == pytest.approx(2 / 3)
    assert official_accuracy({rab: 1, rba: 0, rcd: 1}, official) == 1.0


def test_missing_oracle_key_is_a_data_error(clic):
    with pytest.raises(DataError, match="R,B,A"):
        official_accuracy({"R,A,B": 1}, {"R,A,B": 1, "R,B,A": 0}, "oracle.csv")
    with open(clic / "oracle.csv", "a") as f:
        f.write("r1.png,r1_n2.png,r1_n0.png,1\n")  # not in validation.csv
    with pytest.raises(DataError, match="oracle.csv.*not in the submission.*r1_n2.png,r1_n0.png"):
        evaluate_clic(clic / "validation.csv", clic / "images", clic / "oracle.csv", metrics=["psnr"], progress=False)


def test_majority_accuracy_excludes_ties():
    accuracy, counted = majority_accuracy([0, 0, 1, 1, 0], [1.0, 0.0, 0.5, 1.0, 0.5])
    assert counted == 3
    assert accuracy == pytest.approx(1 / 3)
    assert np.isnan(majority_accuracy([0], [0.5])[0])


def test_ties_are_submitted_as_a_closer_in_each_metric_direction():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    assert decisions(a, b, higher_better=True).tolist() == [0, 0, 1]
    assert decisions(a, b, higher_better=False).tolist() == [0, 1, 0]


def test_evaluate_clic_submissions_accuracies_and_outputs(clic, tiny_model):
    out = clic / "out"
    results = evaluate_clic(
        clic / "validation.csv",
        clic / "images",
        oracle=clic / "oracle.csv",
        metrics=["prfnet", "psnr"],
        model=tiny_model,
        kinds=clic / "kinds.csv",
        out_dir=out,
        progress=False,
    )
    assert list(results) == ["prfnet", "psnr"]
    csv_keys = (clic / "validation.csv").read_text().split()
    for name, entry in results.items():
        rows = read_clic_oracle(out / f"submission_{name}.csv").rows
        assert [t.key() for t, _ in rows] == csv_keys  # every triplet, CSV order, 4 columns
        assert entry["accuracy"] == pytest.approx(score_submission(out / f"submission_{name}.csv", clic / "oracle.csv"))
    psnr = results["psnr"]
    # PSNR always picks the less noisy image; the official scorer keeps the contradicting last row of key 1
    assert psnr["accuracy"] == pytest.approx(5 / 6) and psnr["n_keys"] == 6
    # 5 unordered triplets (keys 4 and 6 are one triplet, swapped); the first one's votes tie: excluded
    assert psnr["accuracy_majority"] == 1.0 and psnr["n_majority"] == 4
    assert psnr["accuracy_votes"] == pytest.approx(7 / 8)
    assert psnr["accuracy_by_kind"] == {"easy": pytest.approx(2 / 3), "hard": 1.0}
    # PRFNet's decisions are model.compare's: T = 0 where P(A closer) >= 0.5
    for t, submitted in read_clic_oracle(out / "submission_prfnet.csv").rows:
        r, a, b = (load_image(clic / "images" / name) for name in (t.ref, t.a, t.b))
        with torch.no_grad():
            p_a = float(tiny_model.compare(r, a, b))
        assert submitted == (0 if p_a >= 0.5 else 1)
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3  # bars, reliability, examples


def test_each_pair_is_scored_and_decoded_once_in_equal_size_batches(clic, monkeypatch):
    import prfnet.scoring.pair_loader as pair_loader

    write_png(clic / "images" / "big.png", smooth_image(5, 64))
    write_png(clic / "images" / "big_n.png", noisy(smooth_image(5, 64), 0.1, 1))
    decoded: list[str] = []
    monkeypatch.setattr(pair_loader, "load_image", lambda p, **kw: decoded.append(p) or load_image(p, **kw))
    pairs = [("r0.png", "r0_n0.png"), ("r0.png", "r0_n1.png"), ("r0.png", "r0_n0.png"), ("big.png", "big_n.png")]
    pairs = [(str(clic / "images" / r), str(clic / "images" / d)) for r, d in pairs * 3]
    metric = CountingMetric()
    scores = score_pairs(pairs, [metric], batch_size=8, progress=False)
    assert sorted(metric.calls) == [(1, (64, 64)), (2, (SIDE, SIDE))]  # 3 unique pairs, one batch per size
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == 5
    assert scores.lookup("counting", pairs[:2]).shape == (2,)


def test_unusable_baselines_are_listed_with_their_reason(clic, monkeypatch, tmp_path):
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(tmp_path / "no_weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_torch_home"))
    monkeypatch.setenv("PRFNET_OFFLINE", "1")  # no first-use download of VGG16
    results = evaluate_clic(
        clic / "validation.csv", clic / "images", metrics=["psnr", "lpips", "ms_ssim"], progress=False
    )
    assert list(results) == ["psnr", "lpips", "ms_ssim"]
    assert results["psnr"]["available"] and results["psnr"]["accuracy"] is None  # no oracle
    assert results["lpips"]["available"] is False and "weights" in results["lpips"]["reason"]
    assert results["ms_ssim"]["available"] is False and "176" in results["ms_ssim"]["reason"]


def test_prfnet_metric_is_the_model_score_and_shares_an_expanded_reference(tiny_model, images):
    ref, dist = images(1), images(3)
    metric = PRFNetMetric(tiny_model)
    assert metric.name == "prfnet" and metric.higher_better is False
    shared = metric(ref.expand(3, -1, -1, -1), dist)
    with torch.no_grad():
        expected = tiny_model.score(ref.repeat(3, 1, 1, 1), dist)
    assert torch.allclose(shared, expected, atol=1e-5)
    prob = PRFNetMetric.probability_a(shared[0], shared[1])
    with torch.no_grad():
        assert float(prob) == pytest.approx(float(tiny_model.compare(ref, dist[:1], dist[1:2])), abs=1e-5)


# -- command line ----------------------------------------------------------------------------------


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_json_is_the_only_stdout(clic, capsys):
    code, out, _ = _run(
        capsys, "eval", "clic", "--csv", str(clic / "validation.csv"), "--root", str(clic / "images"),
        "--oracle", str(clic / "oracle.csv"), "--metrics", "prfnet,psnr", "--random-init", "--backbone",
        "test_resnet", "--out-dir", str(clic / "out"), "--json", "--no-progress",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)  # one document, nothing else on stdout
    assert out.strip().count("\n") == 0
    assert set(doc) == {"prfnet", "psnr"}
    assert doc["psnr"]["accuracy"] == pytest.approx(5 / 6)
    assert (clic / "out" / "submission_prfnet.csv").is_file()


def test_cli_missing_image_exits_2_with_one_line(clic, capsys):
    (clic / "images" / "r1_n2.png").unlink()
    code, out, err = _run(
        capsys, "eval", "clic", "--csv", str(clic / "validation.csv"), "--root", str(clic / "images"),
        "--metrics", "psnr", "--out-dir", str(clic / "out"), "--json",
    )  # fmt: skip
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "r1_n2.png" in lines[0] and "not found" in lines[0]
    assert not (clic / "out").exists()


def test_cli_prfnet_without_checkpoint_gives_the_compare_message(clic, capsys, monkeypatch):
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    code, out, err = _run(
        capsys, "eval", "clic", "--csv", str(clic / "validation.csv"), "--root", str(clic / "images"),
        "--metrics", "prfnet", "--out-dir", str(clic / "out"),
    )  # fmt: skip
    assert code == 2 and out == ""
    assert " ".join(err.split()).endswith(" ".join(NO_CHECKPOINT_HELP.split()))
