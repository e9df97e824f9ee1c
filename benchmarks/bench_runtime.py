"""Speed of the runtimes where users score: PyTorch eager, PyTorch with a compiled backbone and onnxruntime, against
LPIPS-VGG eager and against the backbone floor, side by side in one run; ``rank`` of 8 against 8 separate scores; the
onnxruntime session settings one at a time; ``prfnet --help``; the demo by phase.

Every ratio compares timings taken in one run, interleaved (one call of each in turn, ``--repeats`` rounds after a
warm-up round) and reported as medians, so background load hits all sides alike. Weights are random (speed does not
depend on them); LPIPS is torchmetrics' implementation with its shipped linear layers and a random VGG16 trunk.

    python benchmarks/bench_runtime.py --sizes 256 768 --repeats 5 --json-out benchmarks/results_runtime_cpu.json
    python benchmarks/bench_runtime.py --only tune --sizes 768      # what each onnxruntime setting buys
    python benchmarks/bench_runtime.py --only demo                  # prfnet demo by phase, torch and onnxruntime
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_inference import timed  # this folder is on sys.path
from bench_scoring import lpips_vgg

from prfnet import PRFNet


def interleaved(calls: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each of ``calls`` (name -> function), called in turn for ``repeats`` rounds after one
    warm-up round; the order rotates by one each round, so no call always runs first (or after the same one)."""
    for fn in calls.values():
        fn()
    names = list(calls)
    times = {name: [] for name in calls}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(calls[name]))
    return {name: statistics.median(t) for name, t in times.items()}


class ExportedCompare:
    """Before ``--runtime onnxruntime`` (a prfnet without ``use_runtime``): what a user could do, the graph of
    ``prfnet export --what compare`` in an onnxruntime session of default settings; ``rank``/``score`` through the
    ``compare`` graph's two distances (the reference encoded once per call)."""

    def __init__(self, model, threads: int):
        import onnxruntime

        from prfnet.model.export import export_onnx

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.path = Path(tempfile.mkdtemp()) / "compare.onnx"
        export_onnx(model, self.path, what="compare")
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def compare(self, ref, a, b):
        return self.session.run(None, {"ref": ref.numpy(), "a": a.numpy(), "b": b.numpy()})[0]

    def score(self, ref, dist):
        return self.session.run(None, {"ref": ref.numpy(), "a": dist.numpy(), "b": dist.numpy()})[1]

    def rank(self, ref, candidates, batch_size=8):
        return [self.score(ref.expand(len(c), -1, -1, -1).contiguous(), c) for c in candidates.split(batch_size)]


def compare_rows(args, size: int) -> dict:
    """compare(R, A, B) in each runtime against LPIPS-VGG and the backbone floor; rank of 8 against 8 scores."""
    torch.manual_seed(0)
    eager = PRFNet(args.backbone).eval().optimize_for_inference()
    if hasattr(eager, "use_runtime"):
        ort = copy.deepcopy(eager).use_runtime("onnxruntime", threads=args.threads)
    else:
        ort = ExportedCompare(eager, args.threads)
    g = torch.Generator().manual_seed(size)
    ref, a, b = (torch.rand(1, 3, size, size, generator=g) for _ in range(3))
    candidates = torch.rand(8, 3, size, size, generator=g)
    lpips = lpips_vgg(torch.device("cpu"))
    norm = lambda x: (x - eager.mean) / eager.std  # noqa: E731
    calls = {
        "lpips_vgg": lambda: (lpips(ref, a), lpips(ref, b)),
        "backbone_floor": lambda: [eager.backbone(norm(x)) for x in (ref, a, b)],
        "torch_eager": lambda: eager.compare(ref, a, b),
        "onnxruntime": lambda: ort.compare(ref, a, b),
    }
    if hasattr(eager, "use_runtime"):  # the runtime's two graphs against one exported compare graph, side by side
        graph = ExportedCompare(eager, args.threads)
        calls["onnxruntime_compare_graph"] = lambda: graph.compare(ref, a, b)
    if args.compile:
        compiled = copy.deepcopy(eager).optimize_for_inference(compile=True)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled.compare(ref, a, b)
        compile_s = time.perf_counter() - start
        calls["torch_compiled"] = lambda: compiled.compare(ref, a, b)
    with torch.inference_mode():
        t = interleaved(calls, args.repeats)
        ranks = interleaved(
            {
                "torch_rank8": lambda: eager.rank(ref, candidates, batch_size=8),
                "torch_8_scores": lambda: [eager.score(ref, c) for c in candidates.split(1)],
                "onnxruntime_rank8": lambda: ort.rank(ref, candidates, batch_size=8),
                "onnxruntime_8_scores": lambda: [ort.score(ref, c) for c in candidates.split(1)],
            },
            max(1, args.repeats // 2),
        )
    row = {"size": size, "seconds": t | ranks}
    row["ratio_to_lpips"] = {k: t[k] / t["lpips_vgg"] for k in t if k != "lpips_vgg"}
    row["ratio_to_backbone_floor"] = {k: t[k] / t["backbone_floor"] for k in t if k not in ("lpips_vgg",)}
    row["rank8_speedup"] = {rt: ranks[f"{rt}_8_scores"] / ranks[f"{rt}_rank8"] for rt in ("torch", "onnxruntime")}
    if args.compile:
        row["compile_and_first_call_s"] = compile_s
    return row


SPINNING = "session.intra_op.allow_spinning"


def tune_rows(args, size: int) -> dict:
    """onnxruntime compare at ``size`` under each session setting (one changed at a time from the shipped ones)."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = PRFNet(args.backbone).eval().use_runtime("onnxruntime", threads=args.threads)
    files = model.runtime.files
    g = torch.Generator().manual_seed(size)
    ref, a, b = (torch.rand(1, 3, size, size, generator=g) for _ in range(3))
    level = ort.GraphOptimizationLevel

    def variant(change):
        from prfnet.model.runtime import session_options

        options = session_options(args.threads)
        change(options)
        m = copy.deepcopy(model)
        m.runtime._sessions = {w: ort.InferenceSession(str(files[w]), options) for w in files}
        return m

    def set_level(value):
        return lambda o: setattr(o, "graph_optimization_level", value)

    variants = {
        "shipped (ORT_ENABLE_EXTENDED)": variant(lambda o: None),
        "all optimisations (ORT_ENABLE_ALL: + NCHWc layouts)": variant(set_level(level.ORT_ENABLE_ALL)),
        "basic (constant folding, redundant nodes)": variant(set_level(level.ORT_ENABLE_BASIC)),
        "no graph optimisation (ORT_DISABLE_ALL)": variant(set_level(level.ORT_DISABLE_ALL)),
        "intra-op threads do not spin": variant(lambda o: o.add_session_config_entry(SPINNING, "0")),
        "no memory-pattern planning": variant(lambda o: setattr(o, "enable_mem_pattern", False)),
        "no CPU memory arena": variant(lambda o: setattr(o, "enable_cpu_mem_arena", False)),
    }
    joint = copy.deepcopy(variants["shipped (ORT_ENABLE_EXTENDED)"])
    joint.inference = type(joint.inference)(joint_batch=True)
    variants["one encoder call over [R, A, B]"] = joint
    with torch.inference_mode():
        t = interleaved({name: (lambda m=m: m.compare(ref, a, b)) for name, m in variants.items()}, args.repeats)
    base = t["shipped (ORT_ENABLE_EXTENDED)"]
    return {"size": size, "seconds": t, "ratio_to_shipped": {k: v / base for k, v in t.items()}}


def help_row(repeats: int) -> dict:
    """Wall time of ``prfnet --help`` in a fresh process (median of ``repeats``)."""
    runs = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "prfnet", "--help"], check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return {"prfnet_help_s": statistics.median(runs[1:])}


def demo_rows(args) -> dict:
    """``prfnet demo`` wall time by phase (the seconds between its stage lines), torch then onnxruntime."""
    import inspect

    from prfnet.demo import run_demo

    rows = {}
    runtimes = ("torch", "onnxruntime") if "runtime" in inspect.signature(run_demo).parameters else ("torch",)
    for runtime in runtimes:
        extra = {"runtime": runtime, "threads": args.threads} if len(runtimes) > 1 else {}
        marks = []

        def mark(line: str, marks=marks) -> None:
            marks.append((line.split(" ", 1)[0], time.perf_counter()))

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = run_demo(Path(tmp) / "demo", progress=False, stage=mark, store=None, **extra)
            end = time.perf_counter()
        names = {"1/5": "encoding", "2/5": "training", "3/5": "evaluating", "4/5": "report", "5/5": "compare"}
        phases = {names[m]: (marks[i + 1][1] if i + 1 < len(marks) else end) - t for i, (m, t) in enumerate(marks)}
        rows[runtime] = {
            "total_s": end - start,
            "phases_s": phases,
            "prfnet_accuracy": result.results["prfnet"]["accuracy"],
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="seres2net50")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 768])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="Skip the compiled backbone.")
    parser.add_argument("--only", choices=["compare", "tune", "help", "demo"], nargs="+")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = set(args.only or ["compare", "tune", "help"])  # the demo takes minutes per runtime: ask for it
    out = {
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__},
        "backbone": args.backbone,
        "repeats": args.repeats,
    }
    if "compare" in only:
        out["compare"] = [compare_rows(args, s) for s in args.sizes]
    if "tune" in only and hasattr(PRFNet, "use_runtime"):
        out["tune"] = [tune_rows(args, s) for s in args.sizes]
    if "help" in only:
        out |= help_row(args.repeats)
    if "demo" in only:
        out["demo"] = demo_rows(args)
    text = json.dumps(out, indent=2, allow_nan=False)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
