"""``prfnet eval clic|bapps|mos|jnd``: official evaluation protocols, PRFNet and the baselines side by side.

Every command writes ``results.json`` and ``report.html`` to ``--out`` (``-o``; ``--out-dir`` is its hidden old
name); with ``--json`` it prints exactly one JSON object (``{metric: {...}}``) to stdout, otherwise a table.
Progress and messages go to stderr. Scores are kept in a score store (``--store``; without it the library's default,
``OUT/scores.sqlite``; ``--no-store``: none), so a rerun, or a run killed mid-way, scores only what is not stored yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..store import STORE_NAME
from .app import err, eval_app, setup_logging, view_hint
from .loading import model_loader
from .options import (
    BackboneOpt,
    BatchOpt,
    CheckpointOpt,
    CompileOpt,
    DeviceOpt,
    EvalOutOpt,
    JsonOpt,
    MaxPixelsOpt,
    MetricsOpt,
    NoProgressOpt,
    NoStoreOpt,
    OutDirOpt,
    PrecisionOpt,
    RandomOpt,
    RuntimeOpt,
    StoreOpt,
    StrideOpt,
    ThreadsOpt,
    TileOpt,
    VerboseOpt,
    WorkersOpt,
    max_pixels_value,
    out_value,
    store_argument,
)

DEFAULT_OUT = Path("prfnet-eval")  # --out default: prfnet-eval/<protocol>


def _prepare(protocol, out, out_dir, store, no_store, checkpoint, device, random_init, backbone, tile, tile_stride,
             verbose, precision, compile_backbone, runtime, threads):  # fmt: skip
    """(model loader, output folder, ``store=`` keyword) of an eval command, its options checked before anything is
    read; the library checks the output folder and loads the model after its own input checks."""
    setup_logging(verbose)
    model = model_loader(
        checkpoint, device, random_init, backbone, tile, tile_stride, precision, compile_backbone, runtime, threads
    )
    return model, out_value(out, out_dir, DEFAULT_OUT / protocol), store_argument(store, no_store)


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _stored_in(out: Path, stored: dict) -> Path | None:
    """The score store this run used: ``--store``, none with ``--no-store``, else the library's default store if
    the run made one."""
    if "store" in stored:
        return stored["store"]
    default = out / STORE_NAME
    return default if default.is_file() else None


def _emit(
    results: dict, as_json: bool, table: tuple[list[str], list[list]], title: str, out: Path, stored: dict,
    method: str | None = None,
):  # fmt: skip
    from ..ioutil import json_safe
    from ..stats.intervals import METHOD, ceiling_note

    if as_json:
        typer.echo(json.dumps(json_safe(results), allow_nan=False))
    else:
        columns, rows = table
        view = Table(title=title)
        for i, column in enumerate(columns):
            view.add_column(column, justify="left" if i in (0, 1) or column == "status" else "right")
        for row in rows:  # the last column is the status; reasons go below the table
            view.add_row(*(_cell(v) for v in row[:-1]), "ok" if row[-1] == "ok" else "unavailable")
        console = Console()
        console.print(view)
        for note in (ceiling_note(results), method or METHOD):
            if note:
                console.print(note, highlight=False, soft_wrap=True)
        for name, entry in results.items():
            if not entry.get("available"):
                console.print(f"{name}: {entry['reason']}", highlight=False, soft_wrap=True, markup=False)
            for figure, why in (entry.get("undefined") or {}).items():
                console.print(f"{name} {figure}: n/a, {why}", highlight=False, soft_wrap=True, markup=False)
    store = _stored_in(out, stored)
    note = f"; scores stored in {store}" if store is not None else ""
    err.print(
        f"wrote {out / 'results.json'} and {out / 'report.html'}{note}", highlight=False, soft_wrap=True, markup=False
    )
    err.print(view_hint(out), highlight=False, soft_wrap=True, markup=False)


@eval_app.command(
    "clic",
    epilog="Example: prfnet eval clic --csv validation.csv --root images --oracle oracle.csv "
    "--metrics prfnet,psnr,ssim -c prfnet.safetensors --json",
)
def clic(
    csv: Annotated[Path, typer.Option("--csv", help="Headerless O,A,B triplets (validation.csv).")],
    root: Annotated[Path, typer.Option("--root", help="Folder of the images named in the CSV.")],
    oracle: Annotated[Path | None, typer.Option("--oracle", help="Headerless O,A,B,T human labels.")] = None,
    kinds: Annotated[Path | None, typer.Option("--kinds", help="O,A,B,kind file (synthetic data).")] = None,
    metrics: MetricsOpt = "all",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    device: DeviceOpt = "cpu",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 8,
    out: EvalOutOpt = None,
    out_dir: OutDirOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """CLIC perceptual 2AFC: a submission_<metric>.csv per metric (O,A,B,T; T=0: A closer) and, with
    --oracle, the official accuracy (last row of a repeated key wins), the majority-vote accuracy
    (ties excluded) and, with --kinds, the accuracy per kind."""
    from ..evaluation import evaluate_clic
    from ..evaluation.pages import clic_table

    model, out, stored = _prepare(
        "clic", out, out_dir, store, no_store, checkpoint, device, random_init, backbone, tile, tile_stride, verbose,
        precision, compile_backbone, runtime, threads,
    )  # fmt: skip
    results = evaluate_clic(
        csv,
        root,
        oracle=oracle,
        metrics=[metrics],
        model=model,
        kinds=kinds,
        out_dir=out,
        device=device,
        progress=not no_progress,
        batch_size=batch_size,
        max_pixels=max_pixels_value(max_pixels),
        workers=workers,
        **stored,
    )
    _emit(results, as_json, clic_table(results, intervals=True), f"CLIC 2AFC: {csv}", out, stored)


@eval_app.command(
    "bapps",
    epilog="Example: prfnet eval bapps --root dataset/2afc/val --metrics prfnet,psnr,lpips -c prfnet.safetensors",
)
def bapps(
    root: Annotated[Path, typer.Option("--root", help="2afc/<split>/<subset> folder, or a folder of subsets.")],
    metrics: MetricsOpt = "all",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    device: DeviceOpt = "cpu",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 64,
    out: EvalOutOpt = None,
    out_dir: OutDirOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """BAPPS 2AFC score (LPIPS paper) per subset and overall:
    (d0<d1)*(1-judge) + (d1<d0)*judge + 0.5*(d0==d1), each metric in its own direction."""
    from ..evaluation import evaluate_bapps
    from ..evaluation.pages import bapps_table

    model, out, stored = _prepare(
        "bapps", out, out_dir, store, no_store, checkpoint, device, random_init, backbone, tile, tile_stride, verbose,
        precision, compile_backbone, runtime, threads,
    )  # fmt: skip
    results = evaluate_bapps(
        root, metrics=[metrics], model=model, out_dir=out, device=device, progress=not no_progress,
        batch_size=batch_size, max_pixels=max_pixels_value(max_pixels), workers=workers, **stored,
    )  # fmt: skip
    _emit(results, as_json, bapps_table(results, intervals=True), f"BAPPS 2AFC: {root}", out, stored)


@eval_app.command(
    "jnd",
    epilog="Example: prfnet eval jnd --root data/bapps/jnd/val --metrics prfnet,psnr,lpips -c prfnet.safetensors",
)
def jnd(
    root: Annotated[Path, typer.Option("--root", help="jnd/val folder of subsets (p0/, p1/, same/), or one subset.")],
    metrics: MetricsOpt = "all",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    device: DeviceOpt = "cpu",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 64,
    out: EvalOutOpt = None,
    out_dir: OutDirOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """BAPPS JND (LPIPS paper): average precision of ranking the pairs by each metric's distance against the fraction
    of judges who saw no difference, per subset; higher = better."""
    from ..evaluation import evaluate_jnd
    from ..evaluation.jnd import JND_METHOD, jnd_rows

    model, out, stored = _prepare(
        "jnd", out, out_dir, store, no_store, checkpoint, device, random_init, backbone, tile, tile_stride, verbose,
        precision, compile_backbone, runtime, threads,
    )  # fmt: skip
    results = evaluate_jnd(
        root, metrics=[metrics], model=model, out_dir=out, device=device, progress=not no_progress,
        batch_size=batch_size, max_pixels=max_pixels_value(max_pixels), workers=workers, **stored,
    )  # fmt: skip
    subsets = next((list(e["subsets"]) for e in results.values() if e.get("available", True)), [])
    _emit(results, as_json, jnd_rows(results, subsets), f"BAPPS JND: {root}", out, stored, JND_METHOD)


@eval_app.command(
    "mos",
    epilog="Example: prfnet eval mos --dataset kadid --root kadid10k --metrics prfnet,psnr,ssim -c prfnet.safetensors",
)
def mos(
    dataset: Annotated[str, typer.Option("--dataset", help="kadid, pipal, tid2013 or csv.")],
    root: Annotated[Path | None, typer.Option("--root", help="Data set folder (kadid, pipal, tid2013).")] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="--dataset csv: ref,dist,score file with a header; image paths relative to it."),
    ] = None,
    lower_better: Annotated[
        bool, typer.Option("--lower-better", help="--dataset csv: lower score = better quality (DMOS).")
    ] = False,
    metrics: MetricsOpt = "all",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    device: DeviceOpt = "cpu",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 8,
    out: EvalOutOpt = None,
    out_dir: OutDirOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """Correlation with subjective scores: SRCC, KRCC, and PLCC after the VQEG 4-parameter logistic fit
    (scores oriented like the subjective scores, so a good metric has positive correlations)."""
    from ..evaluation import evaluate_mos
    from ..evaluation.pages import mos_table

    model, out, stored = _prepare(
        "mos", out, out_dir, store, no_store, checkpoint, device, random_init, backbone, tile, tile_stride, verbose,
        precision, compile_backbone, runtime, threads,
    )  # fmt: skip
    results = evaluate_mos(
        dataset.lower(), root, csv, metrics=[metrics], model=model, out_dir=out, device=device,
        progress=not no_progress, batch_size=batch_size, higher_better=not lower_better,
        max_pixels=max_pixels_value(max_pixels), workers=workers, **stored,
    )  # fmt: skip
    _emit(results, as_json, mos_table(results, intervals=True), f"MOS correlations: {dataset}", out, stored)
