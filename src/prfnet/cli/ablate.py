"""``prfnet ablate``: train the unablated variants of one config, and compare them (docs/ablations.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
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
)
from .train import trainer_overrides

EPILOG = (
    "Examples: prfnet ablate -c demo --data data/synth --out runs/ablation --variants paper,concat | "
    "prfnet ablate -c clic2022 --data /data/clic --seeds 0,1,2 --alt-backbone resnet50 --devices 4 --strategy ddp | "
    "rerun the same command to resume an interrupted sweep"
)


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _seeds(text: str | None) -> list[int] | None:
    parts = _split(text)
    try:
        return [int(p) for p in parts] or None
    except ValueError:
        raise ConfigError(f"--seeds expects integers separated by commas, got {text!r}") from None


@app.command(epilog=EPILOG)
def ablate(
    config: ConfigOpt,
    data: DataOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Sweep folder (default: runs/ablation-<config name>).")
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            "--variants",
            help="Comma-separated subset of: paper, concat, single_scale, no_attention, step1_only, step2_only, "
            "backbone (needs --alt-backbone). Default: all (and backbone=NAME with --alt-backbone).",
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2 (default: the config's seed).")
    ] = None,
    alt_backbone: Annotated[
        str | None, typer.Option("--alt-backbone", help="A timm model name: adds the variant backbone=NAME.")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap resamples of the intervals.")] = 2000,
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
    """Train each ablation variant of a config (an ordinary resumable run folder per variant and seed), then
    compare their accuracy on the held-out triplets with reference-bootstrap intervals and paired differences.

    Rerunning the same command skips finished runs and resumes interrupted ones; --json prints ablation.json's
    document; --set overrides a key of the base config.
    """
    from ..training import load_train_config, parse_override, resolve_config_path
    from ..training.ablate import run_ablation
    from ..training.run import env_global_rank_is_zero

    setup_logging(verbose)
    values = dict(parse_override(text) for text in overrides or [])
    values.update(trainer_overrides(accelerator, devices, num_nodes, strategy, precision))
    cfg = load_train_config(config, values)
    out_dir = out or Path("runs") / f"ablation-{resolve_config_path(config).stem}"
    result = run_ablation(
        cfg,
        data,
        out_dir,
        variants=_split(variants) or None,
        seeds=_seeds(seeds),
        alt_backbone=alt_backbone,
        progress=not no_progress,
        n_boot=n_boot,
    )
    if not env_global_rank_is_zero():
        return  # DDP worker processes stay quiet
    if as_json:
        typer.echo(json.dumps(result.document, allow_nan=False))
        return
    err.print(f"trained now: {', '.join(result.trained) or 'nothing (every run had finished)'}")
    for variant, entry in result.document["results"].items():
        diff = entry["difference_to_paper"]
        extra = f"  minus paper {diff['mean']:+.4f}" if diff else ""
        typer.echo(f"{variant:>16}: accuracy {entry['mean']['accuracy']:.4f} ({entry['mean']['n_seeds']} seeds){extra}")
    typer.echo(f"results: {result.json_path}")
    typer.echo(f"plot:    {result.plot_path}")
    typer.echo(f"report:  {result.report_path}")
