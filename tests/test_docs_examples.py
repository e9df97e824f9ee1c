"""Every Python and shell example of README.md and docs/*.md, extracted from the Markdown and run.

One test per fenced block (``pytest -v`` lists them as ``README.md:58-python`` ...), each in a fresh copy of
one workspace that holds the files the examples name: ``ref.png``, ``a.png``, ``b.png``, ``candidates/``,
``model.safetensors`` (timm's ``test_resnet`` backbone), small CLIC, BAPPS, KADID-10k and CSV data sets, ...

- ``python`` blocks are executed. A statement whose comment shows its result is checked: a shape comment
  (``(N,)``, ``(1, 3, H, W)``) against the shape of the assigned value; a Python literal or constructor call
  (``# True: ...``, ``# 1.0: A closer``, ``# Triplet("ref.png", ...); .key() == "..."``, ``# {"step", ...}``)
  against the value of the expression (``...`` matches anything).
- ``bash``/``sh``/``shell``/``console`` blocks run line by line: ``prfnet ...`` in-process through
  :func:`prfnet.cli.main` (exit code 0 required), ``export``/``VAR=value`` prefixes and ``&&`` as in a shell,
  globs expanded, any other command in a ``bash`` subprocess. A ``--json`` command must print one JSON document,
  whose keys must be those of a JSON comment on its line; the output lines of a ``console`` block must be printed.
- What cannot run here (a full SE-Res2Net50 training on /data/clic, several GPUs, ``pip install``) is listed in
  :data:`COMMANDS`: a runnable equivalent that keeps every documented option and shrinks only data, epochs and
  backbone (:class:`Sub`), an option check that parses the documented command with ``--help`` appended
  (:class:`OptionsOnly`), or a documented reason (:class:`Skip`). Every key of the table must still occur in the
  docs, so a changed example fails here until the table follows it.
"""

from __future__ import annotations

import ast
import gc
import glob
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from prfnet import PRFNet, save_image
from prfnet.cli import main
from tests.conftest import TINY, make_clic_dir

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell", "console"}
NOT_CODE = {"text", "json", "yaml", ""}  # layouts, data rows, configs, file trees: read, not run


# -- extraction ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository root
    line: int  # line of the opening fence
    lang: str
    lines: tuple[tuple[int, str], ...]  # (line number, text) of the body

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}-{self.lang}"


def extract_blocks() -> list[Block]:
    blocks = []
    for path in DOCS:
        rel = path.relative_to(ROOT).as_posix()
        opened, body = None, []
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = re.match(r"^\s*```\s*([\w+-]*)", text)
            if fence and opened is None:
                opened, body = (number, fence.group(1).lower()), []
            elif fence:
                blocks.append(Block(rel, opened[0], opened[1], tuple(body)))
                opened = None
            elif opened is not None:
                body.append((number, text))
        assert opened is None, f"{rel}:{opened[0]}: unclosed code fence"
    return blocks


BLOCKS = extract_blocks()
RUN_BLOCKS = [b for b in BLOCKS if b.lang in PYTHON | SHELL]


def split_comment(text: str) -> tuple[str, str | None]:
    """``code  # comment`` -> (code, comment); a ``#`` inside quotes or inside a word is not a comment."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip(), text[i + 1 :].strip()
    return text.rstrip(), None


@dataclass
class Command:
    line: int
    text: str  # continuation lines joined, comment removed
    comment: str | None
    output: list[str] = field(default_factory=list)  # console blocks: the lines printed after it


def shell_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    pending: tuple[int, str] | None = None
    for number, raw in block.lines:
        if pending is None:
            stripped = raw.strip()
            if block.lang == "console":
                if not stripped.startswith("$ "):
                    if stripped:
                        assert commands, f"{block.id}: output line before any command"
                        commands[-1].output.append(stripped)
                    continue
                stripped = stripped[2:].strip()
            if not stripped or stripped.startswith("#"):
                continue
            pending = (number, stripped)
        else:
            pending = (pending[0], pending[1] + " " + raw.strip())
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
            continue
        code, comment = split_comment(pending[1])
        commands.append(Command(pending[0], " ".join(code.split()), comment))
        pending = None
    assert pending is None, f"{block.id}: a line continues past the end of the block"
    return commands


def command_parts(command: Command) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\s&&\s", command.text)]


# -- what cannot run here ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sub:
    """A runnable equivalent: the documented options kept (checked), only data, epochs, backbone, sizes shrunk."""

    command: str
    why: str
    memo: str | None = None  # its output folder, when the result depends on the arguments only: run once a session


@dataclass(frozen=True)
class OptionsOnly:
    """``COMMAND --help``: the documented options must exist (click rejects unknown options before printing help)."""

    why: str
    command: str | None = None  # the prfnet command inside a launcher line (srun, torchrun, env prefix, ...)


@dataclass(frozen=True)
class Skip:
    why: str
    check: Callable[[], None] | None = None  # what can be checked of the line here


def _installed() -> None:
    dist = metadata.distribution("prfnet")
    assert [e.value for e in dist.entry_points if e.name == "prfnet"] == ["prfnet.cli:main"]


def _dev_extra() -> None:
    requires = metadata.distribution("prfnet").requires or []
    dev = {re.split(r"[<>=;\s\[]", r)[0] for r in requires if 'extra == "dev"' in r.replace("'", '"')}
    assert {"pytest", "ruff"} <= dev, requires


def _suite_entry() -> None:
    config = ROOT / "pyproject.toml"
    assert 'testpaths = ["tests"]' in config.read_text(encoding="utf-8")


#: one epoch per step, 32 px crops (the smallest): what `--set` shrinks in every training example
SHRINK = "--set steps.classification.epochs=1 --set steps.regression.epochs=1 --set data.crop=32"
#: clic2022 on a CPU: the shipped config with timm's tiny test backbone, no hub weights, no worker processes
SHRINK_CLIC = f"--set model.backbone={TINY} --set model.pretrained_backbone=false --set data.num_workers=0 {SHRINK}"
DEMO = "prfnet demo --out prfnet_demo --refs 4 --size 256 --config demo_1epoch.yaml --metrics prfnet,psnr,ssim"
DEMO_WHY = (
    "the demo on 4 references of 256 px, 1 + 1 epochs on 32 px crops, 3 metrics (the full demo takes about 8 "
    "minutes); it reads only its embedded data, so its second occurrence (README) gets a copy of the first one's "
    "prfnet_demo/"
)
VIEW_SERVER = "a server that runs until Ctrl-C: tests/view serves real output sets and stops a real one with SIGINT"
REPRODUCE_WHY = "the workspace's 256 px CLIC set for the fetched one, its tiny model for the trained one"
TUNE_PHOTOS = "needs photos (the workspace's are noise); tests/tune and tests/cli/test_tune.py tune image files"
MULTI_GPU = "needs several GPUs (DDP); tests/training/test_run.py trains with two-process DDP on CPUs"

#: docs/checkpoints.md's example URL and pin (example.org: never downloaded; tests/hub serves URLs on 127.0.0.1)
EXAMPLE_URL = "https://example.org/prfnet/model.safetensors"
EXAMPLE_PIN = "9b5c0e7a41d3f2c86e1b0a7d5f4c3e2b1a09f8e7d6c5b4a3928170f6e5d4c3b2"
CHECKPOINT_URL_WHY = (
    "no internet here: the workspace's model as a local file; tests/hub/test_cli.py runs --checkpoint and "
    "$PRFNET_CHECKPOINT with URL#sha256= pins against a server on 127.0.0.1"
)


def _nothing_published() -> None:
    from prfnet.hub import list_checkpoints

    assert list_checkpoints() == []


#: doc command (one `&&` part, whitespace collapsed, comment removed) -> what runs instead
COMMANDS: dict[str, Sub | OptionsOnly | Skip] = {
    "pip install -e .": Skip("installs the package under test; the test checks it is installed", _installed),
    "pip install -e '.[dev]'": Skip("installs the dev extra; the test checks the extra names pytest, ruff", _dev_extra),
    "python -m pytest": Skip("the test suite itself (would recurse)", _suite_entry),
    "prfnet demo --out prfnet_demo": Sub(DEMO, DEMO_WHY, memo="prfnet_demo"),
    "prfnet view prfnet_demo": OptionsOnly(VIEW_SERVER),
    "prfnet view prfnet_demo --open": OptionsOnly(VIEW_SERVER),
    "prfnet compare big_ref.png a.png b.png --tile 768 --device cuda": Sub(
        "prfnet compare big_ref.png a.png b.png --tile 32 --device cpu",
        "no GPU here; 32 px tiles on the 64 px test images, so that tiling really runs",
    ),
    "prfnet rd --example --out rd_example -c prfnet_demo/model.safetensors -m prfnet,psnr,ms_ssim_rgb,ssimulacra2,"
    "cvvdp,flip": Sub(
        "prfnet rd --example --out rd_example -c model.safetensors -m prfnet,psnr,flip --bootstrap 100",
        "the workspace's tiny model instead of the demo's, PRFNet, PSNR and FLIP only (all six on 100 images take a "
        "minute)",
    ),
    "prfnet rd --csv rd.csv --metrics prfnet,psnr,ms_ssim_rgb,lpips --anchor jpeg --out rd --json": OptionsOnly(
        "needs a codec test set; the --example line above runs the same command on the example's own rd.csv"
    ),
    "prfnet rd --csv rd.csv --metrics prfnet,psnr,ms_ssim_rgb --anchor jpeg -c prfnet.safetensors --out OUT": (
        OptionsOnly("needs a codec test set; docs/rd.md's --example line runs the same scoring on its own rd.csv")
    ),
    "prfnet rd --decoded DECODED --originals ORIGINALS -m psnr,ms_ssim_rgb --no-bd-rate --out OUT": OptionsOnly(
        "needs folders of decoded images; tests/rd/test_run.py runs the folder layout"
    ),
    "prfnet rd --example --out rd-example --random-init --backbone test_resnet": Sub(
        "prfnet rd --example --out rd-example --random-init --backbone test_resnet --metrics prfnet,psnr "
        "--bootstrap 100",
        "PRFNet and PSNR only (MS-SSIM on the 80 images takes a minute)",
    ),
    "prfnet tune --example --match jpeg420:q85 --metric ssimulacra2 --out tune_example_s2": Sub(
        "prfnet tune --example --match jpeg420:q85 --metric ssimulacra2 --out tune_example_s2 --codecs webp "
        "--max-encodes 4 --bootstrap 100",
        "one codec and 4 encodes per photo (the documented run takes a minute)",
    ),
    "prfnet tune --example --match jpeg420:q85 --metric prfnet -c prfnet_demo/model.safetensors --out "
    "tune_example": Sub(
        "prfnet tune --example --match jpeg420:q85 --metric prfnet -c prfnet_demo/model.safetensors --out tune_example "
        "--codecs webp --max-encodes 4 --bootstrap 100",
        "the workspace's tiny model, one codec and 4 encodes per photo",
    ),
    "prfnet tune photos/ --codecs jpegxl,avif --target 80 --metric ssimulacra2 --out tuned": OptionsOnly(TUNE_PHOTOS),
    "prfnet tune photos/ --codecs jpegxl,avif --match jpeg420:q85 --metric prfnet -c prfnet.safetensors --out tuned": (
        OptionsOnly(TUNE_PHOTOS)
    ),
    "prfnet tune photo.png --codecs webp --target 0.05 --metric flip --out tuned-flip": OptionsOnly(TUNE_PHOTOS),
    "prfnet synth data/synth --refs 12": Sub("prfnet synth data/synth --refs 12 --size 64", "64 px images"),
    "prfnet synth data/synth": Sub("prfnet synth data/synth --refs 4 --size 64", "4 references of 64 px"),
    "prfnet synth data/codecs --kind codecs": Sub(
        "prfnet synth data/codecs --kind codecs --refs 1", "1 reference (each costs seconds of codec searches)"
    ),
    "prfnet train --config clic2022 --data /data/clic2022 --out runs/clic": Sub(
        f"prfnet train --config clic2022 --data tiny_clic --out runs/clic {SHRINK_CLIC}",
        "no CLIC 2022 data or SE-Res2Net50 training here: a 4-reference CLIC folder, test_resnet, 1 + 1 epochs",
    ),
    "prfnet train --config demo --data data/synth --out runs/demo": Sub(
        f"prfnet train --config demo --data data/synth --out runs/demo {SHRINK}",
        "1 + 1 epochs, 32 px crops of 64 px images",
    ),
    "prfnet ablate -c demo --data data/synth --out runs/ablation-demo --variants paper,concat,no_attention": Sub(
        "prfnet ablate -c demo --data data/synth --out runs/ablation-demo --variants paper,concat,no_attention "
        "--n-boot 200 --set steps.classification.epochs=1 --set steps.regression.epochs=0 --set data.crop=32",
        "1 epoch of step 1 only (3 variants: 3 trainings), 32 px crops of 64 px images, 200 bootstrap resamples",
    ),
    "prfnet ablate -c clic2022 --data /data/clic --out runs/ablation-clic --set "
    "data.val.path=/data/clic2022_valid/oracle.csv --seeds 0,1,2 --alt-backbone resnet50 --accelerator gpu "
    "--devices 1 --precision bf16-mixed": OptionsOnly("a GPU and 21 trainings (7 variants x 3 seeds) on CLIC 2022"),
    "prfnet ablate -c clic2022 --data /data/clic --out runs/ablation-clic --devices 4 --strategy ddp": OptionsOnly(
        MULTI_GPU
    ),
    "prfnet train -c clic2022 --data /data/clic --out runs/clic2022 --devices 4 --strategy ddp": OptionsOnly(MULTI_GPU),
    "srun prfnet train -c clic2022 --data /data/clic --out runs/clic2022 --devices 4 --num-nodes 2 --strategy ddp": (
        OptionsOnly(
            "a SLURM cluster of 2 nodes x 4 GPUs",
            "prfnet train -c clic2022 --data /data/clic --out runs/clic2022 --devices 4 --num-nodes 2 --strategy ddp",
        )
    ),
    "torchrun --nnodes=2 --nproc-per-node=4 --node-rank=$NODE_RANK --master-addr=$HEAD --master-port=29500 -m prfnet "
    "train -c clic2022 --data /data/clic --out runs/clic2022 --devices 4 --num-nodes 2 --strategy ddp": OptionsOnly(
        "torchrun on 2 nodes x 4 GPUs",
        "prfnet train -c clic2022 --data /data/clic --out runs/clic2022 --devices 4 --num-nodes 2 --strategy ddp",
    ),
    "MASTER_ADDR=$HEAD MASTER_PORT=29500 NODE_RANK=0 prfnet train -c clic2022 ... --devices 4 --num-nodes 2 "
    "--strategy ddp": OptionsOnly(
        "2 nodes x 4 GPUs; '...' stands for the options above",
        "prfnet train -c clic2022 --devices 4 --num-nodes 2 --strategy ddp",
    ),
    # docs/fetch.md, docs/training.md: downloads from the internet (tests/fetch fetches from a server on 127.0.0.1)
    # docs/reproduce.md: the fetched sets and the trained model stand in as the workspace's CLIC set and tiny model
    "prfnet eval clic --csv data/clic2021-valid/validation.csv --root data/clic2021-valid/images --oracle "
    "data/clic2021-valid/oracle.csv -c runs/clic2022/model.safetensors --out eval_valid": Sub(
        "prfnet eval clic --csv clic/validation.csv --root clic/images --oracle clic/oracle.csv -c model.safetensors "
        "--out eval_valid --metrics prfnet,psnr,ssim",
        REPRODUCE_WHY + "; PRFNet, PSNR and SSIM only",
    ),
    "prfnet eval clic --csv data/clic2022-test/test.csv --root data/clic2022-test/images -c "
    "runs/clic2022/model.safetensors --metrics prfnet --out submission": Sub(
        "prfnet eval clic --csv clic/validation.csv --root clic/images -c model.safetensors --metrics prfnet "
        "--out submission",
        REPRODUCE_WHY,
    ),
    "prfnet eval jnd --root data/bapps/jnd/val --metrics prfnet,psnr,ssim,lpips -c prfnet.safetensors": OptionsOnly(
        "needs the BAPPS JND set (downloaded); tests/evaluation/test_jnd.py evaluates a generated jnd/val folder"
    ),
    "prfnet fetch clic2021-test --to data --dry-run": Sub(
        "prfnet fetch clic2021-test --to data --dry-run --offline",
        "tests never reach the internet: the sizes are the catalog's, the servers are not asked (HEAD)",
    ),
    "prfnet fetch clic2021-test --to data": OptionsOnly("downloads about 11 GB (estimated) from the internet"),
    "prfnet fetch bapps-2afc-train bapps-2afc-val --to data": OptionsOnly("downloads 6.4 GB from the internet"),
    "prfnet train --config clic2022 --data data/clic2021-test --out runs/clic2022 --set "
    "data.val.path=/data/clic2022_valid/oracle.csv --set data.val.images=/data/clic2022_valid/images": Sub(
        f"prfnet train --config clic2022 --data tiny_clic --out runs/clic2022 {SHRINK_CLIC} --set "
        "data.val.path=../clic/oracle.csv --set data.val.images=../clic/images",
        "the workspace's tiny CLIC folder trains, its 256 px CLIC set (another folder) validates; test_resnet, 1 + 1 "
        "epochs",
    ),
    f'prfnet score ref.png a.png -c "{EXAMPLE_URL}#sha256={EXAMPLE_PIN}"': Sub(
        "prfnet score ref.png a.png -c model.safetensors", CHECKPOINT_URL_WHY
    ),
    f'export PRFNET_CHECKPOINT="{EXAMPLE_URL}#sha256={EXAMPLE_PIN}"': Sub(
        "export PRFNET_CHECKPOINT=model.safetensors", CHECKPOINT_URL_WHY
    ),
    "prfnet score ref.png a.png -c prfnet-clic2022": Skip(
        "no checkpoint is published yet; the check fails once one is, so that docs/checkpoints.md follows",
        _nothing_published,
    ),
}

#: Python line (stripped) -> the line run instead, with the reason
PYTHON_LINES: dict[str, tuple[str, str]] = {
    'config = load_train_config("demo", {"steps.regression.epochs": 0})': (
        'config = load_train_config("demo", {"steps.regression.epochs": 0, "steps.classification.epochs": 1, '
        '"data.crop": 32})',
        "1 epoch, 32 px crops of the 64 px images of the workspace's data/synth",
    ),
    f'model = PRFNet.from_pretrained("{EXAMPLE_URL}", sha256=pin)': (
        'model = PRFNet.from_pretrained("model.safetensors")',
        CHECKPOINT_URL_WHY,
    ),
}


def _check_batches(ns: dict) -> None:
    batch = ns["batch"]  # the last batch of the last epoch (the workspace's clic/ holds exactly 8 triplets)
    for key in ("ref", "a", "b"):
        assert batch[key].shape == (8, 3, 256, 256) and batch[key].min() >= 0 and batch[key].max() <= 1
    assert batch["p_a"].shape == batch["label"].shape == (8,)


#: Python line (stripped) whose comment states what the generic checks cannot read -> the check, after the block
PYTHON_CHECKS: dict[str, Callable[[dict], None]] = {
    'for batch in loader:          # batch["ref"|"a"|"b"]: (8, 3, 256, 256) in [0, 1]; batch["p_a"], '
    'batch["label"]: (8,)': _check_batches,
}


# -- the workspace ----------------------------------------------------------------------------------------------------


def _png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)


def _smooth(side: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side] / side
    p = 0.7 * seed
    return np.stack([0.5 + 0.4 * np.sin(3 * x + p), 0.3 + 0.5 * y, 0.5 + 0.3 * np.cos(4 * x * y + p)], -1)


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)


def _clic_set(root: Path, side: int, refs: int) -> None:
    """``images/``, ``validation.csv``, ``oracle.csv`` (one vote per triplet): 4 triplets per reference."""
    triplets, votes = [], []
    for r in range(refs):
        ref = _smooth(side, r)
        _png(root / "images" / f"r{r}.png", ref)
        for k, sigma in enumerate((0.02, 0.05, 0.1, 0.2)):
            _png(root / "images" / f"r{r}_d{k}.png", _noisy(ref, sigma, 10 * r + k))
        for i, j in ((0, 1), (2, 3), (0, 2), (1, 3)):
            triplets.append(f"r{r}.png,r{r}_d{i}.png,r{r}_d{j}.png")
            votes.append(f"r{r}.png,r{r}_d{i}.png,r{r}_d{j}.png,0")
    (root / "validation.csv").write_text("\n".join(triplets) + "\n")
    (root / "oracle.csv").write_text("\n".join(votes) + "\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("docs_workspace")
    torch.manual_seed(0)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    for name in ("model.safetensors", "prfnet.safetensors", "prfnet_demo/model.safetensors"):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(ws / name)

    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 64, 64, generator=g)
    save_image(ref, ws / "ref.png")
    save_image(ref, ws / "big_ref.png")
    noise = {"a": 0.05, "b": 0.3, "candidates/c1": 0.1, "candidates/c2": 0.02, "candidates/c3": 0.4}
    for name, sigma in noise.items():
        (ws / name).parent.mkdir(exist_ok=True)
        save_image((ref + sigma * torch.randn(ref.shape, generator=g)).clamp(0, 1), ws / f"{name}.png")
    for quality in (20, 40):
        Image.open(ws / "ref.png").save(ws / f"q{quality}.jpg", quality=quality)

    _clic_set(ws, 176, refs=1)  # validation.csv, oracle.csv, images/ (176 px: MS-SSIM's smallest side)
    _clic_set(ws / "clic", 256, refs=2)  # 8 triplets of 256 px (docs/data.md's DataLoader crops 256)
    (ws / "tiny_clic").mkdir()
    make_clic_dir(ws / "tiny_clic")  # stands for /data/clic2022
    assert main(["synth", str(ws / "data" / "synth"), "--refs", "4", "--size", "64"]) == 0

    for subset, judges in {"cnn": [0.2, 0.6], "traditional": [0.0]}.items():  # BAPPS 2afc/val
        folder = ws / "dataset" / "2afc" / "val" / subset
        for i, judge in enumerate(judges):
            img = _smooth(64, i)
            _png(folder / "ref" / f"{i:06d}.png", img)
            _png(folder / "p0" / f"{i:06d}.png", _noisy(img, 0.02, i))
            _png(folder / "p1" / f"{i:06d}.png", _noisy(img, 0.2, i))
            (folder / "judge").mkdir(exist_ok=True)
            np.save(folder / "judge" / f"{i:06d}.npy", np.array([judge]))

    kadid, mine = ["dist_img,ref_img,dmos,var"], ["ref,dist,score"]
    for r in range(2):
        img = _smooth(64, r)
        _png(ws / "kadid10k" / "images" / f"I0{r + 1}.png", img)
        for level, sigma in enumerate((0.01, 0.04, 0.1, 0.2), 1):
            _png(ws / "kadid10k" / "images" / f"I0{r + 1}_01_0{level}.png", _noisy(img, sigma, 10 * r + level))
            kadid.append(f"I0{r + 1}_01_0{level}.png,I0{r + 1}.png,{5 - level + 0.1 * r},0.5")
            mine.append(f"kadid10k/images/I0{r + 1}.png,kadid10k/images/I0{r + 1}_01_0{level}.png,{sigma}")
    (ws / "kadid10k" / "dmos.csv").write_text("\n".join(kadid) + "\n")
    (ws / "my_scores.csv").write_text("\n".join(mine) + "\n")

    demo = yaml.safe_load((ROOT / "src" / "prfnet" / "configs" / "demo.yaml").read_text())
    demo["steps"]["classification"]["epochs"] = demo["steps"]["regression"]["epochs"] = 1
    demo["data"]["crop"] = 32
    (ws / "demo_1epoch.yaml").write_text(yaml.safe_dump(demo))
    (tmp_path_factory.getbasetemp() / "no_baseline_weights").mkdir(exist_ok=True)
    return ws


@pytest.fixture()
def cwd(workspace, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the workspace as the working directory, with a clean environment for the examples."""
    here = tmp_path / "ws"
    shutil.copytree(workspace, here)
    monkeypatch.chdir(here)
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    # LPIPS/DISTS weights: never found, so that `available_metrics()` says what the docs show
    monkeypatch.setenv("PRFNET_BASELINE_WEIGHTS", str(workspace.parent / "no_baseline_weights"))
    monkeypatch.setenv("PRFNET_OFFLINE", "1")  # and not downloaded on first use
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return here


# -- checking documented results --------------------------------------------------------------------------------------

_SHAPE = re.compile(r"^\((\s*\w+\s*(?:,\s*\w+\s*)*,?)\)(?=$|[\s:;,])")
_LITERALS = (ast.Constant, ast.Set, ast.Dict, ast.List, ast.Tuple, ast.Call, ast.UnaryOp)


def shape_pattern(comment: str) -> list[str] | None:
    m = _SHAPE.match(comment)
    return [d.strip() for d in m.group(1).split(",") if d.strip()] if m else None


def value_pattern(comment: str) -> ast.expr | None:
    """The longest leading Python literal (or constructor call) of the comment's first `;` segment:
    ``True: higher = closer`` -> ``True``, ``{"a", "b", ...} of the best epoch`` -> the set."""
    text = re.sub(r",\s*\.\.\.\s*}", ", ...: ...}", comment.split(";")[0].strip())  # {"k": v, ...}: more keys
    cuts = {len(text)} | {m.start() for m in re.finditer(r":\s", text)}
    cuts |= {i + 1 for i, c in enumerate(text) if c in ")]}"}
    for cut in sorted(cuts, reverse=True):
        try:
            node = ast.parse(text[:cut].strip(), mode="eval").body
        except SyntaxError:
            continue
        return node if isinstance(node, _LITERALS) else None
    return None


def check_shape(dims: list[str], value, where: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        bound: dict[str, int] = {}
        shape = tuple(v.shape)
        assert len(shape) == len(dims), f"{where}: shape {shape}, documented ({', '.join(dims)})"
        for d, n in zip(dims, shape, strict=True):
            expected = int(d) if d.isdigit() else bound.setdefault(d, n)
            assert n == expected, f"{where}: shape {shape}, documented ({', '.join(dims)})"


def matches(pattern: ast.expr, value, ns: Mapping, keys_only: bool = False) -> bool:
    """``value`` has the documented form; ``...`` matches anything (as a dict key or set element: more keys);
    ``keys_only`` (example outputs of shell commands): only the structure and the keys are compared."""
    if isinstance(pattern, ast.Constant) and pattern.value is Ellipsis:
        return True
    if isinstance(pattern, ast.Set):
        names = {e.value for e in pattern.elts if isinstance(e, ast.Constant) and e.value is not Ellipsis}
        more = any(isinstance(e, ast.Constant) and e.value is Ellipsis for e in pattern.elts)
        got = set(value) if isinstance(value, (Mapping, set, frozenset)) else None
        return got is not None and (names <= got if more else names == got)
    if isinstance(pattern, ast.Dict):
        if not isinstance(value, Mapping):
            return False
        if not all(isinstance(k, ast.Constant) for k in pattern.keys):
            return False
        entries = {k.value: v for k, v in zip(pattern.keys, pattern.values, strict=True) if k.value is not Ellipsis}
        more = len(entries) < len(pattern.keys)
        if not (set(entries) <= set(value) if more else set(entries) == set(value)):
            return False
        return all(matches(v, value[k], ns, keys_only) for k, v in entries.items())
    if isinstance(pattern, (ast.List, ast.Tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        elts = list(pattern.elts)
        if len(elts) >= 2 and isinstance(elts[-1], ast.Constant) and elts[-1].value is Ellipsis:
            # [x, y, ...]: the first items documented, the further ones (keys_only) shaped like the last of them
            shown = elts[:-1]
            rest = [shown[-1]] * (len(value) - len(shown)) if keys_only else [elts[-1]] * (len(value) - len(shown))
            elts = shown + rest
        return len(elts) == len(value) and all(matches(p, v, ns, keys_only) for p, v in zip(elts, value, strict=True))
    if keys_only:
        return True
    if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str) and pattern.value.endswith("..."):
        return isinstance(value, str) and value.startswith(pattern.value[:-3])
    expected = eval(compile(ast.Expression(pattern), "<documented value>", "eval"), dict(ns))  # noqa: S307
    if isinstance(expected, float) or isinstance(value, float | torch.Tensor):
        return float(value) == pytest.approx(float(expected), abs=1e-6)
    return value == expected


# -- running Python blocks --------------------------------------------------------------------------------------------


def python_source(block: Block) -> tuple[str, list[str]]:
    """The block's source (line numbers kept: line k of the source is line k of the block) and the
    substitutions applied."""
    lines, used = [], []
    for _, text in block.lines:
        sub = PYTHON_LINES.get(text.strip())
        if sub is not None:
            used.append(text.strip())
            text = text[: len(text) - len(text.lstrip())] + sub[0]
        lines.append(text)
    return "\n".join(lines) + "\n", used


def instrument(source: str) -> tuple[ast.Module, dict[int, tuple]]:
    """Wrap each simple statement whose comment documents a result in a call of ``__doc_check__(line, value)``."""
    tree = ast.parse(source)
    comments = {
        tok.start[0]: tok.string[1:].strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    checks: dict[int, tuple] = {}

    def call(line: int, value: ast.expr) -> ast.Expr:
        return ast.Expr(ast.Call(ast.Name("__doc_check__", ast.Load()), [ast.Constant(line), value], []))

    def rewrite(body: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for stmt in body:
            for name in ("body", "orelse", "finalbody"):
                if isinstance(getattr(stmt, name, None), list):
                    setattr(stmt, name, rewrite(getattr(stmt, name)))
            comment = comments.get(stmt.lineno) if stmt.lineno == stmt.end_lineno else None
            dims = shape_pattern(comment) if comment else None
            if isinstance(stmt, ast.Assign) and dims:
                checks[stmt.lineno] = ("shape", dims, comment)
                target = ast.parse(ast.unparse(stmt.targets[0]), mode="eval").body
                out += [stmt, call(stmt.lineno, target)]
                continue
            if isinstance(stmt, ast.Expr) and comment:
                pattern = None if dims else value_pattern(comment)
                if dims or pattern is not None:
                    checks[stmt.lineno] = ("shape", dims, comment) if dims else ("value", pattern, comment)
                    out.append(call(stmt.lineno, stmt.value))
                    continue
            out.append(stmt)
        return out

    tree.body = rewrite(tree.body)
    return ast.fix_missing_locations(tree), checks


def run_python(block: Block) -> None:
    source, _ = python_source(block)
    tree, checks = instrument(source)
    ns: dict = {"__name__": "__docs_example__"}
    done = []

    def doc_check(line: int, value):
        kind, pattern, comment = checks[line]
        where = f"{block.doc}:{block.lines[line - 1][0]} (# {comment})"
        if kind == "shape":
            check_shape(pattern, value, where)
        else:
            assert matches(pattern, value, ns), f"{where}: got {value!r}"
            for extra in comment.split(";")[1:]:  # `; .key() == "..."`: a further claim about the same value
                extra = extra.strip()
                if extra.startswith("."):
                    assert eval("__value__" + extra, dict(ns) | {"__value__": value}), f"{where}: {extra}"  # noqa: S307
        done.append(line)
        return value

    ns["__doc_check__"] = doc_check
    try:
        exec(compile(tree, f"{block.doc}:{block.line}", "exec"), ns)  # noqa: S102
        assert sorted(done) == sorted(checks), f"{block.id}: documented results not reached: {set(checks) - set(done)}"
        for _, text in block.lines:
            if text.strip() in PYTHON_CHECKS:
                PYTHON_CHECKS[text.strip()](ns)
    finally:
        # release what the example holds now (docs/data.md's persistent DataLoader workers): collected later, inside
        # another example, their shutdown waited 4 x 5 s for workers forked from this multithreaded process
        ns.clear()
        gc.collect()


# -- running shell blocks ---------------------------------------------------------------------------------------------


def _expand(tokens: list[str], env: Mapping[str, str]) -> list[str]:
    out = []
    for token in tokens:
        token = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m.group(1) or m.group(2), ""), token)
        hits = sorted(glob.glob(token)) if any(c in token for c in "*?[") else []
        out += hits or [token]
    return out


def options(command: str) -> list[str]:
    return [t.split("=")[0] for t in shlex.split(command) if t.startswith("--")]


#: outputs of Sub(memo=...) commands already run in this session: command -> (snapshot folder, stdout, stderr)
_MEMO: dict[str, tuple[Path, str, str]] = {}


@dataclass
class Shell:
    """Runs one block's commands in the working directory; ``env`` holds what ``export`` set."""

    capsys: pytest.CaptureFixture
    monkeypatch: pytest.MonkeyPatch
    memo_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def prfnet(self, args: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with self.monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            code = main(args)
        out, err = self.capsys.readouterr()
        return code, out, err

    def part(self, part: str, where: str) -> tuple[str, str, bool]:
        """Run one `&&` part of a documented command; returns (stdout, stderr, substituted)."""
        action = COMMANDS.get(part)
        if isinstance(action, Skip):
            if action.check is not None:
                action.check()
            return "", "", True
        if isinstance(action, OptionsOnly):
            command = action.command or part
            documented = part[re.search(r"(?<![\w/.-])prfnet\s+[a-z]", part).start() :]  # after a launcher, if any
            assert set(options(command)) == set(options(documented)), f"{where}: the checked command drops options"
            if " -m prfnet " in part:  # `torchrun ... -m prfnet train ...` runs the package's __main__
                assert importlib.util.find_spec("prfnet.__main__") is not None
            tokens = shlex.split(command)
            assert tokens[0] == "prfnet", command
            code, out, err = self.prfnet([*tokens[1:], "--help"], {})
            assert code == 0 and "No such option" not in err, f"{where}: {command}\n{err}"
            return out, err, True
        if isinstance(action, Sub):
            missing = set(options(part)) - set(options(action.command))
            assert not missing, f"{where}: the runnable equivalent drops {missing}"
            if action.memo and action.command in _MEMO:
                snapshot, out, err = _MEMO[action.command]
                shutil.rmtree(action.memo, ignore_errors=True)
                shutil.copytree(snapshot, action.memo)
                return out, err, True
            # a fresh machine has no output folder yet (the workspace's stand-in model for later blocks is not the
            # command's: prfnet refuses to replace a file it did not write)
            shutil.rmtree(action.memo, ignore_errors=True)
            part = action.command
        tokens = shlex.split(part)
        if tokens[0] == "export":
            for assignment in tokens[1:]:
                name, _, value = assignment.partition("=")
                self.env[name] = _expand([value], self.env)[0]
            return "", "", False
        prefix = {}
        while tokens and re.match(r"^\w+=", tokens[0]):
            name, _, value = tokens.pop(0).partition("=")
            prefix[name] = _expand([value], self.env)[0]
        tokens = _expand(tokens, self.env)
        if tokens[0] == "prfnet":
            code, out, err = self.prfnet(tokens[1:], self.env | prefix)
        else:  # anything else: a real shell, with this interpreter's scripts first on PATH
            path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
            env = os.environ | self.env | {"PATH": path}
            done = subprocess.run(["bash", "-c", part], capture_output=True, text=True, timeout=120, env=env)
            code, out, err = done.returncode, done.stdout, done.stderr
        assert code == 0, f"{where}: `{part}` exited {code}\n{err[-3000:]}"
        if "--json" in tokens:
            json.loads(out)  # exactly one JSON document on stdout
        if isinstance(action, Sub) and action.memo:
            snapshot = self.memo_dir / str(len(_MEMO))
            shutil.copytree(action.memo, snapshot)
            _MEMO[action.command] = (snapshot, out, err)
        return out, err, action is not None

    def block(self, block: Block) -> list[str]:
        ran = []
        for command in shell_commands(block):
            where = f"{block.doc}:{command.line}"
            out = err = ""
            substituted = False
            for part in command_parts(command):
                out, err, sub = self.part(part, where)
                substituted |= sub
                ran.append(part)
            if command.comment and command.comment[:1] in "{[":
                pattern = value_pattern(command.comment)
                assert pattern is not None, f"{where}: unreadable output comment {command.comment!r}"
                assert matches(pattern, json.loads(out), {}, keys_only=True), f"{where}: {out}"
            printed = " ".join((out + " " + err).split())
            for expected in command.output:
                expected = " ".join(expected.split())
                if substituted:  # other data, same sentence: the numbers may differ
                    regex = r"\d+(?:\.\d+)?".join(re.escape(s) for s in re.split(r"\d+(?:\.\d+)?", expected))
                    assert re.search(regex, printed), f"{where}: not printed (numbers aside): {expected}\n{printed}"
                else:
                    assert expected in printed, f"{where}: not printed: {expected}\n{printed}"
        return ran


# -- the tests --------------------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")  # docs/data.md asks for 4
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.id for b in RUN_BLOCKS])
def test_example(block: Block, cwd, capsys, monkeypatch, tmp_path_factory):
    if block.lang in PYTHON:
        run_python(block)
    else:
        memo_dir = tmp_path_factory.getbasetemp() / "docs_memo"
        memo_dir.mkdir(exist_ok=True)
        assert Shell(capsys, monkeypatch, memo_dir).block(block)


def test_every_code_block_is_run_or_declared_not_code():
    assert len(RUN_BLOCKS) >= 15  # the extraction finds the examples (15 blocks when this test was written)
    for b in BLOCKS:
        assert b.lang in PYTHON | SHELL | NOT_CODE, f"{b.id}: unknown code block language {b.lang!r}"
        if b.lang in NOT_CODE:  # a shell or Python example fenced as text/untagged would escape this test
            for number, text in b.lines:
                assert not re.match(r"^\s*(\$ )?prfnet \w", text), f"{b.doc}:{number}: a command in a `{b.lang}` block"
                assert not re.match(r"^\s*(from prfnet|import prfnet)", text), f"{b.doc}:{number}: Python in a block"


def test_substitution_tables_have_no_stale_entries():
    parts = {p for b in RUN_BLOCKS if b.lang in SHELL for c in shell_commands(b) for p in command_parts(c)}
    stale = sorted(set(COMMANDS) - parts)
    assert not stale, f"COMMANDS entries that no longer occur in the docs (update the table): {stale}"
    py_lines = {text.strip() for b in RUN_BLOCKS if b.lang in PYTHON for _, text in b.lines}
    stale = sorted((set(PYTHON_LINES) | set(PYTHON_CHECKS)) - py_lines)
    assert not stale, f"PYTHON_LINES/PYTHON_CHECKS entries that no longer occur in the docs: {stale}"
    for key, action in COMMANDS.items():
        if isinstance(action, Sub):
            assert set(options(key)) <= set(options(action.command)), key
