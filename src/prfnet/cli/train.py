"""``prfnet train``: two-step PRFNet training (classification, then regression) from a YAML config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .app import app, err, setup_logging
from .options import (
    AcceleratorOpt,
    ConfigOpt,
    DataOpt,
    DevicesOpt,
    JsonOpt,
    NoProgressOpt,
    NumNodesOpt,
    OverridesOpt,
    StrategyOpt,
    TrainPrecisionOpt,
    VerboseOpt,
    devices_value,
)

EPILOG = (
    "Examples: prfnet synth data/synth && prfnet train --config demo --data data/synth --out runs/demo | "
    "prfnet train -c clic2022 --data /data/clic --devices 4 --strategy ddp --precision bf16-mixed | "
    "prfnet train -c demo --out runs/demo --resume | prfnet train -c demo --set steps.regression.epochs=0"
)


def trainer_overrides(accelerator, devices, num_nodes, strategy, precision) -> dict:
    flags = {
        "trainer.accelerator": accelerator,
        "trainer.devices": devices_value(devices),
        "trainer.num_nodes": num_nodes,
        "trainer.strategy": strategy,
        "trainer.precision": precision,
    }
    return {k: v for k, v in flags.items() if v is not None}


@app.command(epilog=EPILOG)
def train(
    config: ConfigOpt,
    data: DataOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default: runs/<config name>).")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out from its newest readable checkpoint (data folder: the run's, "
            "unless --data is given).",
        ),
    ] = False,
    devices: DevicesOpt = None,
    accelerator: AcceleratorOpt = None,
    num_nodes: NumNodesOpt = None,
    strategy: StrategyOpt = None,
    precision: TrainPrecisionOpt = None,
    overrides: OverridesOpt = None,
    no_progress: NoProgressOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
):
    """Train PRFNet in two steps: classification (BCE), then regression (MSE on the vote fraction).

    Step 2 starts from the step-1 weights. Writes checkpoints, metrics.csv, report.html and model.safetensors
    to --out; --resume continues an interrupted or killed run from its newest readable checkpoint. --json prints
    the outputs' paths and the best validation epoch.
    """
    from ..training import load_train_config, parse_override, resolve_config_path
    from ..training import train as run_training
    from ..training.run import env_global_rank_is_zero

    setup_logging(verbose)
    values = dict(parse_override(text) for text in overrides or [])
    values.update(trainer_overrides(accelerator, devices, num_nodes, strategy, precision))
    cfg = load_train_config(config, values)
    out_dir = out or Path("runs") / resolve_config_path(config).stem
    result = run_training(cfg, data, out_dir, resume=resume, progress=not no_progress)
    if not env_global_rank_is_zero():
        return  # DDP worker processes stay quiet
    if as_json:
        document = {
            "model": str(result.model_path),
            "metrics_csv": str(result.metrics_csv),
            "report": str(result.report_path),
            "best_val": result.best_val,
            "already_finished": result.already_finished,
        }
        typer.echo(json.dumps(document))
        return
    if result.already_finished:
        err.print(f"{out_dir}: this run has already finished; nothing to do")
    best = result.best_val
    if best:
        err.print(f"best validation: {best['step']} epoch {best['epoch']}: accuracy {best['val_acc']:.4f}")
    typer.echo(f"model:   {result.model_path}")
    typer.echo(f"metrics: {result.metrics_csv}")
    typer.echo(f"report:  {result.report_path}")
