"""Bad input, as tables: every row reproduces a reported robustness problem (docs/design.md, item 9).

CLI rows: exit code 2, nothing on stdout, exactly one stderr line, starting with "error:", no traceback, short.
API rows: a typed prfnet exception (``prfnet.errors``). Grow the tables when a new bad input turns up: add the
file to the ``corpus`` fixture and one row to ``CLI_CASES`` or ``API_CASES``.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prfnet import (
    CheckpointError,
    ConfigError,
    DataError,
    ImageReadError,
    InputError,
    ModelOutputError,
    OutputError,
    PRFNet,
    load_image,
    save_image,
)
from prfnet.cli import main

TINY = "test_resnet"
MAX_ERROR_CHARS = 600


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


def _rewrite_checkpoint(src: Path, dst: Path, config_changes: dict | None = None, **meta_changes) -> Path:
    """A copy of the checkpoint ``src`` with edited metadata (format version, config keys; None deletes)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    config = json.loads(meta["config"])
    for key, value in (config_changes or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    meta.update(config=json.dumps(config), **meta_changes)
    save_file(state, str(dst), metadata=meta)
    return dst


def _csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """Every bad (and good) file the tables refer to, by name."""
    d = tmp_path_factory.mktemp("bad_input")
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 64, 64, generator=g)
    c: dict[str, str] = {"dir": str(d), "out": str(d / "out")}
    for name, amount in (("ref", 0.0), ("a", 0.05), ("b", 0.3), ("c", 0.5)):
        c[name] = str(d / f"{name}.png")
        save_image((ref + amount * torch.randn(ref.shape, generator=g)).clamp(0, 1), c[name])
    for name in ("t_ref", "t_a", "t_b"):  # below PRFNet's 32 px
        c[name] = str(d / f"{name}.png")
        save_image(torch.rand(1, 3, 16, 16, generator=g), c[name])
    (d / "folder").mkdir()
    c["folder"] = str(d / "folder")
    c["bomb"] = str(d / "bomb.png")
    Path(c["bomb"]).write_bytes(_png_header_only(100_000, 100_000))

    torch.manual_seed(0)
    model = PRFNet(TINY)
    with torch.no_grad():
        model.head.weight.normal_()
    c["ckpt"] = str(model.save_pretrained(d / "tiny.safetensors"))
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))  # what a diverged run leaves behind
    c["nan_ckpt"] = str(model.save_pretrained(d / "nan.safetensors"))
    c["future_ckpt"] = str(_rewrite_checkpoint(Path(c["ckpt"]), d / "future.safetensors", format_version="3"))
    c["v1_ckpt"] = str(
        _rewrite_checkpoint(
            Path(c["ckpt"]), d / "v1.safetensors", {"se_gate": None, "backbone_norm": None}, format_version="1"
        )
    )
    c["mismatch_ckpt"] = str(_rewrite_checkpoint(Path(c["ckpt"]), d / "mismatch.safetensors", {"backbone": "resnet18"}))

    c["clic_csv"] = _csv(d / "val.csv", ["ref.png,a.png,b.png", "ref.png,b.png,c.png"])
    c["tiny_csv"] = _csv(d / "tiny.csv", ["t_ref.png,t_a.png,t_b.png", "t_ref.png,t_b.png,t_a.png"])
    c["dir_csv"] = _csv(d / "dir.csv", ["ref.png,folder,b.png"])
    c["bomb_csv"] = _csv(d / "bomb.csv", ["bomb.png,a.png,b.png"])
    # ("ref.png", "a,b.png", "c.png") and ("ref.png,a", "b.png", "c.png") join to the same "O,A,B" string
    pixels = (ref[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for name in ("a,b.png", "ref.png,a"):
        Image.fromarray(pixels).save(d / name, format="PNG")
    rows = ['"ref.png","a,b.png","c.png"', '"ref.png,a","b.png","c.png"']
    c["comma_csv"] = _csv(d / "comma_val.csv", rows)
    c["comma_oracle"] = _csv(d / "comma_oracle.csv", [f"{r},0" for r in rows])
    c["comma_kinds"] = _csv(d / "comma_kinds.csv", [f"{rows[0]},easy", f"{rows[1]},hard"])

    bapps = d / "bapps" / "val" / "cnn"
    for sub in ("ref", "p0", "p1", "judge"):
        (bapps / sub).mkdir(parents=True)
    for sub, src in (("ref", "ref"), ("p0", "a"), ("p1", "b")):
        (bapps / sub / "x.png").write_bytes(Path(c[src]).read_bytes())
    np.save(bapps / "judge" / "x.npy", np.array([0.25]))
    c["bapps"] = str(bapps)

    mos_rows = ["ref.png,a.png,4.5", "ref.png,b.png,3.0", "ref.png,c.png,1.5", "ref.png,ref.png,5.0"]
    for n in (2, 3, 4):
        c[f"mos{n}"] = _csv(d / f"mos{n}.csv", ["ref,dist,score", *mos_rows[:n]])
    _issue_17_files(d, c)
    return c


def _issue_17_files(d: Path, c: dict[str, str]) -> None:
    """RD CSVs, TID2013 and PIPAL labels with decimal commas, score stores that are not: the second table's files."""
    from tests.cli.test_bad_input_runs import _mos_folders, _rd_inputs, _stores

    _rd_inputs(d, c)
    _mos_folders(d, c)
    _stores(d, c)
    c["ref_below"] = str(Path(c["ref"]) / "scores.sqlite")  # a store below a file


# -- the CLI table ----------------------------------------------------------------------------------------------

EVAL_CLIC = "eval clic --csv {clic_csv} --root {dir} --no-progress -o {out}/clic"
CLI_CASES = [
    # 1. a diverged checkpoint answers confidently, in invalid JSON
    ("nan-compare", "compare {ref} {a} {b} -c {nan_ckpt} --json", ["nan.safetensors", "not finite"]),
    ("nan-score", "score {ref} {a} {b} -c {nan_ckpt} --json", ["nan.safetensors", "not finite"]),
    ("nan-rank", "rank {ref} {a} {b} -c {nan_ckpt} --json", ["nan.safetensors", "not finite"]),
    ("nan-eval-clic", EVAL_CLIC + " --metrics prfnet,psnr -c {nan_ckpt} --json", ["nan.safetensors", "not finite"]),
    (
        "nan-eval-bapps",
        "eval bapps --root {bapps} --metrics prfnet -c {nan_ckpt} --no-progress -o {out}/bapps --json",
        ["nan.safetensors", "not finite"],
    ),
    (
        "nan-eval-mos",
        "eval mos --dataset csv --csv {mos4} --metrics prfnet -c {nan_ckpt} --no-progress -o {out}/mos --json",
        ["nan.safetensors", "not finite"],
    ),
    # 3. decompression bombs and the pixel limit
    ("bomb-compare", "compare {bomb} {a} {b} -c {ckpt}", ["bomb.png", "10,000,000,000 pixels", "--max-pixels"]),
    ("bomb-score", "score {ref} {bomb} -c {ckpt}", ["bomb.png", "--max-pixels"]),
    (
        "bomb-eval-clic",
        "eval clic --csv {bomb_csv} --root {dir} --metrics psnr --no-progress -o {out}/bomb",
        ["bomb.png", "--max-pixels", "bomb.csv"],
    ),
    ("max-pixels-exceeded", "score {ref} {a} -c {ckpt} --max-pixels 1000", ["ref.png", "4,096 pixels", "1,000"]),
    ("max-pixels-garbage", "score {ref} {a} -c {ckpt} --max-pixels lots", ["--max-pixels", "'lots'"]),
    # 4. too few MOS items for any correlation
    (
        "mos-2-rows",
        "eval mos --dataset csv --csv {mos2} --metrics psnr --no-progress -o {out}/mos2",
        ["mos2.csv", "2 MOS items", "at least 3"],
    ),
    # 5. names with commas collide once joined into "O,A,B" keys
    (
        "clic-commas-with-kinds",
        "eval clic --csv {comma_csv} --root {dir} --oracle {comma_oracle} --kinds {comma_kinds} --metrics psnr "
        "--no-progress -o {out}/comma",
        ["comma_val.csv, line 1", "'a,b.png'", "contains a comma"],
    ),
    # 6. devices torch cannot use here
    ("device-mps", "compare {ref} {a} {b} -c {ckpt} --device mps", ["'mps'", "cannot be used here"]),
    ("device-bogus", "score {ref} {a} -c {ckpt} --device tpu9", ["'tpu9'"]),
    ("device-meta", "score {ref} {a} -c {ckpt} --device meta", ["'meta'"]),
    ("device-eval-baselines", EVAL_CLIC + " --metrics psnr --device mps", ["'mps'"]),
    # 7. smaller ones
    ("future-format", "compare {ref} {a} {b} -c {future_ckpt}", ["future.safetensors", "'3'", "upgrade prfnet"]),
    ("architecture-mismatch", "compare {ref} {a} {b} -c {mismatch_ckpt}", ["mismatch.safetensors", "do not match"]),
    ("tile-too-small", "compare {ref} {a} {b} -c {ckpt} --tile 8", ["--tile must be >= 32, got 8"]),
    ("tile-too-small-eval", EVAL_CLIC + " --metrics psnr --tile 8", ["--tile must be >= 32, got 8"]),
    ("tile-stride-without-tile", "compare {ref} {a} {b} -c {ckpt} --tile-stride 16", ["--tile-stride 16 needs --tile"]),
    (
        "tile-stride-without-tile-eval",
        EVAL_CLIC + " --metrics psnr --tile-stride 16",
        ["--tile-stride 16 needs --tile"],
    ),
    ("tile-stride-too-long", "score {ref} {a} -c {ckpt} --tile 32 --tile-stride 40", ["--tile-stride (40)", "--tile"]),
    ("directory-as-image", "compare {folder} {a} {b} -c {ckpt}", ["folder", "is a directory"]),
    ("directory-as-checkpoint", "compare {ref} {a} {b} -c {folder}", ["folder", "is a directory"]),
    ("directory-in-clic-csv", "eval clic --csv {dir_csv} --root {dir} --metrics psnr", ["folder", "is a directory"]),
    ("directory-as-clic-csv", "eval clic --csv {folder} --root {dir} --metrics psnr", ["folder", "is a directory"]),
    # 8. prfnet tune
    ("tune-unknown-codec", "tune {ref} --codecs heic -m psnr --target 30 -o {out}/t", ["'heic'", "known:"]),
    ("tune-unknown-metric", "tune {ref} -m sharpness --target 30 -o {out}/t", ["'sharpness'"]),
    ("tune-two-metrics", "tune {ref} -m psnr,ssim --target 30 -o {out}/t", ["one metric", "psnr, ssim"]),
    ("tune-two-targets", "tune {ref} -m psnr --target 30 --match jpeg420:q85 -o {out}/t", ["exactly one target"]),
    ("tune-no-target", "tune {ref} -m psnr -o {out}/t", ["exactly one target"]),
    ("tune-bad-match", "tune {ref} -m psnr --match jpeg420-85 -o {out}/t", ["CODEC:SETTING", "'jpeg420-85'"]),
    ("tune-match-range", "tune {ref} -m psnr --match webp:q101 -o {out}/t", ["webp quality", "[0, 100]"]),
    ("tune-missing-image", "tune {dir}/nope.png -m psnr --target 30 -o {out}/t", ["nope.png", "not found"]),
    ("tune-too-small", "tune {ref} -m ms_ssim --target 0.9 -o {out}/t", ["ref.png", "176"]),
    ("tune-images-and-example", "tune {ref} --example -m psnr --target 30 -o {out}/t", ["--example"]),
    ("tune-no-checkpoint", "tune {ref} --match jpeg420:q85 -o {out}/t", ["checkpoint"]),
    (
        "tune-too-large-for-webp",
        "tune {bomb} --codecs webp -m psnr --target 30 --max-pixels 0 -o {out}/t",
        ["bomb.png", "100000x100000", "16383 px"],
    ),  # fmt: skip
    ("cvvdp-unknown-display", "tune {ref} -m cvvdp:cinema --target 9 -o {out}/t", ["'cinema'", "standard_fhd"]),
    ("option-on-plain-metric", "tune {ref} -m psnr:fast --target 30 -o {out}/t", ["'psnr'", "takes no option"]),
    # 9. prfnet fetch (never the network: an unknown name and a missing --to are refused first, --offline asks none)
    ("fetch-unknown-dataset", "fetch clic2099 --to {out}/fetch", ["'clic2099'", "known:", "clic2021-test"]),
    ("fetch-no-to", "fetch clic2021-valid", ["--to DIR is required"]),
    (
        "fetch-offline",
        "fetch clic2021-valid --to {out}/fetch --offline",
        ["not downloaded, offline", "clic_2021_perceptual_valid.zip"],
    ),
]


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("command", "expected"), [pytest.param(c, e, id=i) for i, c, e in CLI_CASES])
def test_cli_bad_input_is_one_error_line_and_exit_2(capsys, corpus, command, expected):
    argv = [part.format(**corpus) for part in command.split()]
    code, out, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert out == ""
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert len(lines[0]) < MAX_ERROR_CHARS, f"{len(lines[0])} characters"
    for fragment in expected:
        assert fragment in lines[0]


def test_blamed_option_not_checkpoint(capsys, corpus):
    """--tile 8 and --tile-stride without --tile used to be reported as a bad checkpoint config."""
    for extra in (["--tile", "8"], ["--tile-stride", "16"]):
        _, _, err = run_cli(capsys, ["score", corpus["ref"], corpus["a"], "-c", corpus["ckpt"], *extra])
        assert "config does not describe" not in err and "tiny.safetensors" not in err


# -- the API table ----------------------------------------------------------------------------------------------


def _nan_model(c):
    return PRFNet.from_pretrained(c["nan_ckpt"])


def _api_compare_nan(c):
    from prfnet.api import compare_files

    compare_files(_nan_model(c), c["ref"], c["a"], c["b"])


def _api_score_nan(c):
    from prfnet.api import score_files

    score_files(_nan_model(c), c["ref"], [c["a"], c["b"]])


def _api_metric_nan(c):
    from prfnet.scoring.metrics import PRFNetMetric

    PRFNetMetric(_nan_model(c))(load_image(c["ref"]), load_image(c["a"]))


def _api_evaluate_clic_nan(c):
    from prfnet.evaluation import evaluate_clic

    evaluate_clic(c["clic_csv"], c["dir"], metrics=["prfnet"], model=_nan_model(c), progress=False)


def _api_evaluate_mos_two(c):
    from prfnet.evaluation import evaluate_mos

    evaluate_mos("csv", csv=c["mos2"], metrics=["psnr"], progress=False)


def _api_kinds_comma(c):
    from prfnet.data.clic import read_kinds

    read_kinds(c["comma_kinds"])


def _api_triplets_comma(c):
    from prfnet.data import read_clic_triplets

    read_clic_triplets(c["comma_csv"])


def _api_write_comma(c):
    from prfnet.data import Triplet, write_clic_csv

    write_clic_csv(Path(c["out"]) / "sub.csv", [(Triplet("r.png", "a,b.png", "c.png"), 0)])


def _api_device(name):
    def call(c):
        from prfnet.api import resolve_device

        resolve_device(name)

    return call


def _api_load_model_tile(c):
    from prfnet.api import load_model

    load_model(c["ckpt"], tile_size=8)


def _model(c) -> PRFNet:
    return PRFNet.from_pretrained(c["ckpt"])


def _image(value: float | None = None, channels: int = 3, size: tuple[int, int] = (64, 64)) -> torch.Tensor:
    """A (1, channels, *size) image, every pixel ``value`` (or noise of seed 0)."""
    if value is None:
        return torch.rand(1, channels, *size, generator=torch.Generator().manual_seed(0))
    return torch.full((1, channels, *size), value)


def _api_loss(dist: torch.Tensor, ref: torch.Tensor | None = None, reference: bool = True):
    def call(c):
        from prfnet import PRFNetLoss

        PRFNetLoss(_model(c))(dist, (ref if ref is not None else _image()) if reference else None)

    return call


def _api_store(key: str):
    def call(c):
        from prfnet.store import ScoreStore

        with ScoreStore(c[key]) as store:
            store.count()

    return call


def _api_export(model, what: str = "score"):
    def call(c):
        pytest.importorskip("onnx")
        from prfnet.model.export import export_onnx

        export_onnx(model(c), Path(c["dir"]) / "x.onnx", what)

    return call


def _api_reader(name: str, key: str):
    def call(c):
        import prfnet.data
        import prfnet.rd

        reader = getattr(prfnet.rd, name, None) or getattr(prfnet.data, name)
        reader(c[key])

    return call


def _api_pyiqa(dist_key: str | None, ref_key: str | None):
    def call(c):
        from prfnet.integrations.pyiqa import PyIQAMetric

        metric = PyIQAMetric(_model(c))
        metric(c.get(dist_key, dist_key), c.get(ref_key) if ref_key else None)

    return call


def _api_distance(*args, **kwargs):
    def call(c):
        from prfnet.integrations.torchmetrics import PRFNetDistance

        PRFNetDistance(_model(c)).update(*args, **kwargs)

    return call


def _api_frozen(model):
    def call(c):
        from prfnet.integrations._common import frozen_model

        frozen_model(model if model is None else Path(c["dir"]) / model)

    return call


def _api_synth_codecs(**kwargs):
    def call(c):
        from prfnet.synth.codec_set import synthesize_codec_clic

        synthesize_codec_clic(Path(c["dir"]) / "codec_set", **{"refs": 1, "size": 256, **kwargs})

    return call


def _api_encode(image: np.ndarray, codec: str = "jpeg420", bpp: float | None = None):
    def call(c):
        from prfnet.synth.codecs import encode, encode_at_bpp

        if bpp is None:
            encode(image, codec, 50)
        else:
            encode_at_bpp(image, codec, bpp)

    return call


def _api_maps(a: torch.Tensor):
    def call(c):
        _model(c).compare_maps(_image(), a, _image(0.5))

    return call


def _api_rd_metrics(c):
    from prfnet.rd.run import metric_names

    metric_names("psnr,foo")


def _tiled(c) -> PRFNet:
    return PRFNet.from_pretrained(c["ckpt"], tile_size=32)


API_CASES = [
    ("compare-files-nan", _api_compare_nan, ModelOutputError, "nan.safetensors"),
    ("score-files-nan", _api_score_nan, ModelOutputError, "nan.safetensors"),
    ("prfnet-metric-nan", _api_metric_nan, ModelOutputError, "nan.safetensors"),
    ("evaluate-clic-nan", _api_evaluate_clic_nan, ModelOutputError, "nan.safetensors"),
    ("load-image-bomb", lambda c: load_image(c["bomb"]), ImageReadError, "10,000,000,000 pixels"),
    ("load-image-max-pixels", lambda c: load_image(c["ref"], max_pixels=100), ImageReadError, "max_pixels"),
    ("load-image-directory", lambda c: load_image(c["folder"]), ImageReadError, "is a directory"),
    ("evaluate-mos-2-rows", _api_evaluate_mos_two, DataError, "at least 3"),
    ("read-kinds-comma", _api_kinds_comma, DataError, "contains a comma"),
    ("read-clic-triplets-comma", _api_triplets_comma, DataError, "contains a comma"),
    ("write-clic-csv-comma", _api_write_comma, DataError, "contains a comma"),
    ("device-mps", _api_device("mps"), InputError, "mps"),
    ("device-meta", _api_device("meta"), InputError, "meta"),
    ("device-cuda-index", _api_device("cuda:63"), InputError, "cuda:63"),
    ("checkpoint-future", lambda c: PRFNet.from_pretrained(c["future_ckpt"]), CheckpointError, "upgrade prfnet"),
    ("checkpoint-mismatch", lambda c: PRFNet.from_pretrained(c["mismatch_ckpt"]), CheckpointError, "do not match"),
    ("checkpoint-directory", lambda c: PRFNet.from_pretrained(c["folder"]), CheckpointError, "is a directory"),
    ("load-model-tile-too-small", _api_load_model_tile, ConfigError, "tile_size must be >= 32"),
    # -- issue 17 ----------------------------------------------------------------------------------------------------
    # 2. rows with more fields than their header, decimal commas
    (
        "read-rd-csv-decimal-comma",
        _api_reader("read_rd_csv", "rd_comma"),
        DataError,
        "line 2: 7 fields, but the header (line 1) has 6: codec,image,rate_point,decoded_path,original_path,bpp; a "
        "decimal comma (0,75) splits a number in two",
    ),
    ("read-rd-csv-fewer-fields", _api_reader("read_rd_csv", "rd_short"), DataError, "rd_short.csv, line 2: 5 fields"),
    ("read-tid2013-decimal-comma", _api_reader("read_tid2013", "tid2013"), DataError, "'5,51429'; write 0.75"),
    ("read-pipal-three-fields", _api_reader("read_pipal", "pipal"), DataError, "expected 2 fields <distorted name>"),
    # 4. export refuses non-finite weights (no graph written: the snapshot)
    ("export-onnx-nan-weights", _api_export(_nan_model), CheckpointError, "hold NaN or infinite values"),
    # 8. PRFNetLoss checks its values like every other entry point
    ("loss-nan-image", _api_loss(_image(float("nan"))), InputError, "NaN or infinite"),
    ("loss-inf-image", _api_loss(_image(float("inf"))), InputError, "NaN or infinite"),
    # -- APIs added since the tables were written -------------------------------------------------------------------
    # the score store
    ("store-text-file", _api_store("text_store"), DataError, "not an SQLite database"),
    ("store-folder", _api_store("folder_store"), DataError, "is a folder, not a score store file"),
    ("store-damaged", _api_store("damaged_store"), DataError, "damaged"),
    ("store-foreign-database", _api_store("foreign_store"), DataError, "not a prfnet score store"),
    ("store-below-a-file", _api_store("ref_below"), OutputError, "cannot create its folder"),
    # rd and export
    ("rd-unknown-metric", _api_rd_metrics, ConfigError, "unknown metric 'foo'"),
    ("export-tiled-model", _api_export(_tiled), ConfigError, "whole images"),
    ("export-what-bogus", _api_export(_model, "bogus"), ConfigError, "'bogus'"),
    # heatmaps (score maps)
    ("maps-size-mismatch", _api_maps(_image(size=(80, 64))), InputError, "same height and width"),
    ("maps-one-channel", _api_maps(_image(channels=1)), InputError, "RGB channels"),
    ("maps-nan-image", _api_maps(_image(float("nan"))), InputError, "NaN or infinite"),
    # synth codecs (nothing written: the snapshot)
    ("synth-codecs-size-100", _api_synth_codecs(size=100), ConfigError, "size must be an integer >= 256"),
    ("synth-codecs-refs-0", _api_synth_codecs(refs=0), ConfigError, "refs must be an integer >= 1"),
    ("synth-codecs-same-targets", _api_synth_codecs(targets_bpp=(0.5, 0.5)), ConfigError, "must be distinct"),
    ("synth-unknown-codec", _api_encode(np.zeros((32, 32, 3), np.uint8), "jpeg"), ConfigError, "unknown codec 'jpeg'"),
    ("synth-encode-float-image", _api_encode(np.zeros((32, 32, 3), np.float32)), InputError, "expected a uint8"),
    # integrations: pyiqa, torchmetrics, the loss, the model they share
    ("pyiqa-missing-file", _api_pyiqa("nosuch.png", "ref"), ImageReadError, "nosuch.png"),
    ("pyiqa-no-reference", _api_pyiqa("a", None), InputError, "full-reference metric"),
    ("distance-size-mismatch", _api_distance(_image(size=(80, 64)), _image()), InputError, "same height and width"),
    ("distance-given-twice", _api_distance(_image(), _image(), dist=_image()), InputError, "once"),
    ("distance-no-reference", _api_distance(_image()), InputError, "needs the distorted images"),
    ("loss-one-channel", _api_loss(_image(channels=1)), InputError, "(N, 3, H, W)"),
    ("loss-size-mismatch", _api_loss(_image(size=(80, 64))), InputError, "differs from the reference's"),
    (
        "loss-batch-mismatch",
        _api_loss(_image().repeat(3, 1, 1, 1), _image().repeat(2, 1, 1, 1)),
        InputError,
        "batch sizes differ",
    ),
    ("loss-no-reference", _api_loss(_image(), reference=False), InputError, "no reference"),
    ("frozen-model-without-checkpoint", _api_frozen(None), CheckpointError, "$PRFNET_CHECKPOINT"),
    ("frozen-model-missing-checkpoint", _api_frozen("none.safetensors"), CheckpointError, "not found"),
]


@pytest.mark.parametrize(("call", "error", "match"), [pytest.param(f, e, m, id=i) for i, f, e, m in API_CASES])
def test_api_bad_input_raises_a_typed_error(corpus, monkeypatch, call, error, match):
    from tests.cli.test_bad_input_runs import _snapshot

    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    before = _snapshot(Path(corpus["dir"]))
    with pytest.raises(error) as info:
        call(corpus)
    message = str(info.value)
    assert match in message
    assert "\n" not in message and len(message) < MAX_ERROR_CHARS
    assert _snapshot(Path(corpus["dir"])) == before  # nothing written, nothing changed, no side files (-wal, .tmp)


# -- cases that are not errors ----------------------------------------------------------------------------------


def _strict(text: str):
    """json.loads that refuses NaN / Infinity (strict JSON)."""

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_mos_with_three_items_reports_rank_correlations_and_no_fitted_plcc(capsys, corpus):
    out_dir = Path(corpus["out"]) / "mos3"
    argv = ["eval", "mos", "--dataset", "csv", "--csv", corpus["mos3"], "--metrics", "psnr,ssim"]
    code, out, err = run_cli(capsys, [*argv, "--no-progress", "-o", str(out_dir), "--json"])
    assert code == 0, err
    results = _strict(out)
    assert _strict((out_dir / "results.json").read_text()) == results
    for name in ("psnr", "ssim"):
        entry = results[name]
        assert entry["n"] == 3 and isinstance(entry["srcc"], float) and isinstance(entry["krcc"], float)
        assert entry["plcc"] is None and entry["fit"] is None
        assert "at least 4 points, got 3" in entry["undefined"]["plcc"]
    code, out, err = run_cli(capsys, [*argv, "--no-progress", "-o", str(out_dir)])  # the table says why too
    assert code == 0 and "plcc: n/a" in out


def test_undefined_correlations_are_null_with_a_reason():
    from prfnet.stats.correlation import correlations

    constant = correlations([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert "constant" in constant["undefined"]["srcc"]
    assert np.isnan(constant["srcc"]) and np.isnan(constant["plcc"])
    excluded = correlations([1.0, 2.0, float("inf"), 3.0], [1.0, 2.0, 3.0, 4.0])
    assert excluded["n"] == 3 and excluded["n_excluded"] == 1 and np.isfinite(excluded["srcc"])
    assert "1 non-finite" in excluded["undefined"]["plcc"]


def test_strict_json_everywhere(tmp_path):
    from prfnet.ioutil import write_json as write_results
    from prfnet.stats.correlation import correlations

    path = write_results(tmp_path / "r.json", {"m": correlations([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])})
    assert _strict(path.read_text())["m"]["srcc"] is None


def test_tiny_images_give_the_right_reason_per_metric(capsys, corpus):
    """PSNR and SSIM work on 16 px images; PRFNet is unavailable, and its reason names a file and the limit."""
    argv = ["eval", "clic", "--csv", corpus["tiny_csv"], "--root", corpus["dir"], "--metrics", "prfnet,psnr,ssim"]
    code, out, err = run_cli(capsys, [*argv, "-c", corpus["ckpt"], "--no-progress", "-o", corpus["out"], "--json"])
    assert code == 0, err
    results = _strict(out)
    assert results["psnr"]["available"] and results["ssim"]["available"]
    reason = results["prfnet"]["reason"]
    assert not results["prfnet"]["available"] and ">= 32" in reason and "t_ref.png" in reason and "16x16" in reason


def test_format_1_checkpoint_still_loads(corpus, images):
    old = PRFNet.from_pretrained(corpus["v1_ckpt"])
    new = PRFNet.from_pretrained(corpus["ckpt"])
    assert old.config.se_gate == "sigmoid"  # FORMAT_1_DEFAULTS
    r, d = images(1), images(1)
    with torch.no_grad():
        assert torch.equal(old.score(r, d), new.score(r, d))  # test_resnet has no SE modules


def test_compare_json_is_strict(capsys, corpus):
    code, out, err = run_cli(
        capsys, ["compare", corpus["ref"], corpus["a"], corpus["b"], "-c", corpus["ckpt"], "--json"]
    )
    assert code == 0, err
    assert set(_strict(out)) == {"closer", "prob_a", "score_a", "score_b"}


def test_raised_pixel_limit_reads_what_the_default_refuses(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 40), (10, 20, 30)).save(path)
    with pytest.raises(ImageReadError, match="12,000 pixels"):
        load_image(path, max_pixels=11_999)
    assert load_image(path, max_pixels=12_000).shape == (1, 3, 40, 300)
    assert load_image(path, max_pixels=None).shape == load_image(path, max_pixels=0).shape


# -- 8-bit data until a tile is cut -----------------------------------------------------------------------------


def test_keep_8bit_returns_the_stored_values(tmp_path):
    arr = (np.arange(40 * 36 * 3).reshape(40, 36, 3) % 256).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    x8 = load_image(tmp_path / "x.png", keep_8bit=True)
    assert x8.dtype == torch.uint8 and torch.equal(x8[0].permute(1, 2, 0), torch.from_numpy(arr))
    assert torch.equal(x8.float() / 255, load_image(tmp_path / "x.png"))
    Image.fromarray((np.arange(40 * 36).reshape(40, 36) * 40).astype(np.uint16)).save(tmp_path / "d16.png")
    assert load_image(tmp_path / "d16.png", keep_8bit=True).dtype == torch.float32  # no precision dropped


@pytest.mark.parametrize("tile", [None, 48])
def test_uint8_input_scores_like_float_input(tile):
    g = torch.Generator().manual_seed(3)
    ref8, a8, b8 = (torch.randint(0, 256, (1, 3, 80, 72), generator=g, dtype=torch.uint8) for _ in range(3))
    model = PRFNet(TINY, tile_size=tile).eval()
    with torch.no_grad():
        model.head.weight.normal_(generator=g)
        as_float = [x.float() / 255 for x in (ref8, a8, b8)]
        assert torch.equal(model.score(ref8, a8), model.score(*as_float[:2]))
        assert torch.equal(model.compare(ref8, a8, b8), model.compare(*as_float))
        ranked8, ranked = model.rank(ref8, torch.cat([a8, b8])), model.rank(as_float[0], torch.cat(as_float[1:]))
        assert torch.allclose(ranked8.scores, ranked.scores, rtol=1e-6, atol=1e-7)


def test_file_api_keeps_8bit_images_and_scores_like_float(corpus, tiny_model, monkeypatch):
    import prfnet.api
    from prfnet.api import compare_files, score_files

    decoded, seen = [], []

    def recording_load_image(*args, **kwargs):
        decoded.append(load_image(*args, **kwargs))
        return decoded[-1]

    monkeypatch.setattr(prfnet.api, "load_image", recording_load_image)
    handle = tiny_model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    try:
        scores = score_files(tiny_model, corpus["ref"], [corpus["a"], corpus["b"], corpus["c"]], batch_size=2)
        comparison = compare_files(tiny_model, corpus["ref"], corpus["a"], corpus["b"])
    finally:
        handle.remove()
    assert len(decoded) == 7 and {x.dtype for x in decoded} == {torch.uint8}  # whole images stay 8-bit
    assert set(seen) == {torch.float32}  # the backbone still sees float32 in [0, 1]
    ref, dists = load_image(corpus["ref"]), [load_image(corpus[n]) for n in ("a", "b", "c")]
    with torch.no_grad():
        expected = tiny_model.score(ref, torch.cat(dists))
    assert scores == pytest.approx(expected.tolist(), rel=1e-5, abs=1e-7)
    assert comparison.closer == "A" and comparison.score_a == pytest.approx(scores[0], rel=1e-5)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    torch.set_num_threads(2)
    from prfnet.cli import main
    start = time.perf_counter()
    code = main(sys.argv[1:])
    result = {"code": code, "seconds": time.perf_counter() - start}
    result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:  # Linux: the high-water mark of this process's own memory
        status = open("/proc/self/status").read()
        result["vmhwm_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    print(json.dumps(result), file=sys.stderr)
    """
)
GENERATE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from PIL import Image
    side, out = int(sys.argv[1]), sys.argv[2]
    ramp = np.linspace(0, 200, side, dtype=np.float32)
    cols = np.arange(side)
    for name, amount in (("ref", 0), ("dist", 12)):
        img = np.empty((side, side, 3), dtype=np.uint8)
        for top in range(0, side, 1000):  # in strips: this process stays small too
            rows = np.arange(top, min(side, top + 1000))
            base = ramp[rows, None] * 0.5 + ramp[None, :] * 0.25
            pattern = amount * ((rows[:, None] // 7 + cols[None, :] // 5) % 3)  # a cheap, visible "distortion"
            img[top : top + len(rows)] = np.clip(base + pattern, 0, 255).astype(np.uint8)[..., None]
        Image.fromarray(img).save(f"{out}/{name}.png", compress_level=1)
    """
)
# 12000 x 12000 = 144 megapixels (576 tiles of 512), the size the robustness issue names: about 130 s on 2
# lightly loaded cores. Peaks (VmHWM): 12000: 2.15 GB (twice); 8192: 1.42 GB against 4.37 GB before uint8
# decoding. They fit 0.72 GB (Python, torch, timm) + 10 bytes per pixel (3 + 3 for the two uint8 images, 4 for
# Pillow's decoded RGB image while it is copied): 144 MP -> 2.16 GB.
HUGE_SIDE = 12000


@pytest.mark.slow
def test_huge_png_pair_scores_with_tiles_under_3_gb(tmp_path):
    """A HUGE_SIDE^2 PNG pair scores with --tile 512 and a peak RSS under 3 GB: 8-bit data stays uint8 until a
    tile is cut (float32 decoding needed 4.4 GB at 8192 px). The files are written by another process, so the
    measured one only scores.

    Peak: ``ru_maxrss`` of the scoring process. On Linux a child's ``ru_maxrss`` also carries its parent's
    peak (it survives fork and exec), which here is pytest's, so where ``/proc/self/status`` has ``VmHWM``
    (the same high-water mark, of the process's own memory only) that is the figure checked."""
    gen = subprocess.run(
        [sys.executable, "-c", GENERATE_SCRIPT, str(HUGE_SIDE), str(tmp_path)], capture_output=True, text=True
    )
    assert gen.returncode == 0, gen.stderr
    argv = ["score", str(tmp_path / "ref.png"), str(tmp_path / "dist.png"), "--tile", "512"]
    argv += ["--random-init", "--backbone", TINY, "--json"]
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *argv], capture_output=True, text=True, timeout=1800)
    result = json.loads(out.stderr.strip().splitlines()[-1])
    assert out.returncode == 0 and result["code"] == 0, out.stderr
    (scored,) = _strict(out.stdout)
    assert scored["score"] > 0
    peak_mb = result.get("vmhwm_mb", result["ru_maxrss_mb"])
    ru_maxrss_mb, seconds = result["ru_maxrss_mb"], result["seconds"]
    print(f"{HUGE_SIDE}^2 pair, --tile 512: peak {peak_mb:.0f} MB (ru_maxrss {ru_maxrss_mb:.0f} MB), {seconds:.0f} s")
    assert peak_mb < 3072
