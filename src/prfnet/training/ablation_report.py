"""The figure and the page of ``prfnet ablate``: the plot saved as ``ablation.png`` (accuracy per variant and seed
with its interval) and ``report.html`` (the table of every run, the plot, the variants' overrides), drawn from the
``ablation.json`` document of :func:`prfnet.training.ablate.run_ablation` alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..report.html import Report


def plot_ablation(document: dict):
    """Accuracy per variant (one point per seed with its 95 % interval, and the mean over seeds); a Figure."""
    from matplotlib.figure import Figure

    results = document["results"]
    names = list(results)
    seeds = document["seeds"]
    fig = Figure(figsize=(max(4.0, 1.3 * len(names) + 1.5), 3.6))
    ax = fig.subplots()
    width = 0.5 / max(len(seeds), 1)
    for i, seed in enumerate(seeds):
        offset = (i - (len(seeds) - 1) / 2) * width
        points = [(j, results[n]["runs"][str(seed)]["accuracy"]) for j, n in enumerate(names)]
        x = [j + offset for j, _ in points]
        y = [a["estimate"] for _, a in points]
        err = [[a["estimate"] - a["low"] for _, a in points], [a["high"] - a["estimate"] for _, a in points]]
        ax.errorbar(x, y, yerr=err, fmt="o", capsize=3, markersize=4, label=f"seed {seed}")
    if len(seeds) > 1:
        ax.plot(range(len(names)), [results[n]["mean"]["accuracy"] for n in names], "k_", markersize=18, label="mean")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("validation accuracy")
    ax.set_title("ablation: accuracy on held-out triplets (95 % reference bootstrap)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_report(path: Path, document: dict, fig) -> None:
    """``report.html``: the table of every variant and seed, the mean over seeds, and the plot (inlined)."""
    report = Report("PRFNet ablation")
    report.add_text(
        "Accuracy: agreement of the sign of the logit with the majority label on the run's held-out validation "
        "triplets (ties and zero logits count 0.5). Intervals: 95 % percentile bootstrap resampling references. "
        "Difference: variant minus paper, per triplet, resampled by reference (paired). " + document["holdout"] + ".",
        note=True,
    )
    rows = []
    for variant, entry in document["results"].items():
        diffs = (entry["difference_to_paper"] or {}).get("per_seed", {})
        for seed, run in entry["runs"].items():
            acc, diff = run["accuracy"], diffs.get(seed)
            d = [diff["mean"], f"[{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]"] if diff else ["", ""]
            rows.append(
                [variant, seed, acc["estimate"], f"[{acc['low']:.3f}, {acc['high']:.3f}]", run["agreement"], *d]
            )
        mean_diff = entry["difference_to_paper"]["mean"] if entry["difference_to_paper"] else ""
        rows.append([variant, "mean", entry["mean"]["accuracy"], "", entry["mean"]["agreement"], mean_diff, ""])
    columns = ["variant", "seed", "accuracy", "95 % interval", "agreement", "minus paper", "95 % interval (paired)"]
    report.add_heading("Accuracy per variant")
    report.add_table(columns, rows, floatfmt=".4f")
    report.add_heading("Plot")
    report.add_figure(fig, "accuracy per variant and seed with 95 % reference-bootstrap intervals")
    report.add_heading("Variants")
    report.add_table(
        ["variant", "overrides"], [[v, json.dumps(e["overrides"])] for v, e in document["results"].items()]
    )
    report.write(path)
