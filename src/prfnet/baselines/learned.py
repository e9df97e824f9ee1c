"""LPIPS (VGG) and DISTS from piq, built only from weight files already on disk: nothing is ever downloaded.

piq's own ``LPIPS()`` / ``DISTS()`` constructors fetch their weights from the internet through
``torch.hub.load_state_dict_from_url`` (which also unpickles without ``weights_only``). Here the same piq
modules are built from local files, read with ``torch.load(weights_only=True)``:

* ``vgg16-397923af.pth``: torchvision's ImageNet VGG16 (only the ``features.*`` tensors are used),
* ``lpips_weights.pt``: piq's copy of the LPIPS v0.1 VGG linear layers (5 tensors of 64/128/256/512/512 values),
* ``dists_weights.pt``: piq's copy of the DISTS alpha/beta weights (dict with 'alpha' and 'beta', 1475 values each).

They are looked up in ``$PRFNET_BASELINE_WEIGHTS`` (if set) and then in ``torch.hub.get_dir()/checkpoints``, the
folder where torchvision and piq cache them (it follows ``$TORCH_HOME``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from piq import DISTS, LPIPS, ContentLoss
from piq.perceptual import VGG16_LAYERS

from ..errors import CheckpointError

VGG16_FILE = "vgg16-397923af.pth"
LPIPS_FILE = "lpips_weights.pt"
DISTS_FILE = "dists_weights.pt"
WEIGHT_FILES = {"lpips": (VGG16_FILE, LPIPS_FILE), "dists": (VGG16_FILE, DISTS_FILE)}
ENV_WEIGHTS_DIR = "PRFNET_BASELINE_WEIGHTS"
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
VGG_CHANNELS = (64, 128, 256, 512, 512)
DISTS_CHANNELS = (3, *VGG_CHANNELS)  # DISTS also compares the input image itself


def weight_dirs() -> list[Path]:
    """Folders searched for baseline weights, in order: $PRFNET_BASELINE_WEIGHTS, then the torch hub cache."""
    dirs = [Path(os.environ[ENV_WEIGHTS_DIR])] if os.environ.get(ENV_WEIGHTS_DIR) else []
    return [*dirs, Path(torch.hub.get_dir()) / "checkpoints"]


def find_weight(filename: str) -> Path | None:
    """First existing ``filename`` in :func:`weight_dirs`, or None."""
    return next((d / filename for d in weight_dirs() if (d / filename).is_file()), None)


def unavailable_reason(name: str) -> str | None:
    """None if the weight files of ``name`` ("lpips" or "dists") are present, else why it cannot run here."""
    missing = [f for f in WEIGHT_FILES[name] if find_weight(f) is None]
    if not missing:
        return None
    places = " or ".join(str(d) for d in weight_dirs())
    return (
        f"{name.upper()} weights not found: {', '.join(missing)} missing from {places} "
        f"(nothing is downloaded; copy the files there or set ${ENV_WEIGHTS_DIR})"
    )


def _load(filename: str):
    path = find_weight(filename)
    if path is None:
        raise CheckpointError(f"{filename}: not found in {', '.join(str(d) for d in weight_dirs())}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None


def vgg16_features() -> torch.nn.Sequential:
    """torchvision's VGG16 ``features`` with the ImageNet weights of ``vgg16-397923af.pth``, frozen, eval mode."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"])
    state = _load(VGG16_FILE)
    if not isinstance(state, dict):
        raise CheckpointError(f"{find_weight(VGG16_FILE)}: expected a VGG16 state dict")
    feature_state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(feature_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{find_weight(VGG16_FILE)}: not torchvision VGG16 weights ({exc})") from None
    return features.requires_grad_(False).eval()


def _per_channel(tensors, channels: tuple[int, ...], filename: str) -> list[torch.Tensor]:
    tensors = list(tensors)
    if len(tensors) != len(channels) or any(
        not isinstance(t, torch.Tensor) or t.numel() != c for t, c in zip(tensors, channels, strict=False)
    ):
        raise CheckpointError(f"{find_weight(filename)}: expected {len(channels)} tensors of {channels} values")
    return [t.reshape(1, c, 1, 1).float() for t, c in zip(tensors, channels, strict=True)]


class LocalLPIPS(LPIPS):
    """piq's LPIPS-VGG (v0.1 linear layers) from local files. ``forward(dist, ref)``: (N, 3, H, W) in [0, 1] ->
    (N,) distance >= 0, lower = closer. Skips ``LPIPS.__init__`` (it downloads); everything else is piq's."""

    def __init__(self) -> None:
        raw = _load(LPIPS_FILE)
        values = [raw[k] for k in sorted(raw)] if isinstance(raw, dict) else raw
        ContentLoss.__init__(
            self,
            feature_extractor=vgg16_features(),
            layers=[VGG16_LAYERS[layer] for layer in VGG_LAYERS],
            weights=_per_channel(values, VGG_CHANNELS, LPIPS_FILE),
            distance="mse",
            reduction="none",
            normalize_features=True,
        )


class LocalDISTS(DISTS):
    """piq's DISTS from local files. ``forward(dist, ref)``: (N, 3, H, W) in [0, 1] -> (N,) distance, lower =
    closer (images with a side > 256 are resized to 256, as DISTS does). Skips ``DISTS.__init__`` (it downloads)."""

    def __init__(self) -> None:
        raw = _load(DISTS_FILE)
        if not isinstance(raw, dict) or not {"alpha", "beta"} <= raw.keys():
            raise CheckpointError(f"{find_weight(DISTS_FILE)}: expected a dict with 'alpha' and 'beta'")
        for key in ("alpha", "beta"):
            if not isinstance(raw[key], torch.Tensor) or raw[key].numel() != sum(DISTS_CHANNELS):
                raise CheckpointError(f"{find_weight(DISTS_FILE)}: '{key}' must hold {sum(DISTS_CHANNELS)} values")
        # DISTS divides alpha and beta by their joint sum (identical images -> 0); a no-op for pre-normalised files
        total = raw["alpha"].sum() + raw["beta"].sum()
        weights = []
        for key in ("alpha", "beta"):
            weights += _per_channel((raw[key] / total).flatten().split(DISTS_CHANNELS), DISTS_CHANNELS, DISTS_FILE)
        ContentLoss.__init__(
            self,
            feature_extractor=vgg16_features(),
            layers=[VGG16_LAYERS[layer] for layer in VGG_LAYERS],
            weights=weights,
            replace_pooling=True,  # DISTS uses L2 pooling instead of max pooling
            reduction="none",
            normalize_features=False,
            allow_layers_weights_mismatch=True,
        )


def build_learned(name: str) -> torch.nn.Module:
    """The LPIPS or DISTS module, in eval mode (weights must be present: see :func:`unavailable_reason`)."""
    module = LocalLPIPS() if name == "lpips" else LocalDISTS()
    return module.eval()
