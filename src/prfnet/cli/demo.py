"""``prfnet demo``: the whole pipeline on the embedded synthetic data, on CPU, in minutes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .app import app, err, setup_logging


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command(epilog="Example: prfnet demo --out prfnet_demo && open prfnet_demo/report.html")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder (a previous demo in it is replaced).")] = Path(
        "prfnet_demo"
    ),
    refs: Annotated[int, typer.Option("--refs", min=4, help="Synthetic reference images.")] = 12,
    size: Annotated[
        int, typer.Option("--size", min=64, help="Image side in pixels (the training crops shrink to it if larger).")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the data, split and training.")] = 0,
    config: Annotated[str, typer.Option("--config", help="Training config: name or YAML path.")] = "demo",
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", help="Comma-separated metrics (default: prfnet and every offline baseline)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results.json to stdout.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
):
    """Run the whole pipeline on embedded synthetic data: synth, train, eval, report, compare.

    Trains PRFNet (both steps) on 75% of the synthetic references, evaluates it against the baselines on the
    held-out ones, and writes report.html, model.safetensors and results.json to --out. CPU, a few minutes.
    """
    from ..demo import run_demo

    setup_logging(verbose)
    start = time.perf_counter()
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    result = run_demo(
        out,
        refs,
        size,
        seed,
        config=config,
        metrics=names,
        progress=progress,
        stage=lambda s: err.print(f"[bold]{s}", soft_wrap=True),
    )
    elapsed = time.perf_counter() - start
    if as_json:
        typer.echo(json.dumps(result.results))
        return
    table = Table(title="held-out accuracy (synthetic labels)")
    for column in ("metric", "accuracy", "within_family", "matched_mse"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, entry in result.results.items():
        by_kind = entry["accuracy_by_kind"]
        table.add_row(name, _fmt(entry["accuracy"]), _fmt(by_kind["within_family"]), _fmt(by_kind["matched_mse"]))
    console = Console(soft_wrap=True)
    console.print(table)
    for name, reason in result.unavailable.items():
        console.print(f"{name}: unavailable ({reason})", highlight=False)
    c, t = result.comparison, result.compared
    console.print(
        f"compare {t.ref} {t.a} {t.b}: closer {c.closer} (P(A closer) = {c.prob_a:.3f}, "
        f"score A {c.score_a:.4f}, score B {c.score_b:.4f})",
        highlight=False,
    )
    console.print(f"wrote {result.report_path}, {result.model_path}, {result.results_path} in {elapsed:.0f} s")
