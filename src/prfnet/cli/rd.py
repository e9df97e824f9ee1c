"""``prfnet rd``: rate-distortion curves and BD-rate of codecs (``docs/rd.md``).

Inputs: ``--csv FILE``, ``--decoded DIR --originals DIR`` or ``--example`` (exactly one). Writes
``OUT/results/<codec>.json``, ``OUT/bd_rate.json``, ``OUT/rd_<metric>.png``, ``OUT/report.html`` and ``OUT/rd.json``
as one set with ``OUT/manifest.json`` (``--out``/``-o``); the score store (``--store``; without it the library's
default, ``OUT/scores.sqlite``; ``--no-store``: none) persists between runs. With ``--json`` the summary
(``rd.json``) is the only thing on stdout, otherwise the BD-rate table; messages go to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, PRFNetError
from ..outputs import check_output_dir
from .app import app, err, setup_logging, view_hint
from .loading import model_loader
from .options import (
    AcceleratorOpt,
    BackboneOpt,
    BatchOpt,
    CheckpointOpt,
    CompileOpt,
    DeviceOpt,
    DevicesOpt,
    JsonOpt,
    MaxPixelsOpt,
    NoProgressOpt,
    NoStoreOpt,
    NumNodesOpt,
    PrecisionOpt,
    RandomOpt,
    RuntimeOpt,
    StoreOpt,
    StrategyOpt,
    StrideOpt,
    ThreadsOpt,
    TileOpt,
    VerboseOpt,
    WorkersOpt,
    devices_value,
    max_pixels_value,
    store_argument,
)

EPILOG = (
    "Examples: prfnet rd --csv rd.csv -m prfnet,psnr,ms_ssim_rgb --anchor jpeg -c prfnet.safetensors --out rd-out | "
    "prfnet rd --decoded decoded --originals originals --no-bd-rate | "
    "prfnet rd --example --random-init --backbone test_resnet --json"
)
EXAMPLE_FOLDER = "example"


def _input_items(csv: Path | None, decoded: Path | None, originals: Path | None, example: bool, out: Path):
    """(items, inputs description) of exactly one input mode; :class:`ConfigError` otherwise."""
    from ..rd import read_rd_csv, scan_rd_folders

    modes = [name for name, given in (("--csv", csv), ("--decoded/--originals", decoded or originals),
                                      ("--example", example)) if given]  # fmt: skip
    if len(modes) != 1:
        got = f"got {' and '.join(modes)}" if modes else "got none"
        raise ConfigError(f"give exactly one input: --csv FILE, --decoded DIR --originals DIR or --example ({got})")
    if example:
        csv = _example_csv(out / EXAMPLE_FOLDER)
        return read_rd_csv(csv), {"example": str(csv.parent), "csv": str(csv)}
    if csv is not None:
        return read_rd_csv(csv), {"csv": str(csv)}
    if decoded is None or originals is None:
        missing = "--originals" if originals is None else "--decoded"
        raise ConfigError(f"--decoded DIR and --originals DIR go together: {missing} is missing")
    return scan_rd_folders(decoded, originals), {"decoded": str(decoded), "originals": str(originals)}


def _example_complete(csv: Path) -> bool:
    """Whether ``csv`` (written last by make_example) is there and every file it lists exists."""
    from ..rd import read_rd_csv

    if not csv.is_file():
        return False
    try:
        items = read_rd_csv(csv)  # bitstream files are checked here (their size is the bpp)
    except PRFNetError:
        return False
    return all(p.is_file() for it in items for p in (it.decoded, it.original))


def _example_csv(folder: Path) -> Path:
    """``folder/rd.csv``, written with :func:`prfnet.rd.example.make_example` unless a complete one is there."""
    from ..rd.example import make_example

    csv = folder / "rd.csv"
    if _example_complete(csv):
        err.print(f"using the example inputs in {folder}", highlight=False, soft_wrap=True, markup=False)
        return csv
    check_output_dir(folder, "example folder")
    err.print(
        f"writing the example inputs (scikit-image photos, 5 codecs) into {folder} ...", highlight=False, markup=False
    )
    return make_example(folder)


def _trainer(accelerator, devices, num_nodes, strategy) -> dict | None:
    """Lightning Trainer settings for the scoring, or ``None`` when no such option is given."""
    flags = {
        "accelerator": accelerator,
        "devices": devices_value(devices),
        "num_nodes": num_nodes,
        "strategy": strategy,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    return flags or None


def _print_summary(summary: dict) -> None:
    """The BD-rate table (codec rows, metric columns) and its notes on stdout; counts and paths on stderr."""
    from ..rd.run import bd_rate_cells

    console = Console()
    if summary["bd_rate"] is not None:
        bd = summary["bd_rate"]
        columns, rows, notes = bd_rate_cells(summary)
        needed = 1 + sum(3 + max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns)))
        console = Console(width=max(console.width, needed))  # cells never wrap (a pipe gets 80 columns)
        interval = f"; [95 % interval over images, {bd['bootstrap']} resamples]" if bd["bootstrap"] else ""
        view = Table(
            title=f"BD-rate against {bd['anchor']}",
            caption=f"% more bits than {bd['anchor']} for the same quality (negative = fewer){interval}",
        )
        for i, column in enumerate(columns):
            view.add_column(column, justify="left" if i == 0 else "right")
        for row in rows:
            view.add_row(*row)
        console.print(view)
        for note in notes:
            console.print(note, highlight=False, soft_wrap=True)
    else:
        console.print(
            f"BD-rate not computed (--no-bd-rate); {summary['n_images']} image(s)", highlight=False, markup=False
        )
    for name, info in summary["metrics"].items():
        if not info["available"]:
            console.print(f"{name}: not scored, {info['reason']}", highlight=False, soft_wrap=True, markup=False)
    store = summary["store"]
    where = f"store: {store['path']}" if store.get("path") is not None else "no score store"
    err.print(f"scores: {store['from_store']} from the store, {store['computed']} computed ({where})",
              highlight=False, soft_wrap=True, markup=False)  # fmt: skip
    out = Path(summary["outputs"]["report"]).parent
    written = ["results/*.json", *(["bd_rate.json"] if summary["bd_rate"] is not None else []), "rd_*.png"]
    err.print(f"wrote {', '.join(str(out / w) for w in written)}, {out / 'report.html'} and {out / 'rd.json'}",
              highlight=False, soft_wrap=True, markup=False)  # fmt: skip
    err.print(view_hint(out), highlight=False, soft_wrap=True, markup=False)


@app.command(epilog=EPILOG)
def rd(
    csv: Annotated[Path | None, typer.Option("--csv", help="CSV of the decoded images (docs/rd.md).")] = None,
    decoded: Annotated[
        Path | None, typer.Option("--decoded", help="Folder DECODED/<codec>/<rate_point>/<image>.<ext>.")
    ] = None,
    originals: Annotated[
        Path | None, typer.Option("--originals", help="Folder of the originals <image>.<ext>.")
    ] = None,
    example: Annotated[
        bool, typer.Option("--example", help="Encode scikit-image photos with 5 codecs into OUT/example and use them.")
    ] = False,
    metrics: Annotated[
        str, typer.Option("--metrics", "-m", help="Comma-separated metrics; unavailable ones are listed, not fatal.")
    ] = "prfnet,psnr,ms_ssim_rgb,lpips,dists",
    anchor: Annotated[str | None, typer.Option("--anchor", help="BD-rate anchor codec (default: the first).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("prfnet-rd"),
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    batch_size: BatchOpt = 8,
    device: DeviceOpt = "cpu",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    no_bd_rate: Annotated[
        bool, typer.Option("--no-bd-rate", help="Curves only: no BD-rate, no minimum of 4 rate points.")
    ] = False,
    bd_method: Annotated[str, typer.Option("--bd-method", help="akima, pchip or cubic (bjontegaard).")] = "akima",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of the images (0: no interval).")
    ] = 1000,
    ms_ssim_db: Annotated[
        bool, typer.Option("--ms-ssim-db", help="Also ms-ssim-rgb-db = -10 log10(1 - MS-SSIM) in the results.")
    ] = False,
    devices: DevicesOpt = None,
    accelerator: AcceleratorOpt = None,
    num_nodes: NumNodesOpt = None,
    strategy: StrategyOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    verbose: VerboseOpt = False,
):
    """Rate-distortion curves and BD-rate: score every decoded image against its original with every metric,
    plot mean quality against mean bpp per codec and report the BD-rate of each codec against the anchor
    (negative = fewer bits for the same quality). Inputs are checked before anything is scored."""
    from ..outputs import OutputSet
    from ..rd.run import RD_OUTPUTS, metric_names, run_rd
    from ..scoring.metrics import PRFNET
    from ..trainer_settings import check_trainer_arguments
    from ..training.run import env_global_rank_is_zero

    setup_logging(verbose)
    limit = max_pixels_value(max_pixels)
    names = metric_names(metrics)
    stored = store_argument(store, no_store)
    model = model_loader(
        checkpoint,
        device,
        random_init,
        backbone,
        tile,
        tile_stride,
        precision,
        compile_backbone,
        runtime,
        threads,
        required=PRFNET in names,  # now, before an example is written or an input read
    )
    trainer = _trainer(accelerator, devices, num_nodes, strategy)
    if trainer:
        check_trainer_arguments(trainer)  # before an example is written or an input read
    outputs = OutputSet(out, RD_OUTPUTS).check() if env_global_rank_is_zero() else out  # the same: once, now
    items, inputs = _input_items(csv, decoded, originals, example, out)
    summary = run_rd(
        items, names, outputs, anchor=anchor, model=model, device=device, batch_size=batch_size, workers=workers,
        bd_rate=not no_bd_rate, bd_method=bd_method.lower(), bootstrap=bootstrap, ms_ssim_db=ms_ssim_db,
        progress=not no_progress, max_pixels=limit, trainer=trainer, inputs=inputs, **stored,
    )  # fmt: skip
    if trainer and not env_global_rank_is_zero():
        return  # DDP worker processes stay quiet
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        _print_summary(summary)
