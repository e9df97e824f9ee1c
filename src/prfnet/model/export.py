"""ONNX export of :meth:`PRFNet.score` and :meth:`PRFNet.compare` (the ``onnx`` extra), and of the two graphs the
ONNX Runtime scores with (:func:`export_scoring_graphs`, :mod:`prfnet.model.runtime`).

The graph is traced with PyTorch's TorchScript-based exporter (``dynamo=False``) at opset :data:`OPSET`, with
dynamic batch, height and width: inputs are float32 (N, 3, H, W) RGB in [0, 1], every input of one call with
the same N, H and W (H, W >= 32). ImageNet normalisation is inside the graph; input checks are not (the caller
keeps values in [0, 1]). Whole images only: a model with tiling on is refused (tiling depends on the size).

* ``score``: inputs ``ref``, ``dist``; output ``score`` (N,) float32 >= 0, lower = closer.
* ``compare``: inputs ``ref``, ``a``, ``b``; outputs ``prob_a`` (N,) = P(A closer to ref) in [0, 1],
  ``score_a``, ``score_b`` (N,) distances (``prob_a = sigmoid(score_b - score_a)``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, OutputError
from ..ioutil import atomic_write

#: ONNX opset of the exported graphs (supported by torch's TorchScript exporter and onnxruntime >= 1.16)
OPSET = 17
WHAT = ("score", "compare")
SAMPLE_SIZE = (64, 64)  # the size traced; height and width stay dynamic


class _Score(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.head(m.pair_vector(m.features(ref), m.features(dist)))


class _Compare(_Score):
    def forward(self, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
        m = self.model
        ref_feats = m.features(ref)
        score_a = m.head(m.pair_vector(ref_feats, m.features(a)))
        score_b = m.head(m.pair_vector(ref_feats, m.features(b)))
        return torch.sigmoid(score_b - score_a), score_a, score_b


def require_onnx() -> None:
    """:class:`ConfigError` (one line, naming the extra) unless onnx is importable."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'prfnet[onnx]'") from None


def check_exportable(model, whole_images: bool = True) -> None:
    """:class:`ConfigError` for a model no graph can be traced from (tiling on when ``whole_images``, a compiled
    backbone, no onnx), :class:`CheckpointError` for weights that are not finite (``compare`` would refuse their
    outputs)."""
    if whole_images and model.config.tile_size is not None:
        raise ConfigError("ONNX export works on whole images: load the model without tiling (set_tiling(None))")
    if getattr(model, "inference_only", False):
        raise ConfigError("export the original checkpoint, not a model compiled with optimize_for_inference")
    require_onnx()
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not tensor.isfinite().all()
    ]
    if bad:
        source = getattr(model, "source", None) or "the model"
        raise CheckpointError(
            f"{source}: {len(bad)} weight tensors hold NaN or infinite values (first: {bad[0]}): its weights have "
            "diverged or are corrupt; export another checkpoint"
        )


@contextmanager
def plain_cpu(model):
    """``model`` on the CPU in eval mode, float32, without its inference policy or runtime (what a graph is traced
    from); on exit its device, modes, policy and runtime are as they were."""
    device, modes = model.device, [(m, m.training) for m in model.modules()]
    inference, runtime = model.inference, getattr(model, "runtime", None)
    try:
        model.to("cpu").eval()
        model.inference = type(inference)()  # the plain path: no autocast, no channels-last in the graph
        model.runtime = None
        yield model
    finally:
        model.inference, model.runtime = inference, runtime
        model.to(device)
        for module, mode in modes:
            module.training = mode


def trace(graph: nn.Module, samples: tuple, path, names: list[str], outputs: list[str], axes: dict, opset: int,
          label: str = "") -> Path:  # fmt: skip
    """Trace ``graph`` on ``samples`` into an ONNX file at ``path`` (written atomically) with the dynamic ``axes``;
    :class:`OutputError` (``label`` + path: what the user called it) when the file cannot be written."""
    graph.eval()  # the exporter restores the wrapper's mode afterwards, and with it the model's
    try:
        with atomic_write(path, "wb") as f, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, not gone; tracer notes
            torch.onnx.export(
                graph,
                samples,
                f,
                input_names=names,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
    except OSError as exc:  # a full disk, a folder that vanished: the atomic write left nothing behind
        raise OutputError(f"{label}{path}: cannot write the graph ({exc.strerror or exc})") from None
    return Path(path)


def export_onnx(model, path: str | Path, what: str = "score", opset: int = OPSET) -> Path:
    """Write ``model``'s ``score`` or ``compare`` as an ONNX graph to ``path`` (written atomically); returns the
    path. See the module doc for inputs, outputs and dynamic axes. The model is exported on the CPU in eval mode
    and float32, then left in its former mode and device. Weights that are not finite are a :class:`CheckpointError`
    (``compare`` would refuse their outputs); a write that fails (full disk) an :class:`OutputError`."""
    if what not in WHAT:
        raise ConfigError(f"--what must be one of {WHAT}, got {what!r}")
    check_exportable(model)
    names = ["ref", "dist"] if what == "score" else ["ref", "a", "b"]
    outputs = ["score"] if what == "score" else ["prob_a", "score_a", "score_b"]
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in names} | {n: {0: "batch"} for n in outputs}
    samples = tuple(torch.rand(1, 3, *SAMPLE_SIZE) for _ in names)
    with plain_cpu(model):
        graph = (_Score if what == "score" else _Compare)(model)
        return trace(graph, samples, path, names, outputs, axes, opset, label="--onnx ")


class Encoder(nn.Module):
    """``features`` as a graph: input ``image`` (N, 3, H, W) float32 in [0, 1]; outputs ``level_<s>`` (N, C_s, H_s,
    W_s), the channel-unit-normalised backbone maps the fusion reads (``model.levels``, finest first)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        return tuple(self.model.features(image))


class PairVector(nn.Module):
    """``pair_vector`` as a graph: inputs ``ref_<s>`` (1 or N, C_s, H_s, W_s) and ``dist_<s>`` (N, ...) for each level;
    output ``vector`` (N, F) >= 0 (a reference batch of 1 broadcasts)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *maps: torch.Tensor):
        half = len(maps) // 2
        return self.model.pair_vector(list(maps[:half]), list(maps[half:]))


def export_scoring_graphs(model, encoder_path: str | Path, pair_path: str | Path, opset: int = OPSET) -> None:
    """Write the two graphs an ONNX Runtime scores with (:class:`Encoder`, :class:`PairVector`), with dynamic batch
    and sizes; the head, tiling and every input check stay in Python (:mod:`prfnet.model.runtime`)."""
    check_exportable(model, whole_images=False)
    levels = [f"level_{s}" for s in model.levels]
    spatial = {0: "batch", 2: "height", 3: "width"}
    with plain_cpu(model):
        image = torch.rand(1, 3, *SAMPLE_SIZE)
        axes = {"image": spatial} | dict.fromkeys(levels, spatial)
        trace(Encoder(model), (image,), encoder_path, ["image"], levels, axes, opset)
        ref = model.features(image)
        dist = model.features(torch.rand(2, 3, *SAMPLE_SIZE))  # batch 2 against 1: the broadcast is traced
        names = [f"ref_{s}" for s in model.levels] + [f"dist_{s}" for s in model.levels]
        axes = {n: {0: f"{n[:4]}_batch", 2: f"h{n[-1]}", 3: f"w{n[-1]}"} for n in names} | {"vector": {0: "batch"}}
        trace(PairVector(model), (*ref, *dist), pair_path, names, ["vector"], axes, opset)
