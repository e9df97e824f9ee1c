"""Multi-scale feature extractors built with timm.

The default, ``seres2net50``, is timm's Res2Net-50 (26w x 4s) with a squeeze-and-excitation module in
every bottleneck. No public ImageNet weights exist for that exact network, so ``pretrained=True``
loads timm's ``res2net50_26w_4s`` ImageNet weights into it and the SE modules start from their
initialisation (a log line says how many tensors that leaves new).
"""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from timm.layers import SEModule
from torch import nn

from ..errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

SE_RES2NET50 = "seres2net50"
_RES2NET_ARCH = "res2net50_26w_4s"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _timm_kwargs(name: str) -> tuple[str, dict]:
    if name == SE_RES2NET50:
        # block_args replaces Res2Net's defaults, so scale is restated; the SE class (not the
        # string 'se') must be passed, as timm's Bottle2neck builds it directly.
        return _RES2NET_ARCH, {"block_args": {"scale": 4, "attn_layer": SEModule}}
    return name, {}


def build_backbone(
    name: str = SE_RES2NET50,
    pretrained: bool = False,
    weights: str | Path | None = None,
    out_indices: tuple[int, ...] = (1, 2, 3, 4),
) -> nn.Module:
    """Build a timm ``features_only`` network returning a list of (N, C_s, H/r_s, W/r_s) maps.

    Args:
        name: ``"seres2net50"`` or any timm model name that supports ``features_only``.
        pretrained: load ImageNet weights through timm's hub names (needs network or a warm cache).
        weights: a local ``.safetensors`` file with the backbone's (classifier) state dict, for
            offline use; takes precedence over ``pretrained``.
        out_indices: feature levels to return (timm's indices; 1..4 = strides 4..32 for ResNets);
            networks with four levels only (ConvNeXt, ...) return all of them.
    """
    arch, extra = _timm_kwargs(name)
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
        try:
            seed = timm.create_model(arch, pretrained=True)  # plain classifier, hub weights
        except (OSError, RuntimeError) as exc:  # offline, no cache: huggingface_hub raises OSError subclasses
            raise CheckpointError(
                f"cannot fetch the ImageNet weights of {arch} from the hub ({type(exc).__name__}); offline, pass "
                "backbone_weights=PATH (a local .safetensors file) instead"
            ) from None
        _load_into(net, seed.state_dict(), source=f"timm hub weights of {arch}")
    return net


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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


def feature_channels(net: nn.Module) -> list[int]:
    """Channels of each returned feature map, read from timm's feature info."""
    return list(net.feature_info.channels())


def feature_strides(net: nn.Module) -> list[int]:
    """Down-sampling factor of each returned feature map."""
    return list(net.feature_info.reduction())
