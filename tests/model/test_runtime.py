"""The onnxruntime path (``--runtime onnxruntime``): parity with PyTorch over sizes, odd shapes, tiles and uint8
input, the reference encoded once, the graph cache (reused, rebuilt when corrupt, keyed by the weights) and the
checks that refuse what it cannot do."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from prfnet import PRFNet
from prfnet.api import load_model, model_identity
from prfnet.errors import ConfigError, InputError, OutputError
from prfnet.model import runtime as runtime_module
from prfnet.model.runtime import OnnxRuntime, check_runtime

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SCORE_RTOL, PROB_ATOL = 1e-4, 1e-5  # the parity bounds: relative on distances, absolute on probabilities


@pytest.fixture(scope="module")
def pair():
    """(torch model, the same weights in onnxruntime): test_resnet with a non-trivial head."""
    torch.manual_seed(0)
    model = PRFNet("test_resnet").eval()
    with torch.no_grad():
        model.head.weight.normal_()
    return model, copy.deepcopy(model).use_runtime("onnxruntime")


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.allclose(got, expected, rtol=SCORE_RTOL, atol=0), (got - expected).abs().max()


@pytest.mark.parametrize("size", [(32, 32), (33, 47), (64, 64), (97, 131), (256, 256), (301, 199), (1024, 1024)])
def test_scores_and_probabilities_match_pytorch_over_sizes(pair, size):
    model, fast = pair
    g = torch.Generator().manual_seed(sum(size))
    ref, a, b = (torch.rand(1, 3, *size, generator=g) for _ in range(3))
    dist = torch.rand(3, 3, *size, generator=g)
    with torch.no_grad():
        _close(fast.score(ref, dist), model.score(ref, dist))
        assert (fast.compare(ref, a, b) - model.compare(ref, a, b)).abs().max() <= PROB_ATOL


def test_tiled_images_and_uint8_input_match_pytorch(pair):
    model, fast = pair
    g = torch.Generator().manual_seed(3)
    ref = (torch.rand(1, 3, 211, 157, generator=g) * 255).to(torch.uint8)
    dist = (torch.rand(2, 3, 211, 157, generator=g) * 255).to(torch.uint8)
    try:
        for m in (model, fast):
            m.set_tiling(96, 64)
        with torch.no_grad():
            _close(fast.score(ref, dist), model.score(ref, dist))
            ranked, expected = fast.rank(ref, dist), model.rank(ref, dist)
        assert ranked.order.tolist() == expected.order.tolist()
        _close(ranked.scores, expected.scores)
    finally:
        for m in (model, fast):
            m.set_tiling(None)


def test_rank_encodes_the_reference_once_in_the_graph(pair, monkeypatch):
    model, fast = pair
    images = []
    features = OnnxRuntime.features
    monkeypatch.setattr(OnnxRuntime, "features", lambda self, x: images.append(x.shape[0]) or features(self, x))
    g = torch.Generator().manual_seed(4)
    ref, candidates = torch.rand(1, 3, 64, 80, generator=g), torch.rand(8, 3, 64, 80, generator=g)
    with torch.no_grad():
        _close(fast.rank(ref, candidates, batch_size=4).scores, model.rank(ref, candidates, batch_size=4).scores)
    assert images == [1, 4, 4]  # the reference once, then the candidates in two batches


def test_encoded_reference_and_score_maps_go_through_the_graph(pair):
    model, fast = pair
    g = torch.Generator().manual_seed(5)
    ref, dist = torch.rand(1, 3, 72, 72, generator=g), torch.rand(2, 3, 72, 72, generator=g)
    with torch.no_grad():
        _close(fast.score(fast.encode(ref), dist), model.score(ref, dist))
        maps = fast.score_map(ref, dist)
    _close(maps.mean(dim=(1, 2, 3)), model.score(ref, dist).detach())


def test_training_mode_never_uses_the_graph(pair, monkeypatch):
    _, fast = pair
    monkeypatch.setattr(OnnxRuntime, "features", lambda *a: pytest.fail("the graph ran in train mode"))
    trained = copy.deepcopy(fast).train()
    trained(*(torch.rand(2, 3, 64, 64) for _ in range(3))).sum().backward()  # PyTorch's path, with gradients
    assert trained.eval().runtime is None  # weights changed: the graphs are stale, PyTorch scores from now on


def test_gradients_are_refused_with_one_line(pair):
    _, fast = pair
    dist = torch.rand(1, 3, 64, 64, requires_grad=True)
    with pytest.raises(InputError, match="no gradients"):
        fast.score(torch.rand(1, 3, 64, 64), dist)


def test_graphs_are_cached_per_weights_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PRFNET_CACHE", str(tmp_path))
    exports = []
    export = runtime_module.export_scoring_graphs
    monkeypatch.setattr(runtime_module, "export_scoring_graphs", lambda *a: exports.append(1) or export(*a))
    torch.manual_seed(1)
    model = PRFNet("test_resnet")
    first = model.use_runtime("onnxruntime").runtime
    again = copy.deepcopy(model).use_runtime("onnxruntime", threads=1).runtime
    assert len(exports) == 1 and again.files == first.files and again.threads == 1
    with torch.no_grad():
        model.head.weight.add_(1.0)  # other weights: other graphs
    other = model.use_runtime("onnxruntime").runtime
    assert len(exports) == 2 and other.folder != first.folder
    assert (
        json.loads((first.folder / "graphs.json").read_text())["key"]["weights_sha256"] == first.key["weights_sha256"]
    )


@pytest.mark.parametrize("damage", ["truncated graph", "garbage with a matching hash", "index of another key"])
def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setenv("PRFNET_CACHE", str(tmp_path))
    torch.manual_seed(2)
    model = PRFNet("test_resnet")
    built = copy.deepcopy(model).use_runtime("onnxruntime").runtime
    index_path = built.folder / "graphs.json"
    index = json.loads(index_path.read_text())
    encoder = built.files["encoder"]
    if damage == "truncated graph":
        encoder.write_bytes(encoder.read_bytes()[:1000])
    elif damage == "garbage with a matching hash":  # the hash check passes; onnxruntime cannot open it
        encoder.write_bytes(b"not a graph")
        index["files"]["encoder"]["sha256"] = runtime_module.file_sha256(encoder)
        index_path.write_text(json.dumps(index))
    else:
        index["key"]["prfnet"] = "0.0.0"
        index_path.write_text(json.dumps(index))
    with caplog.at_level(logging.WARNING, logger="prfnet.model.runtime"):
        rebuilt = copy.deepcopy(model).use_runtime("onnxruntime")
    assert "exporting" in caplog.text
    x, r = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        _close(rebuilt.score(r, x), model.score(r, x))
    assert json.loads(index_path.read_text())["key"] == built.key


def test_the_runtime_survives_pickling(pair):
    model, fast = pair
    copy_of = pickle.loads(pickle.dumps(fast))  # DataLoader workers and spawned processes get a copy like this
    assert copy_of.runtime._sessions is None
    x, r = torch.rand(2, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        _close(copy_of.score(r, x), model.score(r, x))


def test_the_store_keys_onnxruntime_scores_apart(pair):
    model, fast = pair
    assert model_identity(fast) == model_identity(model) + "/onnxruntime"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runtime": "onnx"}, "--runtime must be one of torch, onnxruntime"),
        ({"runtime": "onnxruntime", "device": "cuda"}, "runs on the CPU"),
        ({"runtime": "onnxruntime", "precision": "bf16"}, "computes in fp32"),
        ({"runtime": "onnxruntime", "compile": True}, "does not apply"),
    ],
)
def test_what_onnxruntime_cannot_do_is_refused_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        check_runtime(**kwargs)
    assert "\n" not in str(info.value)


def test_a_missing_onnxruntime_names_the_extra(monkeypatch):
    find_spec = importlib.util.find_spec
    missing = lambda name, *a: None if name == "onnxruntime" else find_spec(name)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", missing)
    with pytest.raises(ConfigError, match=r"needs the onnxruntime package\(s\): pip install 'prfnet\[onnxruntime\]'"):
        load_model(None, random_init=True, backbone="test_resnet", runtime="onnxruntime", warn=False)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_thread_counts_are_refused(threads):
    with pytest.raises(ConfigError, match="--threads"):
        load_model(None, random_init=True, backbone="test_resnet", runtime="onnxruntime", threads=threads, warn=False)


BUILD_SCRIPT = """
import torch
from prfnet.api import load_model
model = load_model(None, random_init=True, backbone="test_resnet", runtime="onnxruntime", warn=False, seed=7)
with torch.no_grad():
    print(float(model.score(torch.ones(1, 3, 64, 64) / 2, torch.ones(1, 3, 64, 64) / 3)))
"""


def test_processes_building_the_same_graphs_at_once_both_succeed(tmp_path):
    env = {**os.environ, "PRFNET_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.decode()[-2000:] for _, e in outputs]
    assert outputs[0][0] == outputs[1][0]
    (folder,) = (tmp_path / "onnx").iterdir()
    index = json.loads((folder / "graphs.json").read_text())
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".")]  # no half-built file left
    assert {entry["path"] for entry in index["files"].values()} <= set(names)


def test_an_export_that_fails_half_way_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("PRFNET_CACHE", str(tmp_path))

    def full_disk(model, encoder, pair):
        Path(encoder).write_bytes(b"half")
        raise OutputError(f"{pair}: cannot write the graph (No space left on device)")

    monkeypatch.setattr(runtime_module, "export_scoring_graphs", full_disk)
    with pytest.raises(OutputError, match="No space left"):
        PRFNet("test_resnet").use_runtime("onnxruntime")
    (folder,) = (tmp_path / "onnx").iterdir()
    assert list(folder.iterdir()) == []


def _graph_set(folder: Path, used: float, complete: bool = True) -> Path:
    """A key folder as the runtime writes it (two graphs and, when complete, the index), last used at ``used``."""
    folder.mkdir(parents=True)
    for what in ("encoder", "pair"):
        (folder / f"{what}-{os.urandom(8).hex()}.onnx").write_bytes(b"graph")
    if complete:
        (folder / "graphs.json").write_text("{}")
        os.utime(folder / "graphs.json", (used, used))
    os.utime(folder, (used, used))
    return folder


def test_the_graph_cache_keeps_the_most_recently_used_weights_and_only_removes_its_own_files(tmp_path):
    now = time.time()
    old = [_graph_set(tmp_path / f"old{i}", now - 86400 * (i + 1)) for i in range(5)]  # old0 the most recent
    (old[4] / "mine.txt").write_text("not the cache's")
    building = _graph_set(tmp_path / "building", now - 60, complete=False)  # another process exporting now
    abandoned = _graph_set(tmp_path / "abandoned", now - 2 * runtime_module.STALE_BUILD_SECONDS, complete=False)
    keep = _graph_set(tmp_path / "in-use", now - 10 * 86400)  # the oldest, but the folder in use
    leftover = keep / f".encoder.{os.getpid()}.{os.urandom(4).hex()}.onnx"  # a build of this key killed half-way
    leftover.write_bytes(b"half")
    os.utime(leftover, (now - 7200, now - 7200))
    removed = runtime_module.prune_graph_cache(tmp_path, keep, kept=3)
    assert sorted(p.name for p in removed) == ["abandoned", "old2", "old3"]
    assert old[0].is_dir() and old[1].is_dir() and building.is_dir() and len(list(keep.iterdir())) == 3
    assert [p.name for p in old[4].iterdir()] == ["mine.txt"]  # its graphs went, the user's file and folder stay
    assert not leftover.exists() and not abandoned.exists()


def test_attaching_the_runtime_marks_its_graphs_used_and_prunes_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PRFNET_CACHE", str(tmp_path))
    stale = _graph_set(tmp_path / "onnx" / "stale", time.time() - 86400)
    monkeypatch.setattr(runtime_module, "KEPT_GRAPH_SETS", 1)
    torch.manual_seed(3)
    runtime = PRFNet("test_resnet").use_runtime("onnxruntime").runtime
    assert not stale.exists() and (runtime.folder / "graphs.json").stat().st_mtime > time.time() - 60
