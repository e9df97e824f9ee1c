"""``prfnet view OUT``: a local web page of an output set (``eval clic|bapps|mos|jnd``, ``rd``, ``tune``, ``demo``): the
triplets with flicker, zoom and score maps, the RD curves, the MOS scatter, each tuned encode against the match.

Serves on 127.0.0.1 and a free port by default; the URL, with its token, is the one line on stdout (``--json``: one
JSON object ``{"url", "host", "port", "token", "out"}``); messages go to stderr. Ctrl-C stops the server (exit 130).
``--static DIR`` writes the same page as a folder that opens from disk, and exits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError, Terminated
from .app import app, err, setup_logging
from .options import JsonOpt, MaxPixelsOpt, VerboseOpt, max_pixels_value

DEFAULT_HOST = "127.0.0.1"  # prfnet.view.server.DEFAULT_HOST (not imported: `prfnet --help` loads no torch)
INTERRUPTED = {False: (130, "Ctrl-C"), True: (143, "SIGTERM")}


def _check_options(out: Path, port: int, host: str, static: Path | None, maps: bool) -> None:
    """One-line errors for options that cannot go together, before the output set is read."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in [0, 65535] (0: a free port), got {port}")
    if maps and static is None:
        raise ConfigError("--maps precomputes the score maps of a --static DIR export (a server computes them on "
                          "demand): add --static DIR, or leave --maps out")  # fmt: skip
    if static is not None and (port != 0 or host != DEFAULT_HOST):
        raise ConfigError("--static DIR writes a folder that opens without a server: --port and --host do not apply")
    if not out.exists():
        raise ConfigError(f"{out}: no such folder (give an output folder of prfnet eval, rd or demo)")
    if not out.is_dir():
        raise ConfigError(f"{out} is a file: give an output folder of prfnet eval, rd or demo")


def _export(data, static: Path, maps: bool, limit, open_browser: bool, as_json: bool) -> None:
    from ..view.static import export_static

    summary = export_static(
        data, static, maps=maps, max_pixels=limit, progress=lambda m: err.print(m, highlight=False, soft_wrap=True)
    )
    for image_id, why in summary["skipped"].items():
        err.print(f"warning: {image_id} left out: {why}", highlight=False, soft_wrap=True, markup=False)
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        err.print(f"wrote {summary['images']} images, {summary['thumbs']} thumbnails and {summary['maps']} score maps "
                  f"into {static}; open it from disk:", highlight=False, soft_wrap=True, markup=False)  # fmt: skip
        typer.echo(Path(summary["index"]).resolve().as_uri())
    if open_browser:
        import webbrowser

        webbrowser.open(Path(summary["index"]).resolve().as_uri())


def _serve(data, out: Path, port: int, host: str, open_browser: bool, limit, as_json: bool) -> None:
    from ..view.server import is_loopback, serve

    if not is_loopback(host):
        warning = f"--host {host} serves beyond this machine: whoever reaches it with the URL reads these images"
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)

    def announce(server) -> None:
        if as_json:
            info = {"url": server.url, "host": host, "port": server.port, "token": server.token, "out": str(out)}
            typer.echo(json.dumps(info, allow_nan=False))
        else:
            title = data.document.get("title") or str(out)
            err.print(f"prfnet view: {title}; Ctrl-C stops the server", highlight=False, soft_wrap=True, markup=False)
            typer.echo(server.url)

    stop = None
    try:
        serve(data, host, port, open_browser=open_browser, announce=announce, max_pixels=limit)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (prfnet.cli turns it into Terminated)
        stop = exc
    if stop is None:  # the server was shut down from elsewhere
        return
    # raised outside the handler: main() sees an exit code, not an interruption to report
    code, what = INTERRUPTED[isinstance(stop, Terminated)]
    err.print(f"prfnet view: stopped ({what})", highlight=False, markup=False)
    raise typer.Exit(code)


@app.command(
    epilog="Examples: prfnet view prfnet_demo --open | prfnet view prfnet-eval/clic --port 8765 | "
    "prfnet view prfnet-rd --static rd-view --maps"
)
def view(
    out: Annotated[
        Path, typer.Argument(help="Output folder of prfnet eval clic|bapps|mos|jnd, rd, tune or demo.", metavar="OUT")
    ],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 0,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; anything but loopback prints a warning.")
    ] = DEFAULT_HOST,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    static: Annotated[
        Path | None,
        typer.Option("--static", help="Write the viewer into this folder (opens from disk, no server) and exit."),
    ] = None,
    maps: Annotated[
        bool, typer.Option("--maps", help="With --static: precompute PRFNet's score map of every pair (slow).")
    ] = False,
    as_json: JsonOpt = False,
    max_pixels: MaxPixelsOpt = None,
    verbose: VerboseOpt = False,
):
    """Look at an output set in the browser: the triplets (votes, each metric's verdict, PRFNet's probability;
    filters and sorting), each triplet's images with flicker, synchronised zoom and PRFNet's score maps; RD curves
    whose points open the decoded image; the MOS scatter. Read-only, on this machine only (a token in the URL)."""
    from ..view.catalog import build_view

    setup_logging(verbose)
    _check_options(out, port, host, static, maps)
    limit = max_pixels_value(max_pixels)
    data = build_view(out)
    if static is not None:
        _export(data, static, maps, limit, open_browser, as_json)
    else:
        _serve(data, out, port, host, open_browser, limit, as_json)
