"""prfnet compare / score / rank from the command line: JSON output, exit codes, error lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from prfnet import PRFNet, load_image, save_image
from prfnet.cli import main
from tests.conftest import write_noisy_copies


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    paths = write_noisy_copies(d, 0, [0.05, 0.2, 0.4])
    save_image(torch.rand(1, 3, 64, 64), d / "small.png")
    paths["small"] = d / "small.png"
    (d / "broken.png").write_text("no image")
    paths["broken"] = d / "broken.png"
    torch.manual_seed(0)
    model = PRFNet("test_resnet")
    with torch.no_grad():
        model.head.weight.normal_()
    paths["ckpt"] = model.save_pretrained(d / "tiny.safetensors")
    return {k: str(v) for k, v in paths.items()}


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _expected_prob_a(model: PRFNet, ref: str, a: str, b: str) -> float:
    """P(A closer) from the model's own ``compare`` on the files decoded by ``load_image`` (float, in [0, 1])."""
    with torch.no_grad():
        return model.compare(load_image(ref), load_image(a), load_image(b)).item()


def test_compare_json_is_exactly_one_object(capsys, files):
    model = PRFNet.from_pretrained(files["ckpt"])
    for a, b in (("d0", "d2"), ("d2", "d0"), ("same", "d2"), ("d2", "same")):
        code, out, err = run(capsys, "compare", files["ref"], files[a], files[b], "-c", files["ckpt"], "--json")
        assert code == 0, err
        assert len(out.strip().splitlines()) == 1
        result = json.loads(out)
        assert set(result) == {"closer", "prob_a", "score_a", "score_b"}
        assert result["prob_a"] == pytest.approx(_expected_prob_a(model, files["ref"], files[a], files[b]), abs=1e-6)
        with torch.no_grad():
            score_a, score_b = (model.score(load_image(files["ref"]), load_image(files[x])).item() for x in (a, b))
        assert (result["score_a"], result["score_b"]) == pytest.approx((score_a, score_b), abs=1e-6)
        # the label: the image with the smaller distance is the closer one; the reference itself is always closer
        assert result["closer"] == ("A" if score_a < score_b else "B")
        if "same" in (a, b):
            assert result["closer"] == ("A" if a == "same" else "B")


def test_checkpoint_from_environment(capsys, files, monkeypatch):
    monkeypatch.setenv("PRFNET_CHECKPOINT", files["ckpt"])
    code, out, _ = run(capsys, "compare", files["ref"], files["same"], files["d1"], "--json")
    assert code == 0 and json.loads(out)["closer"] == "A"


def test_score_and_rank_json(capsys, files):
    dists = [files["d2"], files["same"], files["d0"]]
    code, out, _ = run(capsys, "score", files["ref"], *dists, "-c", files["ckpt"], "--json")
    assert code == 0
    scored = json.loads(out)
    assert [s["path"] for s in scored] == dists
    assert scored[1]["score"] < 1e-5 < scored[0]["score"]
    code, out, _ = run(capsys, "rank", files["ref"], *dists, "-c", files["ckpt"], "--json", "-b", "2")
    ranked = json.loads(out)
    assert ranked[0]["path"] == files["same"]
    expected = sorted(s["score"] for s in scored)
    assert [r["score"] for r in ranked] == pytest.approx(expected, abs=1e-6)


def test_no_checkpoint_explains_how_to_get_one(capsys, files, monkeypatch):
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    code, out, err = run(capsys, "compare", files["ref"], files["d0"], files["d1"])
    assert code == 2 and out == ""
    assert "--checkpoint" in err and "PRFNET_CHECKPOINT" in err and "Traceback" not in err


def test_random_init_warns_loudly(capsys, files):
    args = ["compare", files["ref"], files["d0"], files["d1"], "--random-init", "--backbone", "test_resnet", "--json"]
    torch.manual_seed(7)
    state = torch.get_rng_state()
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "WARNING: --random-init: untrained weights, the answers below mean NOTHING." in " ".join(err.split())
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left as it was
    result = json.loads(out)
    assert result["closer"] in ("A", "B")
    # the answer is the untrained test_resnet model's, built from load_model's seed (0) whatever the global seed
    torch.manual_seed(0)
    model = PRFNet("test_resnet")
    assert result["prob_a"] == pytest.approx(_expected_prob_a(model, files["ref"], files["d0"], files["d1"]), abs=1e-6)
    assert result["closer"] == ("A" if result["score_a"] < result["score_b"] else "B")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("ref", "d0", "missing"), "file not found"),
        (("ref", "d0", "broken"), "broken.png"),
        (("ref", "d0", "small"), "same size"),
    ],
)
def test_user_errors_give_one_line_and_exit_2(capsys, files, names, message):
    paths = [files.get(n, files["ref"].replace("ref.png", "missing.png")) for n in names]
    code, out, err = run(capsys, "compare", *paths, "-c", files["ckpt"], "--json")
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_checkpoint_is_a_user_error(capsys, files):
    code, _, err = run(capsys, "score", files["ref"], files["d0"], "-c", files["broken"])
    assert code == 2 and "not a safetensors file" in err


def test_help_shows_an_example_for_each_command(capsys):
    for command in ("compare", "score", "rank"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and f"prfnet {command}" in out and "Example" in out


def test_module_entry_point_runs_without_traceback(files):
    out = subprocess.run(
        [sys.executable, "-m", "prfnet", "score", files["ref"], files["d0"], "-c", files["ckpt"], "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["score"] > 0


def test_onnxruntime_gives_the_answers_of_pytorch(capsys, files):
    pytest.importorskip("onnxruntime")
    ref, a, b, ckpt = files["ref"], files["d0"], files["d2"], files["ckpt"]
    answers = {}
    for runtime in ("torch", "onnxruntime"):
        code, out, err = run(capsys, "compare", ref, a, b, "-c", ckpt, "--json", "--runtime", runtime, "--threads", "1")
        assert code == 0, err
        answers[runtime] = json.loads(out)
        code, out, err = run(capsys, "rank", ref, a, b, files["d1"], "-c", ckpt, "--json", "--runtime", runtime)
        assert code == 0, err
        answers[runtime]["rank"] = json.loads(out)
    torch_side, ort_side = answers["torch"], answers["onnxruntime"]
    assert ort_side["prob_a"] == pytest.approx(torch_side["prob_a"], abs=1e-5)
    assert ort_side["score_a"] == pytest.approx(torch_side["score_a"], rel=1e-4)
    assert [r["path"] for r in ort_side["rank"]] == [r["path"] for r in torch_side["rank"]]
    assert [r["score"] for r in ort_side["rank"]] == pytest.approx([r["score"] for r in torch_side["rank"]], rel=1e-4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--runtime", "tensorrt"], "--runtime must be one of torch, onnxruntime, got 'tensorrt'"),
        (["--runtime", "onnxruntime", "--device", "cuda"], "--runtime onnxruntime runs on the CPU"),
    ],
)
def test_runtime_mistakes_are_one_line_before_the_model_loads(capsys, files, options, message):
    code, out, err = run(capsys, "score", files["ref"], files["d0"], "-c", files["ckpt"], *options)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {err.strip().removeprefix('error: ')}"] and message in err
