"""``prfnet export``: the model's ``score`` or ``compare`` as an ONNX graph (the ``onnx`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .app import app, fail, setup_logging
from .loading import model_loader
from .options import BackboneOpt, CheckpointOpt, RandomOpt, VerboseOpt


@app.command(epilog="Example: prfnet export --onnx prfnet.onnx --what compare -c prfnet.safetensors")
def export(
    onnx: Annotated[Path, typer.Option("--onnx", help="Output .onnx file (written atomically).")],
    what: Annotated[
        str,
        typer.Option(
            "--what",
            help="score: (ref, dist) -> score; compare: (ref, a, b) -> prob_a, score_a, score_b.",
        ),
    ] = "score",
    checkpoint: CheckpointOpt = None,
    random_init: RandomOpt = False,
    backbone: BackboneOpt = "seres2net50",
    verbose: VerboseOpt = False,
):
    """Export to ONNX (opset 17; dynamic batch, height and width; float32 RGB in [0, 1]); see docs/export.md."""
    from rich.markup import escape

    from ..model.export import OPSET, WHAT, export_onnx, require_onnx
    from ..outputs import check_output_dir

    setup_logging(verbose)
    if what not in WHAT:
        raise ConfigError(f"--what must be one of {', '.join(WHAT)}, got {what!r}")
    try:
        require_onnx()  # before loading a large checkpoint
    except ConfigError as exc:
        raise fail(escape(str(exc))) from None  # "prfnet[onnx]" is not rich markup
    if onnx.is_dir():
        raise ConfigError(f"--onnx {onnx} is a directory; give a file name such as {onnx / 'prfnet.onnx'}")
    check_output_dir(onnx.parent, "the folder of --onnx")  # writable, no file in the way: before the model loads
    model = model_loader(checkpoint, "cpu", random_init, backbone)()
    path = export_onnx(model, onnx, what)
    typer.echo(f"wrote {path} ({what}, opset {OPSET}; dynamic batch, height, width)")
