"""The figures of docs/baselines.md: how far library defaults and luma conventions move SSIM and MS-SSIM.

For each photo shipped with scikit-image (astronaut 512 x 512, coffee 400 x 600, chelsea 300 x 451), JPEG-coded by
Pillow at quality 10 and 30 (4:2:0), prints one row per (image, quality):

- ``ssim``: prfnet's ``ssim`` (Wang's ``ssim.m`` on BT.601 ``rgb2ycbcr`` Y, automatic down-sampling);
- ``ssim_gray``: the same on ``rgb2gray`` luma; ``ssim_y8``: on Y rounded to 8 bits, as MATLAB's
  ``rgb2ycbcr(uint8)`` gives it;
- ``piq_ssim``: ``piq.ssim(dist, ref, data_range=1.0)`` with its defaults (all three RGB channels);
- the same four for MS-SSIM (``msssim.m``; ``piq.multi_scale_ssim`` defaults).

Run: ``python benchmarks/baseline_conventions.py`` (a few seconds; ``--json`` for one JSON document).
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import piq
import torch
from PIL import Image
from skimage import data

from prfnet.baselines.reference import (
    box_downsample,
    ms_ssim_matlab,
    rgb_to_luma,
    ssim_and_cs,
    ssim_downsample_factor,
    ssim_matlab,
)

IMAGES = ("astronaut", "coffee", "chelsea")
QUALITIES = (10, 30)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double() / 255


def ssim_on_rounded_y(ref: torch.Tensor, dist: torch.Tensor) -> float:
    """``ssim.m`` on ``rgb2ycbcr(uint8)`` Y: the luma rounded to integers before SSIM."""
    x, y = (rgb_to_luma(t).round() for t in (ref, dist))
    f = ssim_downsample_factor(*x.shape[-2:])
    if f > 1:
        x, y = box_downsample(x, f), box_downsample(y, f)
    return float(ssim_and_cs(x, y)[0])


def row(name: str, quality: int) -> dict:
    rgb = getattr(data, name)()
    ref, dist = tensor(rgb), tensor(jpeg(rgb, quality))
    return {
        "image": f"skimage.data.{name}() {rgb.shape[1]}x{rgb.shape[0]} (W x H)",
        "jpeg_quality": quality,
        "ssim": float(ssim_matlab(ref, dist)),
        "ssim_gray": float(ssim_matlab(ref, dist, luma="gray")),
        "ssim_y8": ssim_on_rounded_y(ref, dist),
        "piq_ssim": float(piq.ssim(dist.float(), ref.float(), data_range=1.0)),
        "ms_ssim": float(ms_ssim_matlab(ref, dist)),
        "ms_ssim_gray": float(ms_ssim_matlab(ref, dist, luma="gray")),
        "piq_ms_ssim": float(piq.multi_scale_ssim(dist.float(), ref.float(), data_range=1.0)),
    }


def main() -> None:
    rows = [row(name, q) for name in IMAGES for q in QUALITIES]
    if "--json" in sys.argv[1:]:
        print(json.dumps(rows, indent=1))
        return
    columns = [c for c in rows[0] if c not in ("image", "jpeg_quality")]
    print(f"{'image':42s} {'q':>3s} " + " ".join(f"{c:>12s}" for c in columns))
    for r in rows:
        print(f"{r['image']:42s} {r['jpeg_quality']:3d} " + " ".join(f"{r[c]:12.4f}" for c in columns))


if __name__ == "__main__":
    main()
