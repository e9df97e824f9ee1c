"""Multi-scale feature extractors built with timm, and how their SE gates and batch norms behave.

The paper's feature extractor (arXiv 2401.06992: "multi-scale features using a pre-trained SE Res2Net50 network",
shared by the reference and the distorted images) is ``seres2net50`` below; the identity-initialised SE gates and
the freezable batch norms are ours (``docs/design.md``, decisions 6 and 7).

The default, ``seres2net50``, is timm's Res2Net-50 (26w x 4s) with a squeeze-and-excitation module in
every bottleneck. No public ImageNet weights exist for that exact network, so ``pretrained=True``
loads timm's ``res2net50_26w_4s`` ImageNet weights into it; the SE modules are new. With the default
``se_gate="identity"`` (:class:`IdentityInitSE`) each new gate is exactly 1 at initialisation, so the
network starts by computing the plain ImageNet Res2Net-50 features.

Batch norms are replaced by :class:`FreezableBatchNorm2d` (same tensors, same state-dict keys), whose
running statistics can be frozen whatever ``.training`` says (see :func:`freeze_norm_statistics`).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import timm
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.layers import SEModule, make_divisible
from timm.layers.norm_act import BatchNormAct2d
from torch import nn

from ..errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

SE_RES2NET50 = "seres2net50"
_RES2NET_ARCH = "res2net50_26w_4s"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ``se_gate`` choices: a gate of 2 * sigmoid(.) that starts at exactly 1, or timm's plain SE (sigmoid gate
#: around 0.5 at initialisation, which the models of format 1 used)
SE_GATES = ("identity", "sigmoid")
#: ``backbone_norm`` choices: BatchNorm statistics frozen, or batch statistics shared by R, A and B
BACKBONE_NORMS = ("frozen", "batch")
#: peak memory of whole-image scoring, in bytes per pixel per image of the call (reference included), float32 on
#: the CPU: the peak-RSS increase of ``PRFNet(name).rank(ref, two candidates)`` on uint8 images, divided by
#: 3 x H x W (ru_maxrss of a fresh process, less the RSS after a warm-up at 64 px; /tmp-style script in
#: docs/performance.md, "Memory"). seres2net50: 752 MiB at 1024 px (251 B/px), 230 MiB at 512 px (307 B/px);
#: test_resnet (the tests' tiny backbone): 1229 MiB at 2048 px (102 B/px), 353 MiB at 1024 px (118 B/px). The
#: larger image's value is kept: the factor falls towards it as fixed costs fade, so the estimate stays a lower bound.
SCORING_BYTES_PER_PIXEL = {SE_RES2NET50: 250, "test_resnet": 100}
#: seconds the one connection attempt to the hub (or the HTTPS proxy) may take before it counts as offline
HUB_PROBE_TIMEOUT_S = 5.0
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm fetches from a hub repository, in its order


class HubUnavailable(CheckpointError):
    """The ImageNet weights of ``arch`` cannot be fetched: the hub is unreachable (offline) and they are not in the
    local cache, or the download failed (``reason``). The training path names its config key instead of the Python
    keyword (:func:`prfnet.training.run.build_model`)."""

    def __init__(self, arch: str, reason: str):
        self.arch, self.reason = arch, reason
        super().__init__(
            f"cannot fetch the ImageNet weights of {arch}: {reason}; offline, pass backbone_weights=PATH (a local "
            f".safetensors file of timm's {arch}), or pretrained_backbone=False"
        )


class IdentityInitSE(nn.Module):
    """Squeeze-and-excitation whose gate is the identity at initialisation (the "SE" of the paper's SE Res2Net50;
    the initialisation is ours).

    (N, C, H, W) -> same shape: ``x * 2 * sigmoid(fc2(relu(fc1(mean_hw(x)))))``, gate in (0, 2). ``fc2``
    starts at zero, so every gate is exactly 1 and a network seeded with SE-free weights computes what
    they computed; training moves the gates away from 1 in both directions. Layer names and shapes are
    those of timm's ``SEModule`` (reduction 1/16, divisor 8).
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, rd_divisor: int = 8, **factory):
        super().__init__()
        hidden = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, hidden, 1, **factory)
        self.bn = nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, **factory)
        self.open_gate()

    def open_gate(self) -> None:
        """Set every gate to exactly 1 (``fc2`` = 0). timm's ResNet re-initialises all convolutions after
        building its blocks, so :func:`build_backbone` calls this again on the finished network."""
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * (2 * torch.sigmoid(gate))


class FreezableBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose statistics can be frozen: with ``frozen_stats`` it normalises with its
    running statistics and never updates them, in train mode too (Lightning sets ``.training`` of every
    submodule directly, so a ``train()`` override cannot be relied on). Affine weights still train."""

    frozen_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.frozen_stats:
            return super().forward(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class FreezableBatchNormAct2d(BatchNormAct2d):
    """timm's ``BatchNormAct2d`` (norm, dropout, activation) with :class:`FreezableBatchNorm2d`'s switch."""

    frozen_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.frozen_stats:
            return super().forward(x)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(self.drop(x))


_FREEZABLE = {nn.BatchNorm2d: FreezableBatchNorm2d, BatchNormAct2d: FreezableBatchNormAct2d}


def make_norms_freezable(net: nn.Module) -> nn.Module:
    """Turn every batch norm of ``net`` into its freezable twin, in place (same tensors and state-dict keys);
    :class:`ConfigError` for a batch norm of another kind."""
    for name, module in net.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and type(module) not in _FREEZABLE.values():
            twin = _FREEZABLE.get(type(module))
            if twin is None:
                raise ConfigError(f"backbone layer {name} is a {type(module).__name__}, which prfnet cannot freeze")
            module.__class__ = twin
    return net


def freeze_norm_statistics(net: nn.Module, frozen: bool) -> None:
    """Freeze (``True``) or release the running statistics of every freezable batch norm of ``net``."""
    for module in net.modules():
        if isinstance(module, tuple(_FREEZABLE.values())):
            module.frozen_stats = frozen


def _timm_kwargs(name: str, se_gate: str) -> tuple[str, dict]:
    if name == SE_RES2NET50:
        # block_args replaces Res2Net's defaults, so scale is restated; the SE class (not the
        # string 'se') must be passed, as timm's Bottle2neck builds it directly.
        se = IdentityInitSE if se_gate == "identity" else SEModule
        return _RES2NET_ARCH, {"block_args": {"scale": 4, "attn_layer": se}}
    return name, {}


def build_backbone(
    name: str = SE_RES2NET50,
    pretrained: bool = False,
    weights: str | Path | None = None,
    out_indices: tuple[int, ...] = (1, 2, 3, 4),
    se_gate: str = "identity",
) -> nn.Module:
    """Build a timm ``features_only`` network returning a list of (N, C_s, H/r_s, W/r_s) maps.

    Args:
        name: ``"seres2net50"`` or any timm model name that supports ``features_only``.
        pretrained: load ImageNet weights through timm's hub names (needs network or a warm cache).
        weights: a local ``.safetensors`` file with the backbone's (classifier) state dict, for
            offline use; takes precedence over ``pretrained``.
        out_indices: feature levels to return (timm's indices; 1..4 = strides 4..32 for ResNets);
            networks with four levels only (ConvNeXt, ...) return all of them.
        se_gate: ``"identity"`` (:class:`IdentityInitSE`, starts at exactly 1) or ``"sigmoid"`` (timm's
            ``SEModule``); used by ``seres2net50`` only.

    Batch norms come back freezable (:func:`make_norms_freezable`) with their statistics live.
    """
    if se_gate not in SE_GATES:
        raise ConfigError(f"se_gate must be one of {SE_GATES}, got {se_gate!r}")
    arch, extra = _timm_kwargs(name, se_gate)
    if not timm.is_model(arch):
        raise ConfigError(f"unknown backbone {name!r}: not a timm model name")
    try:
        net = timm.create_model(arch, features_only=True, out_indices=out_indices, **extra)
    except (IndexError, AssertionError, ValueError):
        # networks with only four levels (ConvNeXt, ...) have no stride-2 level to skip
        net = timm.create_model(arch, features_only=True, **extra)
    if weights is not None:
        _load_into(net, _read_safetensors(Path(weights)), source=str(weights))
    elif pretrained:
        _load_into(net, _hub_classifier(arch).state_dict(), source=f"timm hub weights of {arch}")
    for module in net.modules():
        if isinstance(module, IdentityInitSE):
            module.open_gate()
    return make_norms_freezable(net)


def _hub_address() -> tuple[str, int] | None:
    """(host, port) a hub download connects to first: the HTTPS proxy when one is set, else the hub endpoint
    (``HF_ENDPOINT``)."""
    proxy = next(
        (os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if os.environ.get(k)), ""
    )
    url = urlsplit(proxy if "://" in proxy else f"http://{proxy}" if proxy else hub_constants.ENDPOINT)
    if not url.hostname:
        return None
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def hub_reachable() -> tuple[bool, str]:
    """(whether the hub can be reached, why not): ``HF_HUB_OFFLINE`` set, or one TCP connection to the hub (or the
    proxy) within :data:`HUB_PROBE_TIMEOUT_S` that fails. One try, where huggingface_hub retries every request five
    times with back-off (about a minute of warnings when offline)."""
    if hub_constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE is set"
    address = _hub_address()
    if address is None:
        return True, ""
    try:
        with socket.create_connection(address, timeout=HUB_PROBE_TIMEOUT_S):
            return True, ""
    except OSError as exc:
        return False, f"the hub ({address[0]}:{address[1]}) is unreachable ({exc.strerror or type(exc).__name__})"


def _cached_hub_file(arch: str) -> str | None:
    """The local cache's copy of the hub weights timm would fetch for ``arch``, if there is one."""
    cfg = timm.models.get_pretrained_cfg(arch)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    names = (cfg.hf_hub_filename,) if getattr(cfg, "hf_hub_filename", None) else _HUB_FILES
    for name in names:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def _hub_classifier(arch: str) -> nn.Module:
    """timm's ``arch`` classifier with its ImageNet weights: from the hub when it is reachable, else from the local
    cache without a request; :class:`HubUnavailable` at once when neither works (no retries offline)."""
    online, why = hub_reachable()
    if not online:
        cached = _cached_hub_file(arch)
        if cached is None:
            raise HubUnavailable(arch, f"{why} and they are not in the local cache")
        return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": cached})
    try:
        return timm.create_model(arch, pretrained=True)  # plain classifier, hub weights
    except (OSError, RuntimeError) as exc:  # huggingface_hub raises OSError subclasses
        raise HubUnavailable(arch, f"the download failed ({type(exc).__name__})") from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"backbone weights file not found: {path}")
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path}: backbone weights must be a .safetensors file (pickled checkpoints are not loaded)"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a classifier state dict into a features_only net; only SE tensors may stay new."""
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    bad_shape = [k for k, v in usable.items() if v.shape != own[k].shape]
    if bad_shape:
        raise CheckpointError(f"{source}: shape mismatch for {len(bad_shape)} tensors, e.g. {bad_shape[0]}")
    missing = [k for k in own if k not in usable]
    not_se = [k for k in missing if ".se." not in k and not k.endswith("num_batches_tracked")]
    if not_se:
        raise CheckpointError(
            f"{source}: does not match the backbone ({len(not_se)} tensors missing, e.g. {not_se[0]})"
        )
    net.load_state_dict(usable, strict=False)
    n_se = sum(1 for k in missing if ".se." in k)
    log.info("backbone: loaded %d tensors from %s", len(usable), source)
    if n_se:
        log.info("backbone: %d SE tensors have no pretrained value and start from initialisation", n_se)


def added_modules(net: nn.Module, name: str) -> list[nn.Module]:
    """The modules prfnet adds to the timm network ``name``, which no pretrained file holds: the SE module of
    every ``seres2net50`` bottleneck; none for other backbones (their weights are the pretrained ones)."""
    if name != SE_RES2NET50:
        return []
    return [m for path, m in net.named_modules() if path.rsplit(".", 1)[-1] == "se"]


def scoring_bytes_per_pixel(net: nn.Module, name: str) -> float:
    """Peak bytes per pixel per image of whole-image scoring with backbone ``net`` (named ``name``): the measured
    :data:`SCORING_BYTES_PER_PIXEL`, else twice the float32 bytes of the feature maps ``net`` returns per input
    pixel (below both measured values, 2.1x and 6.9x those bytes: a lower bound, so that nothing that fits is
    refused)."""
    if name in SCORING_BYTES_PER_PIXEL:
        return SCORING_BYTES_PER_PIXEL[name]
    info = net.feature_info
    return 2 * sum(4 * c / r**2 for c, r in zip(info.channels(), info.reduction(), strict=True))


def feature_channels(net: nn.Module) -> list[int]:
    """Channels of each returned feature map, read from timm's feature info."""
    return list(net.feature_info.channels())
