"""Score maps: where in the image the distance comes from.

The distance is ``score = head(v)``, ``v`` the spatial mean of the fused map ``h`` (N, F, H_0, W_0) at the finest
level the fusion reads, and the head is linear without a bias (``v . softplus(w)``). So the per-cell map
``m_0 = h . softplus(w)`` (N, H_0, W_0) has ``mean(m_0) = score``. :func:`area_upsample` spreads each feature cell
over the input pixels it covers (cell i of H_0 covers [i H / H_0, (i + 1) H / H_0) in pixel coordinates; a pixel
takes the overlap-weighted sum of the cells it meets), which keeps the spatial mean exactly, so the map at input
resolution has the same mean. Maps are >= 0, float32, higher = farther from the reference there; an identical
image gives exactly 0 everywhere (default blocks).

With tiling, ``score`` is the mean of the tiles' scores; the stitched map adds each tile's map in its window and
scales the sum by ``H W / (T t_h t_w)`` (T tiles of t_h x t_w), so ``mean(map) = score`` still holds; where tiles
overlap a pixel counts once per tile, as it does in the score.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .blocks import ProgressiveFusion, SingleScaleFusion
from .inputs import check_images, unit_float


def unpooled_fusion(fusion: torch.nn.Module, maps: list[torch.Tensor]) -> torch.Tensor:
    """The fusion's output before its average pooling: (N, F, H_0, W_0) >= 0, so that
    ``fusion(maps) == unpooled_fusion(fusion, maps).mean(dim=(2, 3))``."""
    if isinstance(fusion, ProgressiveFusion):
        h = F.relu(fusion.entry(maps[-1]))
        for step, skip in zip(fusion.steps, reversed(maps[:-1]), strict=True):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = step(torch.cat([h, skip], dim=1))
        return h
    if isinstance(fusion, SingleScaleFusion):
        (pair_map,) = maps
        return fusion.step(pair_map)
    raise TypeError(f"no score map for fusion block {type(fusion).__name__}")


def _area_matrix(out_size: int, in_size: int, device: torch.device) -> torch.Tensor:
    """(out_size, in_size) overlap of pixel y = [y, y + 1) with cell i = [i s, (i + 1) s), s = out / in.
    Rows sum to 1, columns to s."""
    s = out_size / in_size
    y = torch.arange(out_size, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(in_size, dtype=torch.float64).unsqueeze(0)
    overlap = torch.minimum(y + 1, (i + 1) * s) - torch.maximum(y, i * s)
    return overlap.clamp_(min=0).to(device, torch.float32)


def area_upsample(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) -> (N, H, W) with the same spatial mean (exactly, up to float rounding): each pixel is the
    area-weighted sum of the cells it overlaps (the transpose of area down-sampling, scaled by H W / (h w))."""
    a_h = _area_matrix(size[0], m.shape[-2], m.device)
    a_w = _area_matrix(size[1], m.shape[-1], m.device)
    return a_h @ m @ a_w.T


def _window_map(model, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Map (N, h, w) of one window (whole image or tile): mean = that window's distance."""
    ref_feats, dist_feats = model.features(ref), model.features(dist)
    n = dist_feats[0].shape[0]
    ref_feats = [r.expand(n, *r.shape[1:]) for r in ref_feats]
    with model.autocast_off():
        h = unpooled_fusion(model.fusion, model.pair(ref_feats, dist_feats))
        cells = model.head(h.movedim(1, -1))  # (N, H_0, W_0): the linear head on each cell's fused vector
        return area_upsample(cells, tuple(ref.shape[-2:]))


def score_map(model, ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Per-pixel distance map (N, 1, H, W) of ``dist`` (N, 3, H, W) against ``ref`` (a batch of 1 broadcasts):
    >= 0, float32, higher = farther from the reference there; ``map.mean(dim=(1, 2, 3)) == model.score(ref, dist)``
    (to float rounding, ~1e-7 relative). Tiled models: tile maps stitched (see the module doc). Runs in eval mode."""
    check_images(ref, dist, names=("ref", "dist"))
    ref, dist = model.prepare(ref), model.prepare(dist)
    height, width = ref.shape[-2:]
    windows = model.windows(height, width)
    with model.evaluating():
        out = None
        for rows, cols in windows:
            tile = _window_map(model, ref[..., rows, cols], dist[..., rows, cols])
            if out is None:
                out = tile.new_zeros((tile.shape[0], height, width))
            out[:, rows, cols] += tile
        th, tw = tile.shape[-2:]
        if len(windows) > 1:
            out = out * (height * width / (len(windows) * th * tw))
    return out.unsqueeze(1)


def compare_maps(model, ref: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The score maps (N, 1, H, W) of A and of B (:func:`score_map`). Their means are d(ref, A) and d(ref, B), so
    ``compare(ref, a, b) == sigmoid(mean(map_b - map_a))``; ``map_a - map_b > 0`` where A is worse than B."""
    check_images(ref, a, b, names=("ref", "A", "B"))
    return score_map(model, ref, a), score_map(model, ref, b)


def overlay(image: torch.Tensor, values: torch.Tensor, scale: float, diverging: bool = False) -> np.ndarray:
    """An RGB uint8 (H, W, 3) picture: ``image`` (1, 3, H, W) in [0, 1] or uint8, in grey, blended half and half
    with ``values`` (H, W) coloured on a fixed ``scale`` (> 0): ``inferno`` from 0 to ``scale`` or, ``diverging``,
    ``RdBu_r`` from -scale (blue) through 0 (white) to +scale (red)."""
    from matplotlib import colormaps

    grey = unit_float(image.detach().cpu()[0]).float()
    grey = (0.299 * grey[0] + 0.587 * grey[1] + 0.114 * grey[2]).clamp(0, 1).numpy()
    v = values.detach().float().cpu().numpy() / max(scale, 1e-12)
    v = (v + 1) / 2 if diverging else v
    colours = colormaps["RdBu_r" if diverging else "inferno"](np.clip(v, 0, 1))[..., :3]
    mixed = 0.5 * grey[..., None] + 0.5 * colours
    return (mixed * 255 + 0.5).astype(np.uint8)
