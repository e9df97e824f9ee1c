"""``prfnet metrics --list``: every baseline metric with its direction, score range, availability here and original
reference (cheap: checks files, loads and downloads nothing)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .app import app
from .options import JsonOpt


@app.command(epilog="Example: prfnet metrics --list --json")
def metrics(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Metrics to show (default: all baselines); aliases such as vifp are accepted."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", "-l", help="List the metrics (the default, and so far the only, action).")
    ] = True,
    as_json: JsonOpt = False,
):
    """List the baseline metrics: name, direction (higher or lower = closer to the reference), score range,
    whether it can run here (or why not) and its original reference (--json: {"metrics": [{name, direction, range,
    ...}, ...]}). PRFNet itself is a distance: lower = closer.

    LPIPS and DISTS download torchvision's VGG16 ImageNet weights (528 MB) on first use; with $PRFNET_OFFLINE=1
    or no network they need the file in the folder the message names."""
    from ..baselines import BASELINE_NAMES
    from ..baselines.registry import metric_info

    infos = [metric_info(name) for name in (names or BASELINE_NAMES)]  # unknown name -> ConfigError, one line
    if as_json:
        typer.echo(json.dumps({"metrics": infos}, allow_nan=False))
        return
    table = Table(title="baseline metrics (prfnet itself: lower = closer)")
    for column in ("name", "closer when", "range", "available here", "reference"):
        table.add_column(column, overflow="fold")
    for info in infos:
        available = info["status"] if info["available"] else "no (see below)"
        name = ", ".join([info["name"], *info["aliases"]])
        cells = (name, f"{info['direction']}", info["range"], available, info["reference"])
        table.add_row(*map(escape, cells))  # text, not markup: 'prfnet[codec-metrics]' stays whole
    # piped or redirected: one line per metric (rich would wrap the references at 80 columns)
    console = Console() if sys.stdout.isatty() else Console(width=220)
    console.print(table)
    for info in infos:
        if not info["available"]:
            console.print(f"{info['name']}: {info['status']}", highlight=False, soft_wrap=True, markup=False)
