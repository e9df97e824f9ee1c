"""``prfnet synth``: write the synthetic CLIC-format demonstration set (labels known by construction)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .app import app, err, fail


@app.command(
    epilog="Example: prfnet synth data/synth --refs 12 && prfnet eval clic --csv data/synth/validation.csv "
    "--root data/synth/images --oracle data/synth/oracle.csv --kinds data/synth/kinds.csv",
)
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created; our own files in it are overwritten).")],
    refs: Annotated[int, typer.Option("--refs", help="Number of reference images (>= 1), ~10 triplets each.")] = 12,
    size: Annotated[int, typer.Option("--size", help="Side of every (square) image in pixels (>= 64).")] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (>= 0); the same seed writes the same bytes.")] = 0,
    votes: Annotated[int, typer.Option("--votes", help="oracle.csv rows per triplet (>= 1).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
):
    """Write a synthetic CLIC-format 2AFC set: OUT/images/*.png, validation.csv, oracle.csv, kinds.csv.

    Labels are known by construction: the milder level of one distortion is closer; at equal MSE, a barely visible
    change is closer than a structural one. A DEMONSTRATION set, NOT human judgments.
    """
    from ..data.synth import MIN_SIZE, synthesize_clic

    if refs < 1:
        raise fail(f"--refs must be >= 1, got {refs}")
    if size < MIN_SIZE:
        raise fail(f"--size must be >= {MIN_SIZE}, got {size}")
    if seed < 0:
        raise fail(f"--seed must be >= 0, got {seed}")
    if votes < 1:
        raise fail(f"--votes must be >= 1, got {votes}")
    if out.exists() and not out.is_dir():
        raise fail(f"{out}: exists and is not a folder")

    with Progress(
        TextColumn("synthesising references"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or refs < 2,
    ) as bar:
        task = bar.add_task("refs", total=refs)
        summary = synthesize_clic(
            out, refs=refs, size=size, seed=seed, votes=votes, progress=lambda done, _: bar.update(task, completed=done)
        )
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(summary.line())
