"""``prfnet tune``: per image, the codec setting with the fewest bits whose distance meets a target (docs/tune.md).

Writes ``OUT/files/<codec>/<image><ext>``, ``OUT/tune.csv``, ``OUT/tune.json`` and ``OUT/report.html`` as one set
with ``OUT/manifest.json``. With ``--json`` the summary is the only thing on stdout, otherwise the totals table.
Exit 0 when some image met the target with some codec, 2 when none did (the set is written: the closest encodes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from .app import USER_ERROR_EXIT, app, err, setup_logging, view_hint
from .loading import model_loader
from .options import (
    BackboneOpt,
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    MaxPixelsOpt,
    NoProgressOpt,
    PrecisionOpt,
    RandomOpt,
    RuntimeOpt,
    StrideOpt,
    ThreadsOpt,
    TileOpt,
    VerboseOpt,
    max_pixels_value,
)

EPILOG = (
    "Examples: prfnet tune photos/ --codecs jpegxl,avif --match jpeg420:q85 -m prfnet -c model.safetensors | "
    "prfnet tune img.png --codecs webp --target 2.0 -m flip | prfnet tune --example --match jpeg420:q85 -m ssimulacra2"
)


def _codec_names(text: str | None) -> list[str]:
    from ..synth.codecs import get_codec, unavailable_reason
    from ..tune import DEFAULT_TUNE_CODECS

    if text is None:  # the default set: those usable here, each one left out said once
        from ..synth.codecs import CODECS

        usable = []
        for name in DEFAULT_TUNE_CODECS:
            reason = unavailable_reason(CODECS[name])
            if reason is None:
                usable.append(name)
            else:
                err.print(f"warning: {name} left out: {reason}", highlight=False, soft_wrap=True, markup=False)
        return usable
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--codecs is empty: give e.g. --codecs jpegxl,avif (prfnet codecs --list)")
    for name in names:
        get_codec(name)  # unknown or unavailable: one line
    return list(dict.fromkeys(names))


def _metric(name: str, load_model, device: str):
    """The one metric object of ``--metric`` (PRFNet loads the model now); one line when it cannot run here."""
    from ..baselines import MetricUnavailable
    from ..scoring.metrics import select_metrics

    selection = select_metrics([name], model=load_model, device=device)
    if selection.unavailable:
        raise MetricUnavailable(f"{name}: {selection.unavailable[name]}")
    return selection.metrics[0]


def _print_totals(summary: dict, seconds: float) -> None:
    from ..tune.report import target_text, totals_rows

    columns, rows = totals_rows(summary)
    view = Table(title=f"prfnet tune: {target_text(summary)}",
                 caption=f"{summary['n_images']} images; 95 % intervals resample images")  # fmt: skip
    for i, column in enumerate(columns):
        view.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        view.add_row(*row)
    needed = 1 + sum(3 + max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns)))
    console = Console()
    Console(width=max(console.width, needed)).print(view)  # cells never wrap (a pipe gets 80 columns)
    out = Path(summary["outputs"]["tune.json"]).parent
    err.print(f"wrote {out / 'files'}/, {out / 'tune.csv'}, {out / 'tune.json'} and {out / 'report.html'} "
              f"in {seconds:.0f} s", highlight=False, soft_wrap=True, markup=False)  # fmt: skip


@app.command(epilog=EPILOG)
def tune(
    images: Annotated[list[Path] | None, typer.Argument(help="Image files or folders (not with --example).")] = None,
    example: Annotated[
        bool, typer.Option("--example", help="Tune the 8 scikit-image photos of docs/tune.md (384 px).")
    ] = False,
    codecs: Annotated[
        str | None, typer.Option("--codecs", help="Comma-separated codecs (default: jpeg420,webp,avif,jpegxl here).")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", "-m", help="The metric the target is in (one).")] = "prfnet",
    target: Annotated[
        float | None, typer.Option("--target", help="The metric's value to meet (<= for a distance, >= else).")
    ] = None,
    match: Annotated[
        str | None, typer.Option("--match", help="Meet, per image, this encoding's value: CODEC:SETTING (jpeg420:q85).")
    ] = None,
    max_encodes: Annotated[int, typer.Option("--max-encodes", min=2, help="Most encodes per image and codec.")] = 12,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Resamples of images (0: no interval).")] = 1000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("prfnet-tune"),
    device: DeviceOpt = "cpu",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    tile: TileOpt = None,
    tile_stride: StrideOpt = None,
    precision: PrecisionOpt = "fp32",
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
    max_pixels: MaxPixelsOpt = None,
    verbose: VerboseOpt = False,
):
    """For each image and codec, the setting with the fewest bits whose distance in --metric meets the target
    (--target VALUE, or --match CODEC:SETTING: as close as that encoding of the same image): bisection over the
    codec's setting, the reference encoded once per image. Everything is checked before anything is encoded."""
    from ..outputs import OutputSet
    from ..scoring.metrics import PRFNET, parse_metric_names
    from ..tune import TUNE_OUTPUTS, Target, example_images, file_images, parse_encoding, run_tune

    setup_logging(verbose)
    started = time.perf_counter()
    limit = max_pixels_value(max_pixels)
    names = parse_metric_names(metric)
    if len(names) != 1:
        raise ConfigError(f"--metric takes one metric, got {', '.join(names)}")
    goal = Target(value=target, match=parse_encoding(match) if match is not None else None)
    chosen_codecs = _codec_names(codecs)
    if not chosen_codecs:
        raise ConfigError("none of the default codecs can encode here (prfnet codecs --list)")
    load = model_loader(
        checkpoint,
        device,
        random_init,
        backbone,
        tile,
        tile_stride,
        precision,
        False,
        runtime,
        threads,
        required=names[0] == PRFNET,
    )
    if example == bool(images):
        raise ConfigError("give image files or folders, or --example (one of the two)")
    outputs = OutputSet(out, TUNE_OUTPUTS).check()
    inputs = example_images() if example else file_images(images, limit)
    if not example:
        outputs.refuse_inputs([i.source for i in inputs])
    scorer = _metric(names[0], load, device)
    progress = None if no_progress or as_json else (lambda line: err.print(line, highlight=False, soft_wrap=True))
    summary = run_tune(
        inputs, chosen_codecs, scorer, goal, outputs, max_encodes=max_encodes, bootstrap=bootstrap,
        inputs={"example": True} if example else {"images": [str(p) for p in images]}, progress=progress,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        _print_totals(summary, time.perf_counter() - started)
        err.print(view_hint(out), highlight=False, soft_wrap=True, markup=False)
    if not any(t["n_met"] for t in summary["totals"].values()):
        err.print("[bold red]error:[/] no image met the target with any codec (tune.json holds the closest encodes)",
                  highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(USER_ERROR_EXIT)
