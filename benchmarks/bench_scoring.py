"""Scoring speed: PRFNet against LPIPS-VGG, and the file pipeline against the model alone, side by side in one run.

1. ``compare(R, A, B)`` of the inference-optimised model (``load_model``'s default: folded batch norms, the
   device's batching policy)  vs  LPIPS-VGG on (R, A) and (R, B)             (goal on CPU: <= 0.25 x)
   also: the unoptimised model, the backbone alone on R, A, B, and one joint backbone call vs separate calls.
2. ``score_pairs`` on PNG files (DataLoader workers decoding, a fresh score store, each reference encoded once)
   vs the model alone on the same images already decoded in memory                  (goal: >= 0.9 x throughput)

Timings alternate between the sides of each ratio and report medians, so background load hits both alike.
Weights are random (speed does not depend on them); LPIPS is torchmetrics' implementation with its shipped
linear layers and a random VGG16 trunk (no download). On a GPU (``--device cuda``) it also reports triplets per
second in fp32 and bf16.

    python benchmarks/bench_scoring.py --size 768 --repeats 2 --json-out bench.json
    python benchmarks/bench_scoring.py --device cuda --size 768 --repeats 5 --json-out bench_gpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_inference import side_by_side, timed  # the same alternating timer (this folder is on sys.path)
from PIL import Image

from prfnet import PRFNet
from prfnet.scoring.engine import score_pairs
from prfnet.scoring.metrics import PRFNetMetric


def lpips_vgg(device: torch.device):
    from torchmetrics.functional.image.lpips import _LPIPS

    net = _LPIPS(pretrained=True, net="vgg", pnet_rand=True).eval().to(device)
    return lambda ref, dist: net(2 * dist - 1, 2 * ref - 1)


def model_rows(args, device) -> dict:
    torch.manual_seed(0)
    plain = PRFNet(args.backbone).to(device).eval()
    fast = copy.deepcopy(plain).optimize_for_inference()  # the device's policy (load_model's default)
    other = copy.deepcopy(fast)
    other.inference = replace(fast.inference, joint_batch=not fast.inference.joint_batch)
    lpips = lpips_vgg(device)
    ref, a, b = (torch.rand(1, 3, args.size, args.size, device=device) for _ in range(3))
    norm = lambda x: (x - plain.mean) / plain.std  # noqa: E731
    out = {"policy_joint_batch": fast.inference.joint_batch, "policy_channels_last": fast.inference.channels_last}
    with torch.inference_mode():
        both_lpips = lambda: (lpips(ref, a), lpips(ref, b))  # noqa: E731
        t_fast, t_lpips = side_by_side(lambda: fast.compare(ref, a, b), both_lpips, args.repeats, device)
        backbone = lambda: [plain.backbone(norm(x)) for x in (ref, a, b)]  # noqa: E731
        t_compare, t_backbone = side_by_side(lambda: fast.compare(ref, a, b), backbone, args.repeats, device)
        t_policy, t_other = side_by_side(
            lambda: fast.compare(ref, a, b), lambda: other.compare(ref, a, b), args.repeats, device
        )
        out.update(
            lpips_vgg_s=t_lpips, compare_s=t_fast, compare_over_lpips=t_fast / t_lpips,
            backbone_alone_s=t_backbone, compare_over_backbone=t_compare / t_backbone,
            policy_compare_s=t_policy, other_layout_compare_s=t_other, other_over_policy=t_other / t_policy,
        )  # fmt: skip
        if not args.no_compile:
            compiled = copy.deepcopy(plain).optimize_for_inference(compile=True)
            out["compile_s"] = timed(lambda: compiled.compare(ref, a, b), device)  # compilation + first call
            t_comp, t_lpips2 = side_by_side(lambda: compiled.compare(ref, a, b), both_lpips, args.repeats, device)
            out.update(compiled_compare_s=t_comp, lpips_vgg_s_2=t_lpips2, compiled_over_lpips=t_comp / t_lpips2)
        if device.type == "cuda":
            for precision in ("fp32", "bf16"):
                m = copy.deepcopy(plain).optimize_for_inference(precision)
                t_m, _ = side_by_side(lambda m=m: m.compare(ref, a, b), both_lpips, args.repeats, device)
                out[f"triplets_per_s_{precision}"] = 1 / t_m
            out["lpips_vgg_triplets_per_s"] = 1 / t_lpips
            out["backbone_alone_triplets_per_s"] = 1 / t_backbone
    return out


def pipeline_rows(args, device) -> dict:
    torch.manual_seed(0)
    model = PRFNet(args.backbone).to(device).eval().optimize_for_inference()
    metric = PRFNetMetric(model)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs, images = [], {}
        for r in range(args.references):
            ref = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
            Image.fromarray(ref).save(tmp / f"r{r}.png")
            images[str(tmp / f"r{r}.png")] = ref
            for d in range(args.distorted):
                noisy = np.clip(ref.astype(np.int16) + rng.integers(-20, 21, ref.shape), 0, 255).astype(np.uint8)
                Image.fromarray(noisy).save(tmp / f"r{r}_d{d}.png")
                images[str(tmp / f"r{r}_d{d}.png")] = noisy
                pairs.append((str(tmp / f"r{r}.png"), str(tmp / f"r{r}_d{d}.png")))
        tensors = {p: torch.from_numpy(x).permute(2, 0, 1)[None].contiguous() for p, x in images.items()}
        runs = iter(range(10**6))

        def model_only():
            with torch.inference_mode():
                for r in range(args.references):
                    ref_path = str(tmp / f"r{r}.png")
                    dists = [tensors[d] for rp, d in pairs if rp == ref_path]
                    for start in range(0, len(dists), args.batch_size):
                        batch = torch.cat(dists[start : start + args.batch_size]).to(device)
                        metric.score_reference(ref_path, tensors[ref_path].to(device), batch)

        def pipeline():
            metric._encoded = None
            store = tmp / f"store{next(runs)}.sqlite"  # a fresh store: everything is computed and committed
            score_pairs(
                pairs,
                [metric],
                device=device,
                batch_size=args.batch_size,
                progress=False,
                store=store,
                workers=args.workers,
            )

        t_model, t_pipeline = side_by_side(model_only, pipeline, args.repeats, device)
    n = len(pairs)
    return {
        "pairs": n,
        "references": args.references,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "model_only_s": t_model,
        "pipeline_s": t_pipeline,
        "model_only_pairs_per_s": n / t_model,
        "pipeline_pairs_per_s": n / t_pipeline,
        "pipeline_over_model_throughput": t_model / t_pipeline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="seres2net50")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=768, help="image side (CLIC crops are 768)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--references", type=int, default=2)
    parser.add_argument("--distorted", type=int, default=4, help="distorted images per reference")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled-backbone rows")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {
        "backbone": args.backbone,
        "size": args.size,
        "device": str(device),
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    result["model"] = model_rows(args, device)
    m = result["model"]
    print(f"LPIPS-VGG on (R,A), (R,B)        : {m['lpips_vgg_s']:8.3f} s")
    print(f"compare(R, A, B)                 : {m['compare_s']:8.3f} s   {m['compare_over_lpips']:.3f} x LPIPS-VGG")
    print(f"backbone alone on R, A, B        : {m['backbone_alone_s']:8.3f} s   compare = "
          f"{m['compare_over_backbone']:.3f} x the backbone alone")  # fmt: skip
    layout = "one joint call" if m["policy_joint_batch"] else "separate calls"
    print(f"policy ({layout})         : {m['policy_compare_s']:8.3f} s   the other: {m['other_over_policy']:.3f} x")
    if "compiled_compare_s" in m:
        print(f"compare, compiled backbone       : {m['compiled_compare_s']:8.3f} s   "
              f"{m['compiled_over_lpips']:.3f} x LPIPS-VGG (measured beside it: {m['lpips_vgg_s_2']:.3f} s); "
              f"compilation + first call {m['compile_s']:.0f} s")  # fmt: skip
    for key in (
        "triplets_per_s_fp32",
        "triplets_per_s_bf16",
        "lpips_vgg_triplets_per_s",
        "backbone_alone_triplets_per_s",
    ):
        if key in m:
            print(f"{key:33s}: {m[key]:8.2f}")
    if not args.skip_pipeline:
        result["pipeline"] = p = pipeline_rows(args, device)
        print(f"model alone, {p['pairs']} pairs in memory    : {p['model_only_s']:8.3f} s")
        print(
            f"score_pairs from PNG, {p['workers']} workers  : {p['pipeline_s']:8.3f} s   throughput "
            f"{p['pipeline_over_model_throughput']:.3f} x the model alone"
        )
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2, allow_nan=False)


if __name__ == "__main__":
    main()
