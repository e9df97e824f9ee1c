"""The Typer application object shared by the command modules, and the error boundary."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="prfnet",
    help="PRFNet: which of two compressed images is closer to the reference (full-reference IQA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
eval_app = typer.Typer(help="Evaluate metrics with each benchmark's official protocol.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

#: stderr console for messages, warnings and progress bars; stdout stays clean for --json.
err = Console(stderr=True)

USER_ERROR_EXIT = 2


def fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit to raise (code 2)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(USER_ERROR_EXIT)


def setup_logging(verbose: bool = False) -> None:
    """Warnings only (``--verbose``: info too), for prfnet and for Lightning's chatty start-up lines."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(level)


def warn_random_init() -> None:
    """The loud warning every command prints when it runs an untrained model."""
    err.print("[bold yellow]WARNING: --random-init: untrained weights, the answers below mean NOTHING.[/]")


def view_hint(out: Path) -> str:
    """The last line of demo, eval, rd and tune: the command that shows their output folder ``out`` in the browser."""
    return f"look at them: prfnet view {shlex.quote(str(out))}"
