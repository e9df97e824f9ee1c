"""PRFNet's two blocks and their ablation baselines.

The paper (arXiv 2401.06992, as ``docs/design.md`` sums it up: a pre-trained SE Res2Net50 -> cross
subtraction -> progressive feature fusion -> quality prediction) names the *cross subtraction module*
(:class:`CrossSubtract`) and the *progressive feature fusion block* (:class:`ProgressiveFusion`) without their
internals; the layers inside them are our choices (``docs/design.md``, "Decisions the paper leaves open").
:class:`ConcatPair` and :class:`SingleScaleFusion` are not in the paper: they are the ablations of those two.

Shapes use N = batch, S = number of scales, C_s = backbone channels at scale s, H_s x W_s = the
feature map size at scale s (scale 0 is the finest), D = ``pair_channels``, F = ``fusion_channels``.

* Backbone maps are unit-normalised along channels once per image (:func:`unit_normalise`, as in
  LPIPS), so a reference encoded once serves every candidate.
* Pair stage (``CrossSubtract`` or ``ConcatPair``): one (reference, distorted) pair of normalised
  multi-scale features -> S maps of (N, D, H_s, W_s), zero where the two features agree (``CrossSubtract``).
* Fusion stage (``ProgressiveFusion`` or ``SingleScaleFusion``): S maps -> a pooled, non-negative
  quality-difference vector v of shape (N, F).
* The cross subtraction of the positive and negative pairs, ``v_B - v_A``, is taken in that
  feature space by :meth:`CrossSubtract.cross`; a linear head with positive weights turns it into
  the 2AFC logit, so the logit is antisymmetric in (A, B) by construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Features = list[torch.Tensor]


def unit_normalise(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(N, C, H, W) -> same shape, each spatial position's channel vector divided by its L2 norm (as in LPIPS; not
    in the paper: it puts the backbone levels on one scale before the cross subtraction)."""
    return x / torch.sqrt((x * x).sum(dim=1, keepdim=True) + eps)


class CrossSubtract(nn.Module):
    """The paper's cross subtraction module: reference and distorted features compared by subtraction, scale by
    scale, and the cross subtraction of the two pairs (the paper gives no layer-level detail; ours is below).

    ``in_channels``: {backbone level s: C_s} of the levels the fusion uses, finest first.
    ``forward(ref_feats, dist_feats)``: two lists of those S unit-normalised tensors (N, C_s, H_s, W_s) -> S
    tensors (N, D, H_s, W_s) = ReLU(W_s |F_R - F_X|), W_s a bias-free 1x1 convolution, so identical
    inputs give exactly zero.
    ``cross(v_a, v_b)``: the positive/negative pair subtraction v_B - v_A, shape (N, F).
    """

    def __init__(self, in_channels: dict[int, int], pair_channels: int = 64):
        super().__init__()
        # keyed by the backbone level, so a model that uses some levels only (single-scale fusion) has
        # no projection without a gradient (DDP refuses those) and keeps the state-dict keys of all levels
        self.proj = nn.ModuleDict({str(s): self._projection(c, pair_channels) for s, c in in_channels.items()})

    @staticmethod
    def _projection(channels: int, pair_channels: int) -> nn.Module:
        return nn.Conv2d(channels, pair_channels, 1, bias=False)

    def forward(self, ref_feats: Features, dist_feats: Features) -> Features:
        projections = self.proj.values()
        return [F.relu(proj(torch.abs(r - x))) for proj, r, x in zip(projections, ref_feats, dist_feats, strict=True)]

    @staticmethod
    def cross(v_a: torch.Tensor, v_b: torch.Tensor) -> torch.Tensor:
        return v_b - v_a


class ConcatPair(CrossSubtract):
    """Ablation baseline, not in the paper: no subtraction; ReLU(W_s [F_R, F_X]) from the concatenated features.

    Same shapes as :class:`CrossSubtract`; identical inputs no longer map to zero.
    """

    @staticmethod
    def _projection(channels: int, pair_channels: int) -> nn.Module:
        return nn.Conv2d(2 * channels, pair_channels, 1, bias=False)

    def forward(self, ref_feats: Features, dist_feats: Features) -> Features:
        projections = self.proj.values()
        return [
            F.relu(proj(torch.cat([r, x], dim=1)))
            for proj, r, x in zip(projections, ref_feats, dist_feats, strict=True)
        ]


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: (N, C, H, W) -> same shape, each channel scaled by a gate in (0, 1). The
    channel attention of each :class:`FusionStep` (our choice inside the paper's progressive fusion block)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * gate


class FusionStep(nn.Module):
    """One step of the progressive fusion: [coarser state resampled to H_s x W_s, pair map at s] -> (N, F, H_s, W_s)
    (two 3x3 convolutions and a channel gate: our layers inside the paper's progressive feature fusion block)."""

    def __init__(self, in_channels: int, out_channels: int, attention: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.attention = ChannelAttention(out_channels) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(F.relu(self.conv2(F.relu(self.conv1(x)))))


class ProgressiveFusion(nn.Module):
    """The paper's progressive feature fusion block: S pair maps fused deep-to-shallow, one scale at a time, then
    average-pooled (the order and the steps are ours; the paper names the block, not its layers).

    State h = pair map at the coarsest scale; for s = S-2 .. 0: h = FusionStep_s([up(h), E_s]),
    ``up`` = bilinear resampling to (H_s, W_s). Input: S tensors (N, D, H_s, W_s). Output: (N, F) >= 0.
    The convolutions are bias-free and the gates only scale, so an all-zero input (identical images) gives v = 0.
    """

    def __init__(self, num_scales: int, pair_channels: int = 64, channels: int = 64, attention: bool = True):
        super().__init__()
        self.scales = tuple(range(num_scales))  # backbone levels used: all
        self.entry = nn.Conv2d(pair_channels, channels, 1, bias=False)
        self.steps = nn.ModuleList(
            FusionStep(channels + pair_channels, channels, attention) for _ in range(num_scales - 1)
        )
        self.out_channels = channels

    def forward(self, maps: Features) -> torch.Tensor:
        h = F.relu(self.entry(maps[-1]))
        for step, skip in zip(self.steps, reversed(maps[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = step(torch.cat([h, skip], dim=1))
        return h.mean(dim=(2, 3))


class SingleScaleFusion(nn.Module):
    """Ablation baseline, not in the paper: one backbone level only (default the coarsest), a conv step, then
    average-pool.

    Input: the one pair map of that level, as a list [(N, D, H_s, W_s)]; output (N, F) >= 0.
    """

    def __init__(self, num_scales: int, pair_channels: int = 64, channels: int = 64, scale: int = -1):
        super().__init__()
        self.scale = scale if scale >= 0 else num_scales + scale
        self.scales = (self.scale,)  # backbone levels used: this one
        self.step = FusionStep(pair_channels, channels, attention=False)
        self.out_channels = channels

    def forward(self, maps: Features) -> torch.Tensor:
        (pair_map,) = maps
        return self.step(pair_map).mean(dim=(2, 3))


class PositiveLinear(nn.Module):
    """The quality prediction (the paper's last stage): (N, F) -> (N,): v . softplus(w). Non-negative weights keep
    the distance >= 0 and monotone in v; on v_B - v_A it gives the 2AFC logit."""

    def __init__(self, in_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(in_features))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v @ F.softplus(self.weight)


PAIR_BLOCKS = {"cross_subtract": CrossSubtract, "concat": ConcatPair}
FUSION_BLOCKS = {"progressive": ProgressiveFusion, "single_scale": SingleScaleFusion}
