"""LPIPS (VGG) and DISTS from piq, built from weight files read with ``torch.load(weights_only=True)``.

piq's own ``LPIPS()`` / ``DISTS()`` constructors fetch their weights through ``torch.hub.load_state_dict_from_url``;
here the same piq modules are built from:

* ``vgg16-397923af.pth``: torchvision's ImageNet VGG16 (only the ``features.*`` tensors are used). Looked up in
  ``$PRFNET_BASELINE_WEIGHTS`` (if set), then in ``torch.hub.get_dir()/checkpoints`` (it follows ``$TORCH_HOME``);
  when missing it is downloaded there on first use, as torchvision does: from :data:`VGG16_URL` (overridable by
  ``$PRFNET_VGG16_URL``), with torchvision's check that the file's SHA-256 starts with the hex digits of its name.
  ``$PRFNET_OFFLINE=1`` forbids the download; a failed download (no network, wrong hash) is a one-line
  :class:`MetricUnavailable` saying which file to put where, and no partial file is left behind.
* the LPIPS v0.1 VGG linear layers (5 tensors of 64/128/256/512/512 values) and the DISTS alpha/beta weights
  (1475 values each) as shipped in torchmetrics' wheel (``functional/image/lpips_models/vgg.pth`` and
  ``functional/image/dists_models/weights.pt``). A file ``lpips_weights.pt`` / ``dists_weights.pt`` (piq's copies)
  in the folders above takes precedence.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import torch
from piq import DISTS, LPIPS, ContentLoss
from piq.perceptual import VGG16_LAYERS

from ..errors import CheckpointError, PRFNetError
from ..hub.download import OFFLINE_ENV as ENV_OFFLINE
from ..hub.download import offline

log = logging.getLogger(__name__)

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
VGG16_FILE = "vgg16-397923af.pth"
LPIPS_FILE = "lpips_weights.pt"
DISTS_FILE = "dists_weights.pt"
SMALL_FILES = {"lpips": LPIPS_FILE, "dists": DISTS_FILE}
#: where torchmetrics ships the small weights, relative to its package folder
TORCHMETRICS_FILES = {
    "lpips": "functional/image/lpips_models/vgg.pth",
    "dists": "functional/image/dists_models/weights.pt",
}
ENV_WEIGHTS_DIR = "PRFNET_BASELINE_WEIGHTS"
ENV_VGG16_URL = "PRFNET_VGG16_URL"
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole download
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torchvision / torch.hub: the hex digits after the last '-'
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
VGG_CHANNELS = (64, 128, 256, 512, 512)
DISTS_CHANNELS = (3, *VGG_CHANNELS)  # DISTS also compares the input image itself


class MetricUnavailable(PRFNetError):
    """A known metric that cannot run on this machine (e.g. its weights are not on disk); the message says why."""


def vgg16_url() -> str:
    """URL of the VGG16 ImageNet weights: ``$PRFNET_VGG16_URL`` if set, else torchvision's :data:`VGG16_URL`."""
    return os.environ.get(ENV_VGG16_URL) or VGG16_URL


def vgg16_file() -> str:
    """File name of the VGG16 weights: the last part of :func:`vgg16_url` (``vgg16-397923af.pth`` by default)."""
    return Path(urlparse(vgg16_url()).path).name or VGG16_FILE


def hub_checkpoints() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torchvision caches (and this module downloads) the VGG16 file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_dirs() -> list[Path]:
    """Folders searched for baseline weights, in order: $PRFNET_BASELINE_WEIGHTS, then the torch hub cache."""
    dirs = [Path(os.environ[ENV_WEIGHTS_DIR])] if os.environ.get(ENV_WEIGHTS_DIR) else []
    return [*dirs, hub_checkpoints()]


def find_weight(filename: str) -> Path | None:
    """First existing ``filename`` in :func:`weight_dirs`, or None."""
    return next((d / filename for d in weight_dirs() if (d / filename).is_file()), None)


def bundled_weight(name: str) -> Path | None:
    """torchmetrics' copy of the small weights of ``name`` ("lpips" or "dists"), or None (not installed).

    Found without importing torchmetrics (cheap)."""
    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / TORCHMETRICS_FILES[name]
    return path if path.is_file() else None


def small_weight(name: str) -> Path | None:
    """The LPIPS linear-layer / DISTS alpha-beta file: a local ``lpips_weights.pt`` / ``dists_weights.pt`` in
    :func:`weight_dirs`, else torchmetrics' bundled copy, else None."""
    return find_weight(SMALL_FILES[name]) or bundled_weight(name)


def _not_found(name: str, missing: list[str], why: str) -> str:
    places = " or ".join(str(d) for d in weight_dirs())
    return f"{name.upper()} weights not found: {', '.join(missing)} missing from {places} ({why})"


def unavailable_reason(name: str) -> str | None:
    """None if ``name`` ("lpips" or "dists") can run here, else why not (one line). Cheap: checks files only.

    A missing VGG16 file alone is no reason while downloads are allowed (see :func:`needs_download`)."""
    missing = []
    if find_weight(vgg16_file()) is None and offline():
        missing.append(vgg16_file())
    if small_weight(name) is None:
        missing.append(SMALL_FILES[name])
    if not missing:
        return None
    hints = []
    if vgg16_file() in missing:
        hints.append(f"${ENV_OFFLINE} is set: with internet it is downloaded there on first use")
    if SMALL_FILES[name] in missing:
        hints.append(f"{SMALL_FILES[name]} ships with torchmetrics: pip install torchmetrics")
    hints.append(f"or copy {' and '.join(missing)} there or into ${ENV_WEIGHTS_DIR}")
    return _not_found(name, missing, "; ".join(hints))


def needs_download(name: str) -> bool:
    """True when ``name`` is available but its VGG16 file will be downloaded on first use."""
    return unavailable_reason(name) is None and find_weight(vgg16_file()) is None


def download_vgg16(name: str = "lpips") -> Path:
    """Download the VGG16 weights into :func:`hub_checkpoints` (torchvision's URL and hash check) -> the file.

    Raises :class:`MetricUnavailable` (one line, naming the file, the folder and the cause) when offline or when
    the download fails; a file whose SHA-256 does not start with the hex digits of its name is refused and removed.
    """
    url, filename = vgg16_url(), vgg16_file()
    if offline():
        raise MetricUnavailable(unavailable_reason(name) or _not_found(name, [filename], f"${ENV_OFFLINE} is set"))
    folder = hub_checkpoints()
    target = folder / filename
    match = HASH_REGEX.search(filename)
    hint = f"download it from {url} with internet, or copy it there or into ${ENV_WEIGHTS_DIR}"
    previous_timeout = socket.getdefaulttimeout()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log.warning("downloading %s to %s (first use of %s)", url, target, name)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        torch.hub.download_url_to_file(
            url, str(target), hash_prefix=match.group(1) if match else None, progress=sys.stderr.isatty()
        )
    except Exception as exc:  # no network, HTTP error, wrong hash, full disk, ...
        cause = " ".join(str(exc).split()) or type(exc).__name__
        raise MetricUnavailable(_not_found(name, [filename], f"its download failed: {cause}; {hint}")) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return target


def _load(path: Path | None, filename: str):
    if path is None:
        raise CheckpointError(f"{filename}: not found in {', '.join(str(d) for d in weight_dirs())}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise CheckpointError(f"{path}: cannot read weights ({' '.join(str(exc).split())})") from None


def vgg16_features(name: str = "lpips") -> torch.nn.Sequential:
    """torchvision's VGG16 ``features`` with the ImageNet weights of :func:`vgg16_file` (downloaded if missing and
    allowed), frozen, eval mode. Input: ImageNet-normalised (N, 3, H, W)."""
    from torchvision.models.vgg import cfgs, make_layers

    path = find_weight(vgg16_file()) or download_vgg16(name)
    features = make_layers(cfgs["D"])
    state = _load(path, vgg16_file())
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a VGG16 state dict")
    feature_state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(feature_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: not torchvision VGG16 weights ({' '.join(str(exc).split())})") from None
    return features.requires_grad_(False).eval()


def _per_channel(tensors, channels: tuple[int, ...], path: Path) -> list[torch.Tensor]:
    tensors = list(tensors)
    if len(tensors) != len(channels) or any(
        not isinstance(t, torch.Tensor) or t.numel() != c for t, c in zip(tensors, channels, strict=False)
    ):
        raise CheckpointError(f"{path}: expected {len(channels)} tensors of {channels} values")
    return [t.reshape(1, c, 1, 1).float() for t, c in zip(tensors, channels, strict=True)]


def lpips_layer_weights() -> list[torch.Tensor]:
    """The 5 LPIPS v0.1 VGG linear layers as piq wants them: tensors (1, C, 1, 1), C = 64, 128, 256, 512, 512.

    Accepts piq's ``lpips_weights.pt`` (a list) and the ``lpips`` / torchmetrics state dict ``vgg.pth``
    (keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``, read in key order)."""
    path = small_weight("lpips")
    raw = _load(path, LPIPS_FILE)
    values = [raw[k] for k in sorted(raw)] if isinstance(raw, dict) else raw
    return _per_channel(values, VGG_CHANNELS, path)


def dists_layer_weights() -> list[torch.Tensor]:
    """The 12 DISTS weights as piq wants them: alpha then beta, each split into (1, C, 1, 1), C = 3, 64, 128,
    256, 512, 512, divided by their joint sum (as DISTS does; identical images -> 0)."""
    path = small_weight("dists")
    raw = _load(path, DISTS_FILE)
    if not isinstance(raw, dict) or not {"alpha", "beta"} <= raw.keys():
        raise CheckpointError(f"{path}: expected a dict with 'alpha' and 'beta'")
    for key in ("alpha", "beta"):
        if not isinstance(raw[key], torch.Tensor) or raw[key].numel() != sum(DISTS_CHANNELS):
            raise CheckpointError(f"{path}: '{key}' must hold {sum(DISTS_CHANNELS)} values")
    total = raw["alpha"].float().sum() + raw["beta"].float().sum()
    weights = []
    for key in ("alpha", "beta"):
        weights += _per_channel((raw[key].float() / total).flatten().split(DISTS_CHANNELS), DISTS_CHANNELS, path)
    return weights


class LocalLPIPS(LPIPS):
    """piq's LPIPS-VGG (v0.1 linear layers). ``forward(dist, ref)``: (N, 3, H, W) in [0, 1] -> (N,) distance
    >= 0, lower = closer, 0 for identical images. Skips ``LPIPS.__init__`` (it downloads); the rest is piq's."""

    def __init__(self) -> None:
        weights = lpips_layer_weights()  # before the VGG16 file: a broken small file fails without a download
        ContentLoss.__init__(
            self,
            feature_extractor=vgg16_features("lpips"),
            layers=[VGG16_LAYERS[layer] for layer in VGG_LAYERS],
            weights=weights,
            distance="mse",
            reduction="none",
            normalize_features=True,
        )


class LocalDISTS(DISTS):
    """piq's DISTS. ``forward(dist, ref)``: (N, 3, H, W) in [0, 1] -> (N,) distance in [0, 1], lower = closer
    (images with a side > 256 are resized to 256, as DISTS does). Skips ``DISTS.__init__`` (it downloads)."""

    def __init__(self) -> None:
        weights = dists_layer_weights()
        ContentLoss.__init__(
            self,
            feature_extractor=vgg16_features("dists"),
            layers=[VGG16_LAYERS[layer] for layer in VGG_LAYERS],
            weights=weights,
            replace_pooling=True,  # DISTS uses L2 pooling instead of max pooling
            reduction="none",
            normalize_features=False,
            allow_layers_weights_mismatch=True,
        )


def build_learned(name: str) -> torch.nn.Module:
    """The LPIPS or DISTS module, in eval mode; downloads the VGG16 file on first use (see :func:`download_vgg16`).

    Raises :class:`MetricUnavailable` when it cannot run here, :class:`CheckpointError` for a malformed file."""
    if (reason := unavailable_reason(name)) is not None:
        raise MetricUnavailable(reason)
    module = LocalLPIPS() if name == "lpips" else LocalDISTS()
    return module.eval()
