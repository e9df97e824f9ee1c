"""The agreement table of docs/baselines.md ("Codec metrics"): prfnet's ssimulacra2 / cvvdp / flip against references.

Pairs: scikit-image's astronaut, chelsea, coffee and rocket (Lanczos-scaled to 256 px on the long side) coded by
Pillow as JPEG q20, JPEG q60 and WebP q30 (``prfnet.rd.example``). References:

- ``ssimulacra2``: Cloudinary's C++ ``ssimulacra2`` tool (libjxl's code), values recorded in
  ``tests/baselines/data/ssimulacra2_reference.json`` (its ``source`` field says how they were made); the column
  ``package`` is the ``ssimulacra2`` package's own ``compute_ssimulacra2`` on the same PNG files, for comparison;
- ``cvvdp``: ``pycvvdp.cvvdp(display_name="standard_4k").predict(test, ref, dim_order="HWC")`` on the uint8 arrays;
- ``flip``: ``flip_evaluator.evaluate(ref, test, "LDR")`` on the float32 arrays in [0, 1] (its mean).

Run: ``python benchmarks/codec_metric_agreement.py`` (Markdown; ``--json`` for one JSON document; about 1 minute on
2 cores). ``--speed`` adds seconds per image at 256 and 768 px. ``--write-reference BIN`` re-records the C++ values
with the ``ssimulacra2`` binary BIN (built as the JSON's ``source`` says).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from prfnet.baselines import get_metric
from prfnet.baselines.codec_metrics import package_version
from prfnet.rd.example import encode, load_example_image

IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
CODECS = (("jpeg", 20), ("jpeg", 60), ("webp", 30))
MAX_SIDE = 256
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "tests" / "baselines" / "data" / "ssimulacra2_reference.json"
TOLERANCES = {"ssimulacra2": 0.05, "cvvdp": 1e-4, "flip": 1e-6}  # what tests/baselines/test_codec_metrics.py uses


def pixel_digest(img: Image.Image) -> str:
    """SHA-256 of the RGB pixels (and size): the reference values hold for exactly these pixels."""
    arr = np.asarray(img.convert("RGB"))
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def fixed_pairs():
    """[(image, codec, setting, reference PIL image, decoded PIL image)] of the fixed set."""
    pairs = []
    for name in IMAGES:
        ref = load_example_image(name, max_side=MAX_SIDE)
        for codec, setting in CODECS:
            pairs.append((name, codec, setting, ref, encode(ref, codec, setting)[1]))
    return pairs


def tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1)[None]  # uint8 (1, 3, H, W)


def direct_reference(metric: str, ref: Image.Image, dist: Image.Image) -> float:
    """The package called directly, the way its README documents it."""
    if metric == "flip":
        import flip_evaluator

        r, d = (np.asarray(x, dtype=np.float32) / 255.0 for x in (ref, dist))
        return float(flip_evaluator.evaluate(r, d, "LDR")[1])
    jod, _ = _cvvdp().predict(np.asarray(dist), np.asarray(ref), dim_order="HWC")
    return float(jod)


_CVVDP = []


def _cvvdp():
    if not _CVVDP:
        import pycvvdp

        _CVVDP.append(pycvvdp.cvvdp(display_name="standard_4k", device=torch.device("cpu"), quiet=True))
    return _CVVDP[0]


def package_ssimulacra2(ref: Image.Image, dist: Image.Image) -> float:
    """The ssimulacra2 package's own compute_ssimulacra2 on PNG files of the pair."""
    from ssimulacra2 import compute_ssimulacra2

    with tempfile.TemporaryDirectory() as folder:
        ref.save(f"{folder}/ref.png")
        dist.save(f"{folder}/dist.png")
        return float(compute_ssimulacra2(f"{folder}/ref.png", f"{folder}/dist.png"))


def write_reference(binary: str) -> None:
    """Runs the C++ tool on every pair (PNG files) and writes REFERENCE_FILE."""
    usage = subprocess.run([binary], capture_output=True, text=True)
    version = (usage.stdout + usage.stderr).splitlines()[0].strip()
    values = []
    with tempfile.TemporaryDirectory() as folder:
        for name, codec, setting, ref, dist in fixed_pairs():
            ref.save(f"{folder}/{name}.png")
            dist.save(f"{folder}/{name}_{codec}{setting}.png")
            out = subprocess.run(
                [binary, f"{folder}/{name}.png", f"{folder}/{name}_{codec}{setting}.png"],
                capture_output=True,
                text=True,
                check=True,
            )
            values.append(
                {
                    "image": name,
                    "codec": codec,
                    "setting": setting,
                    "ssimulacra2": float(out.stdout.strip()),
                    "ref_sha256": pixel_digest(ref),
                    "dist_sha256": pixel_digest(dist),
                }
            )
    doc = {
        "source": {
            "tool": f"ssimulacra2 C++ command-line tool ('{version}'), Cloudinary's standalone build of libjxl's "
            "tools/ssimulacra2.cc: github.com/cloudinary/ssimulacra2 at commit "
            "81feacf6a5b0bbd7ec11b4a881a4615033ab0b10 (2025-05-05)",
            "build": "Debian 12 (libhwy-dev 1.0.3, liblcms2-dev, libpng-dev, libjpeg62-turbo-dev): "
            "cmake ../src -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja ssimulacra2",
            "command": "ssimulacra2 <image>.png <image>_<codec><setting>.png, on PNG files written by Pillow from "
            f"prfnet.rd.example.load_example_image(image, max_side={MAX_SIDE}) and encode(img, codec, setting)[1]",
            "written_by": "python benchmarks/codec_metric_agreement.py --write-reference <binary>",
            "pillow": Image.__version__,
        },
        "pairs": values,
    }
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE_FILE.write_text(json.dumps(doc, indent=1) + "\n")


def agreement() -> dict:
    """Rows (image, codec, metric, ours, reference, abs diff) and per-metric summaries."""
    recorded = {(p["image"], p["codec"], p["setting"]): p for p in json.loads(REFERENCE_FILE.read_text())["pairs"]}
    metrics = {name: get_metric(name) for name in ("ssimulacra2", "cvvdp", "flip")}
    rows = []
    for name, codec, setting, ref, dist in fixed_pairs():
        entry = recorded[(name, codec, setting)]
        same_pixels = entry["ref_sha256"] == pixel_digest(ref) and entry["dist_sha256"] == pixel_digest(dist)
        for metric, fn in metrics.items():
            ours = float(fn(tensor(ref), tensor(dist))[0])
            if metric == "ssimulacra2":
                reference = entry["ssimulacra2"] if same_pixels else float("nan")
                extra = {"package": package_ssimulacra2(ref, dist)}
            else:
                reference, extra = direct_reference(metric, ref, dist), {}
            rows.append(
                {
                    "image": name,
                    "codec": f"{codec} q{setting}",
                    "metric": metric,
                    "ours": ours,
                    "reference": reference,
                    "abs_diff": abs(ours - reference),
                    **extra,
                }
            )
    summary = {}
    for metric in metrics:
        diffs = np.array([r["abs_diff"] for r in rows if r["metric"] == metric])
        summary[metric] = {"max_abs_diff": float(diffs.max()), "mean_abs_diff": float(diffs.mean())}
        summary[metric]["tolerance"] = TOLERANCES[metric]
    pkg = np.array([abs(r["package"] - r["reference"]) for r in rows if r["metric"] == "ssimulacra2"])
    summary["ssimulacra2_package_as_is"] = {"max_abs_diff": float(pkg.max()), "mean_abs_diff": float(pkg.mean())}
    return {"rows": rows, "summary": summary, "versions": {m: package_version(m) for m in metrics}}


def speed() -> dict:
    """Seconds per image (one pair, after one warm-up call) at 256 and 768 px on the long side."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    out = {}
    for side in (256, 768):
        ref = photo.resize((side, side), Image.Resampling.LANCZOS)
        dist = encode(ref, "jpeg", 30)[1]
        for name in ("ssimulacra2", "cvvdp", "flip"):
            metric = get_metric(name)
            metric(tensor(ref), tensor(dist))
            start = time.perf_counter()
            metric(tensor(ref), tensor(dist))
            out[f"{name}@{side}"] = time.perf_counter() - start
    return out


def markdown(result: dict) -> str:
    lines = [
        "| image | codec | metric | ours | reference | abs diff |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['image']} | {r['codec']} | {r['metric']} | {r['ours']:.6f} | {r['reference']:.6f} "
            f"| {r['abs_diff']:.2g} |"
        )
    lines.append("")
    for metric, s in result["summary"].items():
        tol = f", tolerance {s['tolerance']:g}" if "tolerance" in s else ""
        lines.append(f"- {metric}: max abs diff {s['max_abs_diff']:.3g}, mean {s['mean_abs_diff']:.3g}{tol}")
    lines.append(f"- versions: {result['versions']}")
    for key, seconds in result.get("speed", {}).items():
        lines.append(f"- speed {key} px: {seconds:.3f} s per image ({platform.processor() or platform.machine()})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON document instead of Markdown")
    parser.add_argument("--speed", action="store_true", help="also time each metric at 256 and 768 px")
    parser.add_argument("--write-reference", metavar="BIN", help="re-record the C++ ssimulacra2 values with BIN")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.write_reference:
        write_reference(args.write_reference)
    result = agreement()
    if args.speed:
        result["speed"] = speed()
    print(json.dumps(result, indent=1, allow_nan=True) if args.json else markdown(result))


if __name__ == "__main__":
    main()
