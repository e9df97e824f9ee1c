"""``prfnet demo``: the whole pipeline on the embedded synthetic data, on CPU, in minutes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .app import app, err, setup_logging, view_hint
from .options import JsonOpt, RuntimeOpt, ThreadsOpt, VerboseOpt


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _with_ci(value, ci) -> str:
    return _fmt(value) if value is None or not ci else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


@app.command(epilog="Example: prfnet demo --out prfnet_demo && open prfnet_demo/report.html")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder (a previous demo in it is replaced).")] = Path(
        "prfnet_demo"
    ),
    refs: Annotated[int, typer.Option("--refs", min=4, help="Reference images (photo crops, then procedural).")] = 48,
    size: Annotated[
        int, typer.Option("--size", min=256, help="Image side in pixels (codec rate floors need >= 256).")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the data, split and training.")] = 0,
    config: Annotated[str, typer.Option("--config", help="Training config: name or YAML path.")] = "demo",
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metrics (default: prfnet and the baselines that need no download: LPIPS and "
            "DISTS only when their VGG16 weights are already on disk).",
        ),
    ] = None,
    runtime: RuntimeOpt = "torch",
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    verbose: VerboseOpt = False,
):
    """Run the whole pipeline on a simulated CLIC task: synth (real codecs, simulated votes), train, eval, compare.

    Trains PRFNet (both steps) on two thirds of the references, evaluates it against the baselines on the held-out
    third with 95 % intervals, paired differences, calibration and the hidden judge's ceiling, and writes
    report.html, model.safetensors and results.json to --out (--json: results.json on stdout too). CPU, about 2
    minutes on 2 quiet cores.
    """
    from ..demo import run_demo
    from ..stats.intervals import difference_cell

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
        runtime=runtime,
        threads=threads,
    )
    elapsed = time.perf_counter() - start
    if as_json:
        typer.echo(json.dumps(result.results))
        return
    table = Table(title="held-out accuracy, 95 % intervals over references (simulated votes)")
    for column in ("metric", "accuracy", "psnr_close", "psnr_apart", "prfnet - metric"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, entry in result.results.items():
        by_kind = entry["accuracy_by_kind"]
        table.add_row(
            name,
            _with_ci(entry["accuracy"], entry.get("accuracy_ci95")),
            _fmt(by_kind["psnr_close"]),
            _fmt(by_kind["psnr_apart"]),
            difference_cell(entry),
        )
    console = Console(soft_wrap=True)
    console.print(table)
    ceiling = result.ceiling
    console.print(
        f"ceiling: the hidden judge scores {_with_ci(ceiling['judge_accuracy'], ceiling['judge_accuracy_ci95'])} on "
        f"the same {ceiling['n_keys']} keys (noise ceiling of the votes {ceiling['noise_ceiling']:.3f})",
        highlight=False,
    )
    prfnet = result.results.get("prfnet", {})
    if prfnet.get("brier") is not None:
        console.print(
            f"prfnet Brier score against the vote fractions: {_fmt(prfnet.get('brier_step1'))} after step 1, "
            f"{prfnet['brier']:.3f} after step 2 (ECE {_fmt(prfnet.get('ece'))})",
            highlight=False,
        )
    for name, reason in result.unavailable.items():
        console.print(f"{name}: unavailable ({reason})", highlight=False, markup=False)
    c, t = result.comparison, result.compared
    console.print(
        f"compare {t.ref} {t.a} {t.b}: closer {c.closer} (P(A closer) = {c.prob_a:.3f}, "
        f"score A {c.score_a:.4f}, score B {c.score_b:.4f})",
        highlight=False,
    )
    console.print(f"wrote {result.report_path}, {result.model_path}, {result.results_path} in {elapsed:.0f} s")
    console.print(view_hint(out), highlight=False, markup=False)
