"""``prfnet fetch``: download a public data set (CLIC, BAPPS), verify it, unpack it safely and lay it out for
``prfnet train`` / ``prfnet eval`` (``docs/fetch.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .app import app, err, setup_logging
from .options import JsonOpt, NoProgressOpt, VerboseOpt


def _list(as_json: bool) -> None:
    from ..fetch import CATALOG
    from ..hub import human_size

    rows = [
        {
            "name": ds.name,
            "purpose": ds.purpose,
            "download_size": ds.download_size,
            "size_source": "published" if ds.sizes_known else "estimated",
            "size_note": ds.size_note,
            "files": len(ds.files),
            "urls": [f.url for f in ds.files],
            "source": ds.source,
            "terms": ds.terms,
            "folder": ds.folder,
        }
        for ds in CATALOG.values()
    ]
    if as_json:
        typer.echo(json.dumps({"datasets": rows}, allow_nan=False))
        return
    for row in rows:
        size = f"{human_size(row['download_size'])} ({row['size_source']})"
        host = row["urls"][0].split("/")[2]
        files = f"{row['files']} files" if row["files"] > 1 else "1 file"
        typer.echo(f"{row['name']:<17} {size:<21} {row['purpose']}")
        typer.echo(f"{'':<17} from {host} ({files}); {row['terms']}")


def _dry_run(names: list[str], to: Path, as_json: bool, offline: bool = False) -> None:
    from ..fetch import plan
    from ..hub import human_size

    result = plan(names, to, ask_server=not offline)
    if as_json:
        typer.echo(json.dumps(result, allow_nan=False))
        return
    asked = "offline: the server was not asked" if result["offline"] else "HEAD failed: size unknown"
    for ds in result["datasets"]:
        state = "already complete" if ds["complete"] else f"into {ds['folder']}"
        typer.echo(f"{ds['name']}: {state}")
        for f in ds["files"]:
            server = f"server: {human_size(f['server_size'])}" if f["server_size"] is not None else asked
            have = "already downloaded" if f["present"] else f"{human_size(f['size'])} {f['size_source']}; {server}"
            typer.echo(f"  {f['url']}  ({have}; checksum: {f['checksum']})")
        typer.echo(f"  unpacked: {human_size(ds['unpacked'])} ({ds['size_note']})")
    typer.echo(f"disk needed: about {human_size(result['disk_needed'])} in {result['to']}; nothing downloaded")


def _progress_factory(enabled: bool):
    """A rich progress bar per download on stderr, or None."""
    if not enabled:
        return None, None
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err,
                   transient=True)  # fmt: skip

    def factory(description: str, size: int | None):
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return update

    return bar, factory


@app.command(
    epilog="Examples: prfnet fetch --list; prfnet fetch clic2021-test --to data --dry-run; "
    "prfnet fetch bapps-2afc-val --to data",
)
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Data sets (see --list).", show_default=False)] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Folder the data sets go to (DIR/<folder>).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="The data sets: what for, size, where from.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="What would be downloaded, the disk needed.")] = False,
    no_keep_archives: Annotated[
        bool, typer.Option("--no-keep-archives", help="Remove the archives this run downloaded once laid out.")
    ] = False,
    offline_: Annotated[
        bool, typer.Option("--offline", help="No network: use only files already in DIR/downloads.")
    ] = False,
    no_progress: NoProgressOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Download, verify, unpack and lay out public data sets for train and eval (docs/fetch.md)."""
    from ..fetch import dataset
    from ..fetch import fetch as fetch_sets

    setup_logging(verbose)
    if list_:
        _list(as_json)
        return
    if not names:
        raise ConfigError("name a data set to fetch (prfnet fetch --list shows them)")
    for name in names:
        dataset(name)  # an unknown name: one line, before anything else
    if to is None:
        raise ConfigError("--to DIR is required: the folder the data sets go to")
    if dry_run:
        _dry_run(names, to, as_json, offline_)
        return

    def say(message: str) -> None:
        err.print(message, highlight=False, soft_wrap=True, markup=False)

    bar, factory = _progress_factory(not no_progress and not offline_)
    if bar is not None:
        with bar:
            results = fetch_sets(names, to, say, factory, not no_keep_archives, offline_)
    else:
        results = fetch_sets(names, to, say, None, not no_keep_archives, offline_)
    if as_json:
        typer.echo(json.dumps({"datasets": results}, allow_nan=False))
        return
    for result in results:
        for command in result["next"]:
            typer.echo(f"next: {command}")
        for note in result["notes"]:
            typer.echo(f"note: {note}")
