"""Inference speed: PRFNet's overheads measured side by side, in one run, on the same inputs.

1. backbone alone on R, A, B  vs  ``compare(R, A, B)``           (target: compare <= 1.15 x backbone)
2. N separate ``score(R, X_i)`` calls  vs  one ``rank(R, X_1..N)`` (target: rank >= 1.6 x faster)
3. optional (--memory): peak RSS of scoring a 4096 x 4096 pair with tiling, in a fresh process.

Timings alternate between the two sides of each ratio and report medians, so background load hits
both sides alike. Weights are random (speed does not depend on them).

    python benchmarks/bench_inference.py --size 768 --repeats 3 --memory --json-out bench.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from prfnet import PRFNet


def timed(fn, device: torch.device | None = None) -> float:
    """Seconds ``fn()`` takes; on a CUDA ``device`` the queued kernels are waited for before and after."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda _: None)
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def side_by_side(first, second, repeats: int, device: torch.device | None = None) -> tuple[float, float]:
    """Medians of ``repeats`` timings of each, taken alternately after one warm-up call of each."""
    first(), second()  # warm-up
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(first, device))
        b.append(timed(second, device))
    return statistics.median(a), statistics.median(b)


MEMORY_SCRIPT = """
import json, resource, sys, torch
from prfnet import PRFNet
torch.set_num_threads({threads})
model = PRFNet("{backbone}", tile_size={tile}).eval()
ref = torch.rand(1, 3, 4096, 4096)
dist = (ref + 0.05 * torch.randn_like(ref)).clamp_(0, 1)
with torch.inference_mode():
    model.score(ref, dist)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}, allow_nan=False))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="seres2net50")
    parser.add_argument("--size", type=int, default=768, help="image side (CLIC crops are 768)")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--memory", action="store_true", help="also measure a tiled 4096x4096 pair")
    parser.add_argument("--tile", type=int, default=768)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = PRFNet(args.backbone).eval()
    ref, a, b = (torch.rand(1, 3, args.size, args.size) for _ in range(3))
    cands = torch.rand(args.candidates, 3, args.size, args.size)
    norm = lambda x: (x - model.mean) / model.std  # noqa: E731

    with torch.inference_mode():

        def backbone_alone():
            for x in (ref, a, b):
                model.backbone(norm(x))

        t_backbone, t_compare = side_by_side(backbone_alone, lambda: model.compare(ref, a, b), args.repeats)

        def separate_scores():
            for x in cands:
                model.score(ref, x[None])

        t_scores, t_rank = side_by_side(separate_scores, lambda: model.rank(ref, cands), args.repeats)

    result = {
        "backbone": args.backbone,
        "size": args.size,
        "threads": args.threads,
        "repeats": args.repeats,
        "device": "cpu",
        "backbone_alone_s": t_backbone,
        "compare_s": t_compare,
        "compare_over_backbone": t_compare / t_backbone,
        "separate_scores_s": t_scores,
        "rank_s": t_rank,
        "rank_speedup": t_scores / t_rank,
        "candidates": args.candidates,
    }
    if args.memory:
        script = MEMORY_SCRIPT.format(threads=args.threads, backbone=args.backbone, tile=args.tile)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        result["tiled_4096_peak_mb"] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
        result["tiled_4096_s"] = time.perf_counter() - start
        result["tile"] = args.tile

    print(f"backbone alone on R, A, B : {t_backbone:8.3f} s")
    print(f"compare(R, A, B)          : {t_compare:8.3f} s   ratio {t_compare / t_backbone:.3f} (target <= 1.15)")
    print(f"{args.candidates} separate score calls   : {t_scores:8.3f} s")
    speedup = t_scores / t_rank
    print(f"one rank of {args.candidates}            : {t_rank:8.3f} s   speed-up {speedup:.2f}x (target >= 1.6)")
    if args.memory:
        peak, secs = result["tiled_4096_peak_mb"], result["tiled_4096_s"]
        print(f"tiled 4096x4096 pair      : peak {peak:.0f} MB in {secs:.0f} s (tile {args.tile})")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2, allow_nan=False)


if __name__ == "__main__":
    main()
