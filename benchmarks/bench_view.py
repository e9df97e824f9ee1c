"""Time to the first page of ``prfnet view`` on a large CLIC result (issue 18: under 2 s for 20,000 triplets).

Writes a CLIC-format evaluation output set of ``--triplets`` triplets over ``--refs`` references (each with 6
distorted PNGs of 256 px, 9 metrics' submissions, 3 votes per triplet), then, ``--repeats`` times: starts
``prfnet view OUT --json`` in a fresh process, opens its URL in a fresh headless Chromium (``/usr/bin/chromium``,
Playwright) and waits until the table's first page is drawn. Reports the median and range of: process start to
URL printed (catalog built, document serialised, port bound), and process start to the first page drawn.

    python benchmarks/bench_view.py --triplets 20000 --refs 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

METRICS = ("prfnet", "psnr", "ssim", "ms_ssim", "fsim", "vif", "gmsd", "haarpsi", "mdsi")


def write_set(root: Path, triplets: int, refs: int) -> Path:
    rng = np.random.default_rng(0)
    images = root / "images"
    images.mkdir(parents=True)
    for r in range(refs):
        base = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        Image.fromarray(base).save(images / f"r{r}.png", compress_level=1)
        for d in range(6):
            noisy = np.clip(base + rng.normal(0, 4 * (d + 1), base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(images / f"r{r}_d{d}.png", compress_level=1)
    keys = []
    for i in range(triplets):
        r, d = i % refs, (i // refs) % 15
        a, b = [(x, y) for x in range(6) for y in range(x + 1, 6)][d]
        keys.append((f"r{r}.png", f"r{r}_d{a}.png", f"r{r}_d{b}.png"))
    (root / "validation.csv").write_text("".join(",".join(k) + "\n" for k in keys))
    (root / "oracle.csv").write_text("".join(f"{o},{a},{b},{v}\n" for o, a, b in keys for v in (0, 1, 0)))
    out = root / "out"
    out.mkdir()
    results = {}
    for m, metric in enumerate(METRICS):
        rows = "".join(f"{o},{a},{b},{(i * 7 + m) % 3 % 2}\n" for i, (o, a, b) in enumerate(keys))
        (out / f"submission_{metric}.csv").write_text(rows)
        results[metric] = {"available": True, "higher_better": metric not in ("prfnet", "gmsd", "mdsi"),
                           "submission": f"out/submission_{metric}.csv"}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results))
    command = "prfnet eval clic --csv validation.csv --root images --oracle oracle.csv --out out --metrics "
    command += ",".join(METRICS)
    manifest = {"format": "prfnet-outputs", "version": 1, "run_id": "bench", "command": command, "files": []}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def first_page(out: Path, browser) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "prfnet", "view", str(out), "--json"], cwd=out.parent,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = json.loads(process.stdout.readline())["url"]
        served = time.perf_counter() - start
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length > 0")
        drawn = time.perf_counter() - start
        rows = page.inner_text("#count")
        context.close()
    finally:
        process.terminate()
        process.wait()
    print(f"  URL after {served:.2f} s, first page ({rows} triplets) after {drawn:.2f} s", flush=True)
    return served, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triplets", type=int, default=20_000)
    parser.add_argument("--refs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        os.environ.setdefault("PRFNET_CACHE", str(Path(tmp) / "cache"))
        out = write_set(Path(tmp), args.triplets, args.refs)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        first_page(out, browser)  # warm the file cache once
        times = [first_page(out, browser) for _ in range(args.repeats)]
        browser.close()
    for name, values in zip(("URL printed", "first page drawn"), zip(*times, strict=True), strict=True):
        print(f"{name}: median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f} s, "
              f"{args.repeats} runs, {args.triplets} triplets, {args.refs * 7} images)")  # fmt: skip


if __name__ == "__main__":
    main()
