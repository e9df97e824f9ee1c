"""Inference settings per device: one or separate backbone calls, memory format, precision, a compiled backbone.

None of them changes what the model computes beyond float rounding, except ``precision`` (bf16/fp16 autocast
of the backbone), which is why it is never chosen for the user. Measured on 2 CPU cores at 768 px
(``benchmarks/bench_scoring.py``, ``docs/performance.md``): separate backbone calls for R, A and B are faster
than one call over [R, A, B] (smaller working set), channels-last is slower, and a backbone compiled by
``torch.compile`` with weight freezing is about 1.5x faster once compiled. On CUDA GPUs one call over
[R, A, B] and channels-last (tensor cores) are the usual winners.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class InferencePolicy:
    """How eval-mode calls run the backbone.

    ``joint_batch``: R, A and B (or R and a candidate batch) through the backbone in one call;
    ``channels_last``: NHWC memory format for the backbone; ``precision``: ``fp32`` (default), ``bf16`` or
    ``fp16`` autocast of the backbone only (feature normalisation, fusion, head and the decision stay float32);
    ``backbone_batch``: at most this many images per backbone call (a batch is split and its maps joined), None = the
    whole batch at once.
    """

    joint_batch: bool = False
    channels_last: bool = False
    precision: str = "fp32"
    backbone_batch: int | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.precision]


def device_policy(device: str | torch.device, precision: str = "fp32") -> InferencePolicy:
    """The measured-best layout for ``device``: CUDA -> one backbone call over R, A, B and channels-last;
    anything else -> separate calls, one image per backbone call (at 768 px on 2 CPU cores a batch of 2 to 8 costs
    1.8-1.9 s per image against 1.27 s alone: its working set leaves the caches), contiguous NCHW. ``precision`` is
    the caller's choice (it changes scores)."""
    if torch.device(device).type == "cuda":
        return InferencePolicy(joint_batch=True, channels_last=True, precision=precision)
    if precision == "fp16" and torch.device(device).type == "cpu":
        raise ConfigError("precision fp16 needs a GPU: on the CPU use fp32 (or bf16 where the CPU supports it)")
    return InferencePolicy(joint_batch=False, channels_last=False, precision=precision, backbone_batch=1)


def compile_backbone(backbone: nn.Module) -> nn.Module:
    """``torch.compile`` of the backbone with Inductor's weight freezing (constant-folded weights, batch norms folded
    into the convolutions, prepacked kernels): about 1.5x faster on CPUs (``docs/performance.md``), at the cost of
    a compilation of 30-90 s at the first call and again for each new image size, so worth it for many images of
    one size (a CLIC or RD corpus). Needs a C++ compiler (CPU) or Triton (GPU). The weights become constants: the
    model must not be trained afterwards."""
    return torch.compile(backbone, options={"freezing": True})
