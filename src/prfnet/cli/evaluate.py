"""``prfnet eval clic|bapps|mos``: official evaluation protocols, PRFNet and the baselines side by side.

Every command writes ``results.json`` and ``report.html`` to ``--out-dir``; with ``--json`` it prints
exactly one JSON object (``{metric: {...}}``) to stdout, otherwise a table. Progress and messages go
to stderr. Scores are kept in a score store (``--store``, default ``<out-dir>/scores.sqlite``; ``--no-store``:
none), so a rerun, or a run killed mid-way, scores only what is not stored yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .app import err, eval_app, setup_logging
from .infer import (
    BackboneOpt,
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    MaxPixelsOpt,
    RandomOpt,
    StrideOpt,
    TileOpt,
    VerboseOpt,
    check_tiling,
    max_pixels_value,
)

MetricsOpt = Annotated[
    str,
    typer.Option(
        "--metrics",
        "-m",
        help="Comma-separated: prfnet and/or baseline names (psnr,ssim,ms_ssim,...); 'baselines' = every "
        "baseline, 'all' = prfnet + every baseline.",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Image pairs decoded and scored at once.")]
QuietOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bar.")]
StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Score store (SQLite) read before scoring and filled as it goes, kept between runs "
        "(default: <out-dir>/scores.sqlite).",
    ),
]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="Score everything; read and write no score store.")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", min=0, help="Processes decoding images beside the scoring (0: in this process).")
]
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


def _out_dir_opt(default_help: str):
    return typer.Option("--out-dir", "-o", help=f"Output folder (default: {default_help}).")


def _model_loader(
    checkpoint, device, random_init, backbone, tile, tile_stride, verbose, precision="fp32", compile=False
):
    """Loads PRFNet when the evaluation asks for it, after the data files are read (same checkpoint
    rules and messages as ``prfnet compare``); ``precision`` is checked now."""
    from ..api import load_model

    setup_logging(verbose)
    check_tiling(tile, tile_stride)
    check_precision(precision, device)
    return lambda: load_model(
        checkpoint, device, random_init, backbone, tile, tile_stride, precision=precision, compile=compile
    )


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


def _outputs_and_store(out_dir: Path, store: Path | None, no_store: bool):
    """The output set (``--out-dir`` checked for writability first, as the protocols do) and the score store path
    of this run (checked next), both before anything is read or any model loads."""
    from ..outputs import EVAL_OUTPUTS, output_set

    outputs = output_set(out_dir, EVAL_OUTPUTS)
    return outputs, _store_path(store, no_store, out_dir)


def _store_path(store: Path | None, no_store: bool, out_dir: Path) -> Path | None:
    """The score store of this run: ``--store``, else ``<out-dir>/scores.sqlite``; ``None`` with ``--no-store``.
    A path that cannot be a store is refused now, before anything is read or any model loads (:func:`_check_store`).
    """
    if no_store:
        if store is not None:
            from ..errors import ConfigError

            raise ConfigError("--store and --no-store exclude each other: pass one of them")
        return None
    path = store if store is not None else out_dir / "scores.sqlite"
    _check_store(path)
    return path


def _check_store(path: Path) -> None:
    """One-line error for a store path that cannot be used, creating nothing (a bad run leaves no folder behind;
    the store is created when the first scores are looked up): an existing file is opened as a store (a folder, a
    foreign or damaged database, a newer schema are refused, and left unchanged); a new one needs a writable folder
    or a folder that can be created."""
    import os

    from ..errors import OutputError
    from ..store import ScoreStore

    try:
        if path.exists():
            ScoreStore(path).close()
            return
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
    except OSError as exc:
        raise OutputError(f"{path}: cannot be used as the score store ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot create the score store: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot create the score store: {folder} is not writable")


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _emit(
    results: dict, as_json: bool, table: tuple[list[str], list[list]], title: str, out_dir: Path, store=None
) -> None:
    from ..scoring.metrics import json_safe
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
        for note in (ceiling_note(results), METHOD):
            if note:
                console.print(note, highlight=False, soft_wrap=True)
        for name, entry in results.items():
            if not entry.get("available"):
                console.print(f"{name}: {entry['reason']}", highlight=False, soft_wrap=True)
            for figure, why in (entry.get("undefined") or {}).items():
                console.print(f"{name} {figure}: n/a, {why}", highlight=False, soft_wrap=True)
    stored = f"; scores stored in {store}" if store is not None else ""
    err.print(
        f"wrote {out_dir / 'results.json'} and {out_dir / 'report.html'}{stored}", highlight=False, soft_wrap=True
    )


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
    out_dir: Annotated[Path, _out_dir_opt("prfnet-eval/clic")] = Path("prfnet-eval/clic"),
    as_json: JsonOpt = False,
    no_progress: QuietOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    verbose: VerboseOpt = False,
):
    """CLIC perceptual 2AFC: a submission_<metric>.csv per metric (O,A,B,T; T=0: A closer) and, with
    --oracle, the official accuracy (last row of a repeated key wins), the majority-vote accuracy
    (ties excluded) and, with --kinds, the accuracy per kind."""
    from ..evaluation import evaluate_clic
    from ..evaluation.pages import clic_table

    model = _model_loader(
        checkpoint, device, random_init, backbone, tile, tile_stride, verbose, precision, compile_backbone
    )
    outputs, store_path = _outputs_and_store(out_dir, store, no_store)
    results = evaluate_clic(
        csv,
        root,
        oracle=oracle,
        metrics=[metrics],
        model=model,
        kinds=kinds,
        out_dir=outputs,
        device=device,
        progress=not no_progress,
        batch_size=batch_size,
        max_pixels=max_pixels_value(max_pixels),
        store=store_path,
        workers=workers,
    )
    _emit(results, as_json, clic_table(results, intervals=True), f"CLIC 2AFC: {csv}", out_dir, store_path)


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
    out_dir: Annotated[Path, _out_dir_opt("prfnet-eval/bapps")] = Path("prfnet-eval/bapps"),
    as_json: JsonOpt = False,
    no_progress: QuietOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    verbose: VerboseOpt = False,
):
    """BAPPS 2AFC score (LPIPS paper) per subset and overall:
    (d0<d1)*(1-judge) + (d1<d0)*judge + 0.5*(d0==d1), each metric in its own direction."""
    from ..evaluation import evaluate_bapps
    from ..evaluation.pages import bapps_table

    model = _model_loader(
        checkpoint, device, random_init, backbone, tile, tile_stride, verbose, precision, compile_backbone
    )
    outputs, store_path = _outputs_and_store(out_dir, store, no_store)
    results = evaluate_bapps(
        root, metrics=[metrics], model=model, out_dir=outputs, device=device, progress=not no_progress,
        batch_size=batch_size, max_pixels=max_pixels_value(max_pixels), store=store_path, workers=workers,
    )  # fmt: skip
    _emit(results, as_json, bapps_table(results, intervals=True), f"BAPPS 2AFC: {root}", out_dir, store_path)


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
    out_dir: Annotated[Path, _out_dir_opt("prfnet-eval/mos")] = Path("prfnet-eval/mos"),
    as_json: JsonOpt = False,
    no_progress: QuietOpt = False,
    max_pixels: MaxPixelsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    workers: WorkersOpt = 2,
    precision: PrecisionOpt = "fp32",
    compile_backbone: CompileOpt = False,
    verbose: VerboseOpt = False,
):
    """Correlation with subjective scores: SRCC, KRCC, and PLCC after the VQEG 4-parameter logistic fit
    (scores oriented like the subjective scores, so a good metric has positive correlations)."""
    from ..evaluation import evaluate_mos
    from ..evaluation.pages import mos_table

    model = _model_loader(
        checkpoint, device, random_init, backbone, tile, tile_stride, verbose, precision, compile_backbone
    )
    outputs, store_path = _outputs_and_store(out_dir, store, no_store)
    results = evaluate_mos(
        dataset.lower(), root, csv, metrics=[metrics], model=model, out_dir=outputs, device=device,
        progress=not no_progress, batch_size=batch_size, higher_better=not lower_better,
        max_pixels=max_pixels_value(max_pixels), store=store_path, workers=workers,
    )  # fmt: skip
    _emit(results, as_json, mos_table(results, intervals=True), f"MOS correlations: {dataset}", out_dir, store_path)
