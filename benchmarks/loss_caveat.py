"""What a PRFNet trained on simulated votes does as a loss: the figures of docs/integrations.md ("a loss needs ...").

For three photos shipped with scikit-image (astronaut, coffee, chelsea; centre square crop, resized to 256 px),
JPEG-coded by Pillow at quality 30 (4:2:0), the JPEG image ``x`` is optimised with Adam on
``PRFNetLoss(model)(x, ref=ref)`` for ``--steps`` steps, ``x`` clamped to [0, 1] after each step. Prints, per
image, PSNR(x, ref) in dB, SSIM (prfnet's ``ssim``, ssim.m on BT.601 luma) and the PRFNet distance of the model,
before and after.

A model whose distance agrees with people should move ``x`` towards the reference: PSNR and SSIM up (or at
least not down) while its distance falls. A model trained for minutes on simulated votes (``prfnet demo``)
lowers its own distance by finding directions it cannot see, which is what the figures show.

Run: ``python benchmarks/loss_caveat.py -c prfnet_demo/model.safetensors`` (about a minute on 2 CPU cores;
``--json`` for one JSON document).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time

import numpy as np
import torch
from PIL import Image
from skimage import data

from prfnet import PRFNet, PRFNetLoss
from prfnet.baselines import ssim_matlab
from prfnet.images import unit_float

IMAGES = ("astronaut", "coffee", "chelsea")


def photo(name: str, size: int) -> np.ndarray:
    rgb = getattr(data, name)()
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = Image.fromarray(rgb[top : top + s, left : left + s])
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def tensor(rgb: np.ndarray) -> torch.Tensor:
    return unit_float(torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None])  # uint8 -> [0, 1], as load_image


def psnr(ref: torch.Tensor, x: torch.Tensor) -> float:
    mse = torch.mean((ref.double() - x.double()) ** 2).item()
    return float(10 * np.log10(1.0 / mse))


def measure(model: PRFNet, ref: torch.Tensor, x: torch.Tensor) -> dict:
    with torch.no_grad():
        return {
            "psnr_db": round(psnr(ref, x), 3),
            "ssim": round(float(ssim_matlab(ref.double(), x.double())[0]), 4),
            "prfnet": round(float(model.score(ref=ref, dist=x)[0]), 5),
        }


def run(checkpoint: str, steps: int, lr: float, size: int, quality: int) -> dict:
    torch.manual_seed(0)
    model = PRFNet.from_pretrained(checkpoint)
    loss_fn = PRFNetLoss(model)
    rows = []
    for name in IMAGES:
        rgb = photo(name, size)
        ref, start = tensor(rgb), tensor(jpeg(rgb, quality))
        before = measure(model, ref, start)
        x = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(x, ref=ref).backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
        after = measure(model, ref, x.detach())
        rows.append(
            {
                "image": name,
                "before": before,
                "after": after,
                "psnr_change_db": round(after["psnr_db"] - before["psnr_db"], 2),
                "distance_ratio": round(before["prfnet"] / after["prfnet"], 2),
            }
        )
    return {
        "checkpoint": checkpoint,
        "images": f"skimage.data {', '.join(IMAGES)}: centre square, {size} px, JPEG q={quality} (Pillow, 4:2:0)",
        "optimiser": f"Adam lr={lr}, {steps} steps, x clamped to [0, 1] after each step",
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--checkpoint", default="prfnet_demo/model.safetensors")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.checkpoint, args.steps, args.lr, args.size, args.quality)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['images']}; {result['optimiser']}; {result['checkpoint']}")
    print(f"{'image':<10} {'PSNR dB before -> after':>24} {'SSIM before -> after':>22} {'PRFNet before -> after':>24}")
    for r in result["rows"]:
        b, a = r["before"], r["after"]
        print(
            f"{r['image']:<10} {b['psnr_db']:>10.2f} -> {a['psnr_db']:6.2f} ({r['psnr_change_db']:+.2f})"
            f" {b['ssim']:>10.4f} -> {a['ssim']:.4f} {b['prfnet']:>12.4f} -> {a['prfnet']:.4f}"
            f" ({r['distance_ratio']:.1f}x lower)"
        )
    print(f"{result['seconds']} s; {result['machine']}")


if __name__ == "__main__":
    main()
