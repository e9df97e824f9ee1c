"""``prfnet codecs --list``: every codec of the codec layer (:mod:`prfnet.synth.codecs`) with its encoder library and
version, the Python binding that drives it, its rate parameter and whether it is usable here or why not (cheap: loads
Pillow and, when installed, imagecodecs; encodes nothing)."""

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


@app.command(epilog="Example: prfnet codecs --list --json")
def codecs(
    names: Annotated[list[str] | None, typer.Argument(help="Codecs to show (default: all), e.g. jpegxl avif.")] = None,
    list_: Annotated[
        bool, typer.Option("--list", "-l", help="List the codecs (the default, and so far the only, action).")
    ] = True,
    as_json: JsonOpt = False,
):
    """List the codecs: name, encoder library and version, the binding (Pillow or imagecodecs) and its version, the
    rate parameter and its range, whether it can run here (or why not) and whether it is in the simulated codec
    set by default (--json: {"codecs": [{name, library, library_version, binding, ...}, ...]}).

    JPEG XL (and mozjpeg, where the imagecodecs build has it) needs the optional imagecodecs: pip install
    'prfnet\\[jxl]'. The others need a Pillow built with them."""
    from ..synth.codec_info import codec_info
    from ..synth.codecs import CODECS

    infos = [codec_info(name) for name in (names or CODECS)]  # unknown name -> CodecUnavailable, one line
    if as_json:
        typer.echo(json.dumps({"codecs": infos}, allow_nan=False))
        return
    table = Table(title="codecs (rate in bits per pixel of the whole file; * = in the simulated codec set by default)")
    for column in ("name", "library", "version", "binding", "parameter", "available here"):
        table.add_column(column, overflow="fold")
    for info in infos:
        low, high = info["range"]
        cells = (
            info["name"] + (" *" if info["default"] else ""),
            info["library"],
            info["library_version"] or "-",
            f"{info['binding']} {info['binding_version'] or '(not installed)'}",
            f"{info['parameter']} {low:g}..{high:g}",
            info["status"],
        )
        table.add_row(*map(escape, cells))  # text, not markup: 'prfnet[jxl]' stays whole
    # piped or redirected: one line per codec (rich would wrap the reasons at 80 columns)
    console = Console() if sys.stdout.isatty() else Console(width=220)
    console.print(table)
