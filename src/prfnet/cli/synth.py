"""``prfnet synth``: write a synthetic CLIC-format set (``--kind distortions``: labels known by construction;
``--kind codecs``: real codecs on real photos with simulated votes from a hidden judge)."""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .app import app, err, fail
from .options import JsonOpt


class SynthKind(str, Enum):
    distortions = "distortions"
    codecs = "codecs"


DEFAULT_REFS = {SynthKind.distortions: 12, SynthKind.codecs: 16}
DEFAULT_VOTES = 3
#: the top-level names a synthetic set writes (either kind): a new set replaces these and keeps everything else
SYNTH_OUTPUTS = ("images", "validation.csv", "oracle.csv", "kinds.csv", "README.txt", "files.csv", "ceiling.json")


@app.command(
    epilog="Example: prfnet synth data/synth --refs 12 && prfnet eval clic --csv data/synth/validation.csv "
    "--root data/synth/images --oracle data/synth/oracle.csv --kinds data/synth/kinds.csv",
)
def synth(
    out_arg: Annotated[
        Path | None,
        typer.Argument(
            metavar="OUT",
            help="Output folder, as --out (created; our own files in it are overwritten).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (created; our own files in it are overwritten).")
    ] = None,
    kind: Annotated[
        SynthKind,
        typer.Option(
            "--kind",
            help="distortions: labels known by construction (all votes agree). codecs: JPEG/WebP/JPEG 2000/AVIF "
            "(JPEG XL with --codecs) at "
            "matched bits per pixel on real photos, 3..15 SIMULATED votes per triplet from a hidden judge, "
            "plus files.csv and ceiling.json.",
        ),
    ] = SynthKind.distortions,
    refs: Annotated[
        int | None,
        typer.Option(
            "--refs",
            help="Number of reference images (>= 1); default 12 (distortions, ~10 triplets "
            "each) or 16 (codecs, ~12 triplets each).",
        ),
    ] = None,
    size: Annotated[
        int, typer.Option("--size", help="Side of every (square) image in pixels (>= 64; codecs: >= 256).")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (>= 0); the same seed writes the same bytes.")] = 0,
    votes: Annotated[
        int | None,
        typer.Option("--votes", help="--kind distortions only: oracle.csv rows per triplet (>= 1, default 3)."),
    ] = None,
    codecs: Annotated[
        str | None,
        typer.Option(
            "--codecs",
            help="--kind codecs only: comma-separated codecs, at least two (prfnet codecs --list), e.g. "
            "jpeg420,jpegxl; default jpeg420,jpeg444,webp,jpeg2000,avif (those usable here).",
        ),
    ] = None,
    as_json: JsonOpt = False,
):
    """Write a synthetic CLIC-format 2AFC set to OUT (or --out): OUT/images/*.png, validation.csv, oracle.csv,
    kinds.csv.

    --kind distortions: labels known by construction (milder level closer; at equal MSE, barely visible closer).

    --kind codecs: real codecs at matched bits per pixel, votes simulated from a hidden judge; files.csv, ceiling.json.

    NOT human judgments, either kind.
    """
    from ..outputs import OutputSet
    from ..synth import codec_set, distortion_set

    if out is not None and out_arg is not None and out != out_arg:
        raise fail(f"the output folder is given twice, differently: {out_arg} and --out {out}; give one")
    out = out or out_arg
    if out is None:
        raise fail("give the output folder: prfnet synth OUT, or --out OUT")
    min_size = codec_set.MIN_SIZE if kind is SynthKind.codecs else distortion_set.MIN_SIZE
    refs = DEFAULT_REFS[kind] if refs is None else refs
    if refs < 1:
        raise fail(f"--refs must be >= 1, got {refs}")
    if size < min_size:
        raise fail(f"--size must be >= {min_size} with --kind {kind.value}, got {size}")
    if seed < 0:
        raise fail(f"--seed must be >= 0, got {seed}")
    if kind is SynthKind.codecs and votes is not None:
        raise fail("--votes applies to --kind distortions only; --kind codecs draws 3..15 votes per triplet")
    votes = DEFAULT_VOTES if votes is None else votes
    codec_names = None
    if codecs is not None:
        if kind is not SynthKind.codecs:
            raise fail("--codecs applies to --kind codecs only")
        from ..synth.codecs import get_codec

        codec_names = [get_codec(name.strip()).name for name in codecs.split(",") if name.strip()]  # one line if not
        if len(set(codec_names)) < 2:
            raise fail(f"--codecs needs at least two different codecs, got {codecs!r}")
    if votes < 1:
        raise fail(f"--votes must be >= 1, got {votes}")
    command = f"prfnet synth --kind {kind.value} --size {size} --refs {refs}"
    if kind is SynthKind.codecs:  # memory before the output folder: nothing is made for a set that cannot fit
        codec_set.check_memory_for(refs, size, command=command)
    else:
        distortion_set.check_memory_for(refs, size, command=command)
    outputs = OutputSet(out, SYNTH_OUTPUTS).check()  # before any work

    with (
        outputs,
        Progress(
            TextColumn(f"synthesising references ({kind.value})"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json or refs < 2,
        ) as bar,
    ):
        task = bar.add_task("refs", total=refs)

        def progress(done: int, _total: int) -> None:
            bar.update(task, completed=done)

        staged = outputs.staging  # the set is written there, then published with its manifest
        if kind is SynthKind.codecs:
            summary = codec_set.synthesize_codec_clic(
                staged, refs=refs, size=size, seed=seed, codecs=codec_names, progress=progress
            )
        else:
            summary = distortion_set.synthesize_clic(
                staged, refs=refs, size=size, seed=seed, votes=votes, progress=progress
            )
    summary = dataclasses.replace(  # the paths where the files now are
        summary,
        **{
            k: out / v.relative_to(staged)
            for k, v in vars(summary).items()
            if isinstance(v, Path) and v.is_relative_to(staged)
        },
    )
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), allow_nan=False))
    else:
        typer.echo(summary.line())
