"""The option types shared by several commands, and the checks of their values that run before any work.

Imports no torch (``prfnet --help`` reads these types); a check that needs the library imports it when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError

# the model and its inputs (compare, score, rank, eval, rd, export)
CheckpointOpt = Annotated[  # a str: a URL passed through Path would lose its '//' (checkpoint_value converts)
    str | None,
    typer.Option(
        "--checkpoint",
        "-c",
        envvar="PRFNET_CHECKPOINT",
        metavar="PATH|URL|NAME",
        help="prfnet checkpoint: a .safetensors file, an http(s) URL (downloaded once into the cache; pin it with "
        "URL#sha256=HEX) or a published name (docs/checkpoints.md).",
    ),
]
RandomOpt = Annotated[
    bool, typer.Option("--random-init", help="Untrained model for smoke tests: its answers mean NOTHING.")
]
BackboneOpt = Annotated[str, typer.Option("--backbone", help="Backbone of the --random-init model.")]
DeviceOpt = Annotated[
    str, typer.Option("--device", "-d", help="cpu, cuda, cuda:N, mps, xpu, ... (checked before loading).")
]
TileOpt = Annotated[int | None, typer.Option("--tile", help="Tile side for large images (default: whole image).")]
StrideOpt = Annotated[int | None, typer.Option("--tile-stride", help="Tile stride (default: the tile side).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images (or image pairs) scored at once.")]
PrecisionOpt = Annotated[
    str, typer.Option("--precision", help="PRFNet backbone precision: fp32, bf16 or fp16 (fp16: GPUs only).")
]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Compile PRFNet's backbone (torch.compile, frozen weights): ~1.5x faster on CPUs once compiled, after "
        "30-90 s of compilation per image size; for many images of one size.",
    ),
]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime",
        help="What runs PRFNet: torch, or onnxruntime (CPU, fp32; the graphs are exported once per checkpoint and "
        "cached; pip install 'prfnet\\[onnxruntime]').",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="CPU threads of the scoring (torch and onnxruntime; default: torch's)."),
]
MaxPixelsOpt = Annotated[
    str | None,
    typer.Option(
        "--max-pixels",
        help="Largest image decoded, in pixels (width x height), checked on the file header before decoding "
        "(a guard against decompression bombs). Default 178956970 (Pillow's limit); 0 or 'none': no limit.",
    ),
]

# what a command prints
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout (messages go to stderr).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log info messages too (what is loaded and done).")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bar.")]

# scoring many files (eval, rd)
MetricsOpt = Annotated[
    str,
    typer.Option(
        "--metrics",
        "-m",
        help="Comma-separated: prfnet and/or baseline names (psnr,ssim,ms_ssim,...); 'baselines' = every "
        "baseline, 'all' = prfnet + every baseline.",
    ),
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", min=0, help="Processes decoding images beside the scoring (0: in this process).")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Score store (SQLite) read before scoring and filled as it goes, kept between runs "
        "(default: OUT/scores.sqlite).",
    ),
]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="Score everything; read and write no score store.")]

# the output folder of eval (its documented default is per protocol: prfnet-eval/clic, ...)
EvalOutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output folder (default: prfnet-eval/<protocol>).")
]
OutDirOpt = Annotated[Path | None, typer.Option("--out-dir", hidden=True, help="Old name of --out.")]

# training (train, ablate) and Lightning's process settings (train, ablate, rd)
ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="YAML config file, or a shipped config name: demo, clic2022.")
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data set folder (sets data.root; CLIC: DIR/images and DIR/oracle.csv)."),
]
OverridesOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set key.sub=value (YAML value); repeatable."),
]
DevicesOpt = Annotated[str | None, typer.Option("--devices", help="Devices per node: N, 'auto' or '0,1'.")]
AcceleratorOpt = Annotated[str | None, typer.Option("--accelerator", help="cpu, gpu or auto.")]
NumNodesOpt = Annotated[int | None, typer.Option("--num-nodes", min=1, help="Number of nodes (DDP).")]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="auto, ddp, ... (Lightning strategies).")]
TrainPrecisionOpt = Annotated[str | None, typer.Option("--precision", help="32-true, 16-mixed or bf16-mixed (AMP).")]


def devices_value(devices: str | None) -> int | str | None:
    """``--devices`` as Lightning takes it: a count as an int, anything else (``auto``, ``0,1``) as given."""
    return int(devices) if devices is not None and devices.strip().isdigit() else devices


def out_value(out: Path | None, out_dir: Path | None, default: Path) -> Path:
    """The output folder of ``--out`` and its hidden old name ``--out-dir`` (``default`` without either);
    :class:`ConfigError` when both are given and differ."""
    if out is not None and out_dir is not None and out != out_dir:
        raise ConfigError(f"--out {out} and --out-dir {out_dir} differ: --out-dir is the old name of --out, give one")
    return out or out_dir or default


def store_argument(store: Path | None, no_store: bool) -> dict:
    """The ``store=`` keyword for the library: ``{}`` without ``--store`` or ``--no-store`` (the library's default
    store), ``{"store": None}`` for ``--no-store``, ``{"store": path}`` for ``--store`` (the library checks it before
    anything is read or any model loads). :class:`ConfigError` for both."""
    if no_store and store is not None:
        raise ConfigError("--store and --no-store exclude each other: pass one of them")
    if no_store:
        return {"store": None}
    if store is None:
        return {}
    return {"store": store}


def checkpoint_value(checkpoint: str | Path | None) -> str | Path | None:
    """``--checkpoint`` (or ``$PRFNET_CHECKPOINT``) as the library takes it: None when not given, a URL or a
    published name as given (its ``#sha256=`` pin and the name checked now: one line, nothing downloaded), a file
    as a Path."""
    from ..hub.checkpoints import checked_spec

    return checked_spec(checkpoint) if checkpoint else None


def check_tiling(tile: int | None, stride: int | None) -> None:
    """:class:`ConfigError` naming ``--tile`` / ``--tile-stride`` for values the model would refuse."""
    from ..model.inputs import MIN_SIDE

    if tile is not None and tile < MIN_SIDE:
        raise ConfigError(f"--tile must be >= {MIN_SIDE}, got {tile}")
    if stride is not None and tile is None:
        raise ConfigError(f"--tile-stride {stride} needs --tile (without --tile whole images are scored)")
    if stride is not None and stride <= 0:
        raise ConfigError(f"--tile-stride must be positive, got {stride}")
    if stride is not None and stride > tile:
        raise ConfigError(
            f"--tile-stride ({stride}) must not exceed --tile ({tile}): pixels between tiles would never be compared"
        )


def check_runtime_options(runtime: str, device: str, precision: str, compile: bool) -> None:
    """:class:`ConfigError` for a ``--runtime`` that these options exclude (or whose package is missing), before
    anything is read."""
    from ..model.runtime import check_runtime

    check_runtime(runtime, device, precision, compile)


def check_precision(precision: str, device: str) -> None:
    """:class:`ConfigError` for an unknown ``--precision``, or fp16 on the CPU, before anything is read."""
    import torch

    from ..model.inference import InferencePolicy, device_policy

    InferencePolicy(precision=precision)
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        return  # a bad --device is reported, in one line, when it is checked
    device_policy(dev, precision)


def max_pixels_value(value: str | None) -> int | None:
    """``--max-pixels`` as ``load_image``'s ``max_pixels`` (default when not given); one-line error otherwise."""
    from ..images import DEFAULT_MAX_PIXELS, parse_max_pixels

    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        return parse_max_pixels(value)
    except ValueError as exc:
        raise ConfigError(f"--max-pixels: {exc}") from None
