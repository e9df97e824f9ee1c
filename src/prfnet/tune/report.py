"""The report of a ``prfnet tune`` run (``report.html``) and the lines of its terminal table."""

from __future__ import annotations

from pathlib import Path

from ..report.html import Report


def interval_text(entry: dict | None, digits: int = 1, unit: str = "") -> str:
    """``"-23.4 % [-30.1, -17.0]"``-style text of an estimate with its interval ("-" when there is none)."""
    if not entry:
        return "-"
    text = f"{entry['estimate']:+.{digits}f}{unit}" if unit == " %" else f"{entry['estimate']:.{digits}f}{unit}"
    if entry.get("low") is None:
        return text
    return f"{text} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"


def totals_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of the per-codec totals: images meeting the target, mean bpp and (with a match encoding) the
    bits saved against it, each with its 95 % interval over images, the mean encodes and the violations seen."""
    matched = summary["target"]["kind"] == "match"
    columns = ["codec", "met", "mean bpp [95 %]"]
    if matched:
        columns.append(f"bits saved vs {summary['target']['encoding']} [95 %]")
    columns += ["encodes / image", "non-monotone steps"]
    rows = []
    for codec, t in summary["totals"].items():
        row = [codec, f"{t['n_met']}/{t['n_images']}", interval_text(t["mean_bpp"], 3)]
        if matched:
            row.append(interval_text(t.get("bits_saved_percent"), 1, " %"))
        row += [f"{t['mean_encodes']:.1f}" if t["mean_encodes"] is not None else "-", str(t["violations"])]
        rows.append(row)
    return columns, rows


def target_text(summary: dict) -> str:
    metric = summary["metric"]
    way = ">=" if metric["higher_better"] else "<="
    if summary["target"]["kind"] == "match":
        return f"{metric['name']} {way} that of {summary['target']['encoding']}, per image"
    return f"{metric['name']} {way} {summary['target']['value']:g}"


def write_report(summary: dict, path: Path) -> Path:
    """One self-contained HTML page: the target, the totals, every image's choice per codec."""
    report = Report("prfnet tune: the fewest bits meeting a target")
    report.add_text(
        f"Target: {target_text(summary)} ({summary['metric']['about']}). {summary['n_images']} images; "
        f"bisection over each codec's setting, at most {summary['max_encodes']} encodes per image."
    )
    report.add_heading("Totals")
    columns, rows = totals_rows(summary)
    report.add_table(columns, rows)
    report.add_text(
        "Intervals: 95 % percentile bootstrap over images. Bits saved: 1 - (sum of the chosen files' bytes) / (sum "
        "of the match encoding's bytes), over the images where the codec met the target. Non-monotone steps: "
        "neighbouring settings tried where the higher one was further from the reference or smaller.",
        note=True,
    )
    report.add_heading("Per image")
    image_rows = []
    for image in summary["images"]:
        for codec, c in image["codecs"].items():
            image_rows.append([image["image"], codec, c["status"], c["label"], c["bpp"], c["distance"], c["target"],
                               c["encodes"], c.get("saved_percent", "-")])  # fmt: skip
    report.add_table(["image", "codec", "status", "setting", "bpp", "distance", "target", "encodes", "saved %"],
                     image_rows, floatfmt=".4g")  # fmt: skip
    return report.write(path)
