"""``prfnet compare``, ``prfnet score`` and ``prfnet rank``: inference on image files."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..ioutil import atomic_write
from .app import app, err, setup_logging
from .loading import model_loader
from .options import (
    BackboneOpt,
    BatchOpt,
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    MaxPixelsOpt,
    RandomOpt,
    RuntimeOpt,
    StrideOpt,
    ThreadsOpt,
    TileOpt,
    VerboseOpt,
    max_pixels_value,
)

PROGRESS_FROM = 4  # show a progress bar from this many images on


def _model(checkpoint, device, random_init, backbone, tile, stride, verbose, runtime="torch", threads=None):
    """The model of compare, score and rank, loaded now."""
    setup_logging(verbose)
    return model_loader(checkpoint, device, random_init, backbone, tile, stride, runtime=runtime, threads=threads)()


def _progress(total: int):
    if total < PROGRESS_FROM:
        return nullcontext(None)
    return Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    )


def _scored(ref, images, batch_size, model, ranked: bool, max_pixels):
    from ..api import rank_files, score_files

    with _progress(len(images)) as bar:
        advance = None
        if bar is not None:
            task = bar.add_task("score", total=len(images))

            def advance(n):
                bar.advance(task, n)

        if ranked:
            return rank_files(model, ref, images, batch_size, advance, max_pixels)
        scores = score_files(model, ref, images, batch_size, advance, max_pixels)
        return list(zip(map(str, images), scores, strict=True))


@app.command(epilog="Example: prfnet compare ref.png codec1.png codec2.png --checkpoint prfnet.safetensors --json")
def compare(
    ref: Annotated[Path, typer.Argument(help="Reference image.")],
    a: Annotated[Path, typer.Argument(help="Distorted image A.")],
    b: Annotated[Path, typer.Argument(help="Distorted image B.")],
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    max_pixels: MaxPixelsOpt = None,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
    heatmap: Annotated[
        Path | None,
        typer.Option(
            "--heatmap",
            help="Folder for PNG overlays of the score maps of A and B (heatmap_a.png, heatmap_b.png; one colour "
            "scale) and of their difference (heatmap_diff.png: red where A is worse than B, blue where B is worse).",
        ),
    ] = None,
):
    """Which of A and B is closer to REF. prob_a = P(A closer); scores are distances (lower = closer)."""
    from ..api import compare_files

    limit = max_pixels_value(max_pixels)
    outputs = None
    if heatmap is not None:  # before the model loads: a folder we can write, nothing of the user's in the way
        from ..outputs import OutputSet

        outputs = OutputSet(heatmap, HEATMAPS).check("--heatmap folder")
        outputs.refuse_inputs([ref, a, b])
    model = _model(checkpoint, device, random_init, backbone, tile, tile_stride, verbose, runtime, threads)
    result = compare_files(model, ref, a, b, max_pixels=limit)
    if heatmap is not None:
        written = _write_heatmaps(model, ref, a, b, outputs, limit)
        err.print(f"heatmaps: {', '.join(map(str, written))}", highlight=False, soft_wrap=True, markup=False)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), allow_nan=False))
        return
    typer.echo(f"closer: {result.closer}  (P(A closer) = {result.prob_a:.4f})")
    typer.echo(f"score A: {result.score_a:.6f}  {a}")
    typer.echo(f"score B: {result.score_b:.6f}  {b}")


#: the pictures of ``compare --heatmap DIR``, published as one set
HEATMAPS = ("heatmap_a.png", "heatmap_b.png", "heatmap_diff.png")


def _write_heatmaps(model, ref: Path, a: Path, b: Path, outputs, max_pixels) -> list[Path]:
    """Write heatmap_a.png, heatmap_b.png and heatmap_diff.png (RGB, the images' size) as the set ``outputs``."""
    import torch
    from PIL import Image

    from ..images import load_image
    from ..model.maps import overlay

    imgs = [load_image(p, max_pixels=max_pixels, keep_8bit=True) for p in (ref, a, b)]
    with torch.inference_mode():
        map_a, map_b = (m[0, 0] for m in model.compare_maps(*imgs))
    diff = map_a - map_b
    scale = max(map_a.max().item(), map_b.max().item())
    pictures = dict(
        zip(
            HEATMAPS,
            (
                overlay(imgs[1], map_a, scale),
                overlay(imgs[2], map_b, scale),
                overlay(imgs[0], diff, diff.abs().max().item(), diverging=True),
            ),
            strict=True,
        )
    )
    with outputs.writing() as sink:  # one set: staged, then published with its manifest (or nothing on a full disk)
        for name, pixels in pictures.items():
            with atomic_write(sink.path(name), "wb") as f:
                Image.fromarray(pixels).save(f, format="PNG")
    written = [outputs.final(name) for name in pictures]
    return written


def _print_table(rows, title: str):
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("score (lower = closer)", justify="right")
    table.add_column("path")
    for i, (path, score) in enumerate(rows, 1):
        table.add_row(str(i), f"{score:.6f}", path)
    Console().print(table)


def _score_command(ref, images, ranked: bool, title: str, as_json: bool, batch_size, max_pixels, *model_options):
    """The body of ``score`` (``ranked=False``: input order) and ``rank`` (best first): --max-pixels checked before
    the model loads, then a JSON list of {"path", "score"} or a table titled ``title``."""
    limit = max_pixels_value(max_pixels)
    model = _model(*model_options)
    rows = _scored(ref, images, batch_size, model, ranked=ranked, max_pixels=limit)
    if as_json:
        typer.echo(json.dumps([{"path": p, "score": s} for p, s in rows], allow_nan=False))
    else:
        _print_table(rows, title)


@app.command(epilog="Example: prfnet score ref.png q20.jpg q40.jpg q60.jpg -c prfnet.safetensors --json")
def score(
    ref: Annotated[Path, typer.Argument(help="Reference image.")],
    dists: Annotated[list[Path], typer.Argument(help="One or more distorted images of the same size.")],
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 4,
    max_pixels: MaxPixelsOpt = None,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """Distance of each DIST to REF (>= 0, lower = closer), in input order."""
    _score_command(
        ref, dists, False, f"distance to {ref}", as_json, batch_size, max_pixels,
        checkpoint, device, random_init, backbone, tile, tile_stride, verbose, runtime, threads,
    )  # fmt: skip


@app.command(epilog="Example: prfnet rank ref.png candidates/*.png -c prfnet.safetensors --json")
def rank(
    ref: Annotated[Path, typer.Argument(help="Reference image.")],
    candidates: Annotated[list[Path], typer.Argument(help="Candidate images of the same size.")],
    checkpoint: CheckpointOpt = None,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    batch_size: BatchOpt = 4,
    max_pixels: MaxPixelsOpt = None,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
):
    """Rank CANDIDATES by distance to REF, best (closest) first; reference features computed once."""
    _score_command(
        ref, candidates, True, f"ranking against {ref} (best first)", as_json, batch_size, max_pixels,
        checkpoint, device, random_init, backbone, tile, tile_stride, verbose, runtime, threads,
    )  # fmt: skip
