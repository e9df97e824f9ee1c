"""Inference settings per device: folded batch norms, one or separate backbone calls, memory format, precision.

None of them changes what the model computes beyond float rounding, except ``precision`` (bf16/fp16 autocast
of the backbone), which is why it is never chosen for the user. Measured on 2 CPU cores at 768 px
(``benchmarks/bench_scoring.py``, ``docs/performance.md``): separate backbone calls for R, A and B are faster
than one call over [R, A, B] (smaller working set), channels-last is slower, and folding each batch norm into
its convolution saves a memory pass per layer. On CUDA GPUs one call over [R, A, B] and channels-last (tensor
cores) are the usual winners.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class InferencePolicy:
    """How eval-mode calls run the backbone.

    ``joint_batch``: R, A and B (or R and a candidate batch) through the backbone in one call;
    ``channels_last``: NHWC memory format for the backbone; ``precision``: ``fp32`` (default), ``bf16`` or
    ``fp16`` autocast of the backbone only (feature normalisation, fusion, head and the decision stay float32).
    """

    joint_batch: bool = False
    channels_last: bool = False
    precision: str = "fp32"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.precision]


def device_policy(device: str | torch.device, precision: str = "fp32") -> InferencePolicy:
    """The measured-best layout for ``device``: CUDA -> one backbone call over R, A, B and channels-last;
    anything else -> separate calls, contiguous NCHW. ``precision`` is the caller's choice (it changes scores)."""
    if torch.device(device).type == "cuda":
        return InferencePolicy(joint_batch=True, channels_last=True, precision=precision)
    if precision == "fp16" and torch.device(device).type == "cpu":
        raise ConfigError("precision fp16 needs a GPU: on the CPU use fp32 (or bf16 where the CPU supports it)")
    return InferencePolicy(joint_batch=False, channels_last=False, precision=precision)


def _outputs_close(a, b, rtol: float = 1e-3) -> bool:
    return all(
        x.shape == y.shape and bool(((x - y).abs().max() <= rtol * (y.abs().max() + 1e-6)).item())
        for x, y in zip(a, b, strict=True)
    )


@torch.no_grad()
def fold_batch_norms(backbone: nn.Module, probe_side: int = 64) -> nn.Module | None:
    """A copy of ``backbone`` (eval mode) with every convolution -> batch norm pair folded into one convolution
    (``torch.fx.experimental.optimization.fuse``), or ``None`` where there is nothing to fold, the model cannot be
    traced, or the folded copy disagrees with the original on a probe image (relative 1e-3)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules()):
        return None
    from torch.fx.experimental.optimization import fuse

    was_training = backbone.training
    backbone.eval()
    try:
        folded = fuse(copy.deepcopy(backbone))
        param = next(backbone.parameters())
        probe = torch.rand(1, 3, probe_side, probe_side, generator=torch.Generator().manual_seed(0))
        probe = probe.to(param.device, param.dtype)
        if not _outputs_close(folded(probe), backbone(probe)):
            log.info("folded backbone disagrees with the original; batch norms kept")
            return None
    except Exception as exc:  # tracing limits of torch.fx: keep the unfolded backbone
        log.info("batch norms not folded (%s: %s)", type(exc).__name__, exc)
        return None
    finally:
        backbone.train(was_training)
    return folded.eval()
