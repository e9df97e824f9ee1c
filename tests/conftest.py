"""Shared fixtures and file writers: a tiny untrained model, small random images, a tiny CLIC data set, smooth
noisy PNGs and a BAPPS tree, text and flat PNG writers, the adapters' ramp model and batches, and published output
sets (CPU, seconds)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import PRFNet, save_image
from prfnet.outputs import MANIFEST, OutputSet

TINY = "test_resnet"  # timm's 0.37M-parameter ResNet for tests
SMOOTH_SIDE = 48  # default side of smooth_image

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: N processes share the cores, one thread each
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises():
    """Ctrl-C as a user's shell delivers it, however the suite was started: a test run started in the background
    (`pytest ... &`, nohup, some CI runners) inherits SIGINT *ignored*, so Python installs no KeyboardInterrupt handler
    and the tests of Ctrl-C (in this process, and in the processes they start, which inherit an ignored signal)
    would see nothing. Python's own handler is installed; the processes the tests start then get the default."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """prfnet's cache folder (the onnxruntime graphs) in this test run's temporary folder, never the user's; the
    command-line processes the tests start inherit it."""
    patch = pytest.MonkeyPatch()
    patch.setenv("PRFNET_CACHE", str(tmp_path_factory.mktemp("prfnet-cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def tiny_model() -> PRFNet:
    torch.manual_seed(0)
    model = PRFNet(TINY).eval()
    # give the head non-trivial weights so that scores differ between images
    with torch.no_grad():
        model.head.weight.normal_()
    return model


@pytest.fixture()
def images():
    g = torch.Generator().manual_seed(1)

    def make(n: int = 1, h: int = 64, w: int = 64) -> torch.Tensor:
        return torch.rand(n, 3, h, w, generator=g)

    return make


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread (modules that train use it: ``pytestmark = pytest.mark.usefixtures("one_thread")``):
    tiny models gain nothing from more, and on a busy 2-core machine OpenMP threads waiting for each other make
    the runs several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_clic_dir(root: Path) -> Path:
    """4 references (64x64) with a mild and a strong noisy version each; CLIC oracle with 3 votes per
    triplet (one swapped row, one dissenting vote) so that p_a is a vote fraction, not only 0/1."""
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for r in range(4):
        ref = rng.random((64, 64, 3))
        Image.fromarray((ref * 255).astype(np.uint8)).save(root / "images" / f"r{r}.png")
        for k, sigma in enumerate((0.03, 0.25)):
            dist = np.clip(ref + rng.normal(0, sigma, ref.shape), 0, 1)
            Image.fromarray((dist * 255).astype(np.uint8)).save(root / "images" / f"r{r}_d{k}.png")
        rows += [f"r{r}.png,r{r}_d0.png,r{r}_d1.png,0", f"r{r}.png,r{r}_d1.png,r{r}_d0.png,1"]
        rows.append(f"r{r}.png,r{r}_d0.png,r{r}_d1.png,{r % 2}")  # a dissenting vote for half of them
    (root / "oracle.csv").write_text("\n".join(rows) + "\n")
    return root


def write_png(path: Path, array: np.ndarray) -> None:
    """An (H, W, 3) float image in [0, 1] (clipped, rounded to 8 bits) as a PNG; parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def smooth_image(seed: int, side: int = SMOOTH_SIDE) -> np.ndarray:
    """A smooth colour image (gradients + a blob) in [0, 1], (side, side, 3); ``seed`` shifts its phase."""
    y, x = np.mgrid[0:side, 0:side] / side
    phase = seed * 0.7
    return np.stack([0.5 + 0.4 * np.sin(3 * x + phase), 0.3 + 0.5 * y, 0.5 + 0.3 * np.cos(4 * x * y + phase)], -1)


def noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``img`` plus Gaussian noise of standard deviation ``sigma`` (not clipped)."""
    return img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)


def make_bapps_tree(root: Path, splits: dict[str, dict[str, list[float]]]) -> None:
    """``root/2afc/<split>/<subset>``: per judge value one smooth reference, p0 mildly noisy, p1 strongly noisy,
    judge = the given fraction preferring p1."""
    for split, subsets in splits.items():
        for subset, values in subsets.items():
            folder = root / "2afc" / split / subset
            for i, judge in enumerate(values):
                ref = smooth_image(i)
                write_png(folder / "ref" / f"{i:06d}.png", ref)
                write_png(folder / "p0" / f"{i:06d}.png", noisy(ref, 0.02, i))
                write_png(folder / "p1" / f"{i:06d}.png", noisy(ref, 0.2, i))
                (folder / "judge").mkdir(exist_ok=True)
                np.save(folder / "judge" / f"{i:06d}.npy", np.array([judge]))


def write_noisy_copies(folder: Path, seed: int, amounts: list[float]) -> dict[str, Path]:
    """A random 64x72 reference ``ref.png``, an exact copy ``same.png`` and ``d<i>.png`` = the reference plus
    ``amounts[i]`` x standard normal noise (clamped to [0, 1]), all drawn from one generator seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(1, 3, 64, 72, generator=g)
    paths = {"ref": folder / "ref.png", "same": folder / "same.png"}
    save_image(ref, paths["ref"])
    save_image(ref, paths["same"])
    for i, amount in enumerate(amounts):
        paths[f"d{i}"] = folder / f"d{i}.png"
        save_image((ref + amount * torch.randn(ref.shape, generator=g)).clamp(0, 1), paths[f"d{i}"])
    return paths


def save_tiny_checkpoint(path: Path, seed: int) -> Path:
    """An untrained ``TINY`` PRFNet (weights drawn after ``torch.manual_seed(seed)``, head weights N(0, 1) so
    that scores differ between images) saved to ``path``; returns the path."""
    torch.manual_seed(seed)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    return model.save_pretrained(path)


def make_pairs(folder: Path, refs: int = 2, dists: int = 5, side: int = 64, seed: int = 0) -> list[tuple[str, str]]:
    """``refs`` random references ``r<i>.png`` with ``dists`` noisy versions ``r<i>_d<k>.png`` each (noise
    0.03 x (k + 1)): the (reference, distorted) path pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = []
    for r in range(refs):
        ref = rng.random((side, side, 3))
        write_png(folder / f"r{r}.png", ref)
        for k in range(dists):
            write_png(folder / f"r{r}_d{k}.png", ref + rng.normal(0.0, 0.03 * (k + 1), ref.shape))
            pairs.append((str(folder / f"r{r}.png"), str(folder / f"r{r}_d{k}.png")))
    return pairs


def write_text(path: Path, content: str) -> Path:
    """``content`` written to ``path`` as UTF-8 (parent folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def flat_png(path: Path, value: int = 0, size: int = 8) -> Path:
    """A ``size`` x ``size`` RGB PNG of the one grey level ``value`` (parent folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)
    return path


def ramp_model() -> PRFNet:
    """A new tiny model (seed 0) whose head weights rise evenly from -1 to 2: softplus gives positive weights, not
    all equal (the adapters and the loss are tested on it)."""
    torch.manual_seed(0)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.copy_(torch.linspace(-1.0, 2.0, model.head.weight.numel()))
    return model


def noisy_batch(n: int, size: int, sigma: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random references (n, 3, size, size) in [0, 1] and the same plus ``sigma`` x standard normal noise,
    clamped to [0, 1]; both drawn from one generator seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, 3, size, size, generator=g)
    return ref, (ref + sigma * torch.randn(ref.shape, generator=g)).clamp(0, 1)


def save_triplet_files(folder: Path, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, Path]:
    """``ref.png``, ``a.png`` and ``b.png`` in ``folder``, from (1, 3, H, W) tensors; ``{"ref": path, ...}``."""
    paths = {}
    for name, img in (("ref", ref), ("a", a), ("b", b)):
        paths[name] = folder / f"{name}.png"
        save_image(img, paths[name])
    return paths


#: the output kinds of the OutputSet tests (tests/outputs): two files, a pattern and a folder
OUTPUT_KINDS = ("results.json", "report.html", "submission_*.csv", "data")


def publish_outputs(root: Path, files: dict[str, str]) -> dict:
    """One :class:`prfnet.outputs.OutputSet` of ``OUTPUT_KINDS`` published into ``root`` with ``files`` (name ->
    text); returns its manifest."""
    with OutputSet(root, OUTPUT_KINDS) as sink:
        for name, text in files.items():
            write_text(sink.path(name), text)
    return json.loads((root / MANIFEST).read_text(encoding="utf-8"))


def file_snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (POSIX relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clic_dir(tmp_path_factory) -> Path:
    return make_clic_dir(tmp_path_factory.mktemp("clic"))


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never download weights (LPIPS/DISTS fetch VGG16 on first use): offline unless a test says otherwise
    (tests/baselines/test_learned.py serves files from a local HTTP server and lifts this)."""
    monkeypatch.setenv("PRFNET_OFFLINE", "1")


#: environment variable naming the file a held command (:func:`held_prfnet`) creates when it reaches its hold point
HELD_ENV = "PRFNET_TEST_HELD"


def held_prfnet(method: str, when: str = "True") -> list[str]:
    """argv of a ``prfnet`` process (append its arguments) that, once a call of ``method`` (``"module:Class.name"``)
    has returned and the expression ``when`` (of the call's ``args``) holds, creates the file named by
    ``$PRFNET_TEST_HELD`` and sleeps: a test then kills it at exactly that point (not at whatever point a timer
    reaches, which depends on the machine's load)."""
    module, qualname = method.split(":")
    owner, name = qualname.split(".")
    script = f"""
import importlib, os, sys, time
owner = getattr(importlib.import_module({module!r}), {owner!r})
original = getattr(owner, {name!r})
def held(*args, **kwargs):
    result = original(*args, **kwargs)
    if {when}:
        open(os.environ[{HELD_ENV!r}], "w").close()
        time.sleep(3600)
    return result
setattr(owner, {name!r}, held)
from prfnet.cli import main
sys.exit(main(sys.argv[1:]))
"""
    return [sys.executable, "-c", script]


def wait_for_hold(process, marker: Path, limit_s: float = 600) -> None:
    """Return once ``marker`` exists (the held process reached its hold point); fail if the process ends first."""
    deadline = time.monotonic() + limit_s
    while not marker.exists():
        if process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"the process ended (exit {process.returncode}) before its hold point: {stderr[-3000:]}")
        assert time.monotonic() < deadline, f"no hold point after {limit_s} s"
        time.sleep(0.01)
