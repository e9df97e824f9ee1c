"""RD curves, CompressAI results, BD-rate with its bootstrap interval, the RD figure and the HTML report."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import bjontegaard as bd
import numpy as np
import pytest

from prfnet.errors import ConfigError
from prfnet.rd import (
    COMPRESSAI_KEYS,
    RDItem,
    akima_bd_rate,
    bd_rate_table,
    build_curves,
    compressai_results,
    plot_rd,
    rd_report,
    result_key,
)

BPP = np.array([0.2, 0.45, 0.9, 1.6])  # anchor bpp of image 0 at its 4 rate points


def rd_set(codecs: dict[str, float], n_images: int = 3, seed: int = 0, identical: bool = False):
    """Items and scores of codecs whose bpp is the anchor's times ``codecs[codec]`` at the same quality.

    psnr (higher = closer) = 30 + 6 log2(bpp of the anchor) + an image offset; prfnet (a distance) = exp(-psnr / 10);
    per image the anchor bpp is BPP times a random factor (all 1 with ``identical``)."""
    rng = np.random.default_rng(seed)
    factors = np.ones(n_images) if identical else rng.uniform(0.6, 1.6, n_images)
    offsets = np.zeros(n_images) if identical else rng.normal(0, 1.5, n_images)
    items, psnr, prfnet = [], [], []
    for codec, scale in codecs.items():
        for r in (2, 0, 3, 1):  # rate points listed out of bpp order
            for i in range(n_images):
                anchor_bpp = BPP[r] * factors[i]
                p = 30 + 6 * math.log2(anchor_bpp) + offsets[i]
                items.append(RDItem(codec, f"img{i}", f"q{r}", Path(f"{codec}/q{r}/img{i}.png"), Path(f"img{i}.png"),
                                    anchor_bpp * scale))  # fmt: skip
                psnr.append(p)
                prfnet.append(math.exp(-p / 10.0))
    return items, {"psnr": psnr, "prfnet": prfnet}


def curves_of(codecs, **kwargs):
    items, scores = rd_set(codecs, **kwargs)
    return build_curves(items, scores, {"psnr": True, "prfnet": False})


# ----------------------------------------------------------------------------------------- curves and CompressAI


def test_build_curves_orders_rate_points_by_mean_bpp_and_keeps_the_values():
    items = [
        RDItem("webp", "b", "hi", Path("w/hi/b.png"), Path("b.png"), 2.0),
        RDItem("webp", "a", "hi", Path("w/hi/a.png"), Path("a.png"), 1.0),
        RDItem("webp", "a", "lo", Path("w/lo/a.png"), Path("a.png"), 0.5),
        RDItem("webp", "b", "lo", Path("w/lo/b.png"), Path("b.png"), 0.7),
        RDItem("avif", "a", "x", Path("v/x/a.png"), Path("a.png"), 0.3),
    ]
    scores = {"psnr": [40.0, 38.0, 30.0, 31.0, 33.0], "lpips": [0.1, 0.2, 0.4, 0.3, None]}
    curves = build_curves(items, scores, {"psnr": True, "lpips": False})
    assert curves.codecs == ["webp", "avif"] and curves.images == ["a", "b"]
    assert curves.rate_points == {"webp": ["lo", "hi"], "avif": ["x"]}
    np.testing.assert_array_equal(curves.bpp["webp"], [[0.5, 1.0], [0.7, 2.0]])
    np.testing.assert_array_equal(curves.scores["psnr"]["webp"], [[30.0, 38.0], [31.0, 40.0]])
    assert np.isnan(curves.bpp["avif"][1, 0]) and np.isnan(curves.scores["lpips"]["avif"]).all()
    assert curves.higher_better == {"psnr": True, "lpips": False}

    results = compressai_results(curves, "webp", description="libwebp 1.3")
    assert results == {
        "name": "webp",
        "description": "libwebp 1.3",
        "results": {"bpp": [0.6, 1.5], "psnr-rgb": [30.5, 39.0], "lpips": [pytest.approx(0.35), pytest.approx(0.15)]},
    }
    assert compressai_results(curves, "avif")["results"] == {"bpp": [None], "psnr-rgb": [None], "lpips": [None]}
    json.dumps(compressai_results(curves, "avif"), allow_nan=False)
    with pytest.raises(ConfigError, match="jpeg"):
        compressai_results(curves, "jpeg")


def test_compressai_keys_and_ms_ssim_in_db():
    assert COMPRESSAI_KEYS["psnr"] == "psnr-rgb"
    assert [result_key(m) for m in ("psnr", "ms_ssim_rgb", "ms_ssim", "prfnet", "lpips", "fsimc")] == [
        "psnr-rgb", "ms-ssim-rgb", "ms-ssim-y", "prfnet", "lpips", "fsimc",
    ]  # fmt: skip
    items = [RDItem("c", "a", f"q{r}", Path(f"{r}.png"), Path("a.png"), 0.1 * (r + 1)) for r in range(2)]
    scores = {"ms_ssim_rgb": [0.9, 0.99], "ms_ssim": [0.8, 0.9]}
    curves = build_curves(items, scores, {"ms_ssim_rgb": True, "ms_ssim": True})
    plain = compressai_results(curves, "c")["results"]
    assert list(plain) == ["bpp", "ms-ssim-rgb", "ms-ssim-y"]
    results = compressai_results(curves, "c", ms_ssim_db=True)["results"]
    assert list(results) == ["bpp", "ms-ssim-rgb", "ms-ssim-rgb-db", "ms-ssim-y"]
    assert results["ms-ssim-rgb-db"] == [pytest.approx(10.0), pytest.approx(20.0)]


# ---------------------------------------------------------------------------------------------------------- BD-rate


def test_bd_rate_of_a_codec_with_80_percent_of_the_bits_is_minus_20_for_both_directions():
    curves = curves_of({"jpeg": 1.0, "better": 0.8, "same": 1.0})
    table = bd_rate_table(curves, "jpeg", bootstrap=200)
    for metric in ("psnr", "prfnet"):  # prfnet is a distance: without the negation bjontegaard would fail
        assert table["bd_rate"][metric]["better"] == pytest.approx(-20.0, abs=0.5), metric
        assert table["bd_rate"][metric]["same"] == pytest.approx(0.0, abs=1e-9)
        assert table["bd_rate"][metric]["jpeg"] == 0.0
        assert table["notes"][metric] == {}
    assert table["direction"] == {"psnr": "higher", "prfnet": "lower"}
    assert (table["anchor"], table["method"], table["n_images"], table["bootstrap"]) == ("jpeg", "akima", 3, 200)
    json.dumps(table, allow_nan=False)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    items, scores = rd_set({"jpeg": 1.0}, n_images=8, seed=3)
    rng = np.random.default_rng(7)  # a test codec that is better on some images and worse on others
    gains = dict(zip([f"img{i}" for i in range(8)], rng.uniform(0.6, 1.1, 8), strict=True))
    items += [
        RDItem("test", it.image, it.rate_point, it.decoded, it.original, it.bpp * gains[it.image]) for it in items
    ]
    scores = {m: v + v for m, v in scores.items()}
    curves = build_curves(items, scores, {"psnr": True, "prfnet": False})
    first = bd_rate_table(curves, "jpeg", bootstrap=300, seed=1)
    for metric in ("psnr", "prfnet"):
        low, high = first["bd_rate_ci95"][metric]["test"]
        assert low < first["bd_rate"][metric]["test"] < high and high - low > 1.0
    assert bd_rate_table(curves, "jpeg", bootstrap=300, seed=1) == first
    assert bd_rate_table(curves, "jpeg", bootstrap=300, seed=2)["bd_rate_ci95"] != first["bd_rate_ci95"]
    assert bd_rate_table(curves, "jpeg", bootstrap=0)["bd_rate_ci95"]["psnr"] == {"jpeg": None, "test": None}


def test_bootstrap_interval_has_zero_width_for_identical_images():
    table = bd_rate_table(curves_of({"jpeg": 1.0, "webp": 0.7}, n_images=5, identical=True), "jpeg", bootstrap=100)
    for metric in ("psnr", "prfnet"):
        low, high = table["bd_rate_ci95"][metric]["webp"]
        assert high - low == pytest.approx(0.0, abs=1e-9)
        assert low == pytest.approx(table["bd_rate"][metric]["webp"], abs=1e-9)


def test_curves_that_do_not_overlap_give_none_and_a_note():
    items, scores = rd_set({"jpeg": 1.0, "webp": 1.0})
    half = len(items) // 2
    scores["psnr"] = scores["psnr"][:half] + [p + 40 for p in scores["psnr"][half:]]
    curves = build_curves(items, scores, {"psnr": True, "prfnet": False})
    table = bd_rate_table(curves, "jpeg", bootstrap=50)
    assert table["bd_rate"]["psnr"]["webp"] is None and table["bd_rate_ci95"]["psnr"]["webp"] is None
    note = table["notes"]["psnr"]["webp"]
    assert note.startswith("curves do not overlap: anchor jpeg psnr-rgb ") and " dB, webp " in note
    assert table["bd_rate"]["prfnet"]["webp"] == pytest.approx(0.0, abs=1e-9)  # the other metric is unaffected


def test_non_monotone_quality_never_crashes():
    items, scores = rd_set({"jpeg": 1.0, "webp": 0.9})
    curves = build_curves(items, scores, {"psnr": True, "prfnet": False})
    curves.scores["psnr"]["webp"][:, 2] += 50.0  # the third rate point of webp is far better than the fourth
    table = bd_rate_table(curves, "jpeg", bootstrap=20)
    assert table["bd_rate"]["psnr"]["webp"] is None
    assert "mean psnr-rgb of webp does not rise strictly with bpp" in table["notes"]["psnr"]["webp"]
    cubic = bd_rate_table(curves, "jpeg", method="cubic", bootstrap=20)
    assert math.isfinite(cubic["bd_rate"]["psnr"]["webp"]) and "computed anyway" in cubic["notes"]["psnr"]["webp"]
    curves.scores["prfnet"]["jpeg"][:, 1] += 5.0  # a distance that rises with bpp at the anchor's first step
    table = bd_rate_table(curves, "jpeg", bootstrap=20)
    assert table["bd_rate"]["prfnet"]["webp"] is None
    assert "mean prfnet of jpeg does not fall strictly with bpp" in table["notes"]["prfnet"]["webp"]


def test_missing_scores_and_bad_options():
    curves = curves_of({"jpeg": 1.0, "webp": 0.9})
    curves.scores["psnr"]["webp"][1, 1] = np.nan
    table = bd_rate_table(curves, "jpeg", bootstrap=10)
    assert table["bd_rate"]["psnr"]["webp"] is None and "1 missing value" in table["notes"]["psnr"]["webp"]
    with pytest.raises(ConfigError, match="jpeg, webp"):
        bd_rate_table(curves, "avif")
    with pytest.raises(ConfigError, match="akima"):
        bd_rate_table(curves, "jpeg", method="linear")


@pytest.mark.parametrize("n_anchor, n_test", [(4, 4), (3, 6), (2, 5), (2, 2)])
def test_vectorised_akima_matches_bjontegaard(n_anchor, n_test):
    rng = np.random.default_rng(n_anchor * 10 + n_test)
    rows = 60
    ra, rt = (np.sort(rng.uniform(0.05, 3, (rows, n)), axis=1) for n in (n_anchor, n_test))
    qa, qt = (np.sort(rng.uniform(20, 40, (rows, n)), axis=1) for n in (n_anchor, n_test))
    qa[0] = np.linspace(25, 35, n_anchor)  # collinear points: Akima's undefined-slope branch
    ra[0] = 10 ** np.linspace(-1, 0.3, n_anchor)
    got = akima_bd_rate(ra, qa, rt, qt)
    for b in range(rows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = bd.bd_rate(ra[b], qa[b], rt[b], qt[b], method="akima", require_matching_points=False)
        assert got[b] == pytest.approx(want, rel=1e-9, abs=1e-9, nan_ok=True)
    qt[:, 1] = qt[:, 0]  # not strictly rising: bjontegaard raises, the vectorised copy gives NaN
    assert np.isnan(akima_bd_rate(ra, qa, rt, qt)).all()


def test_six_metrics_four_codecs_and_1000_resamples_take_well_under_30_seconds():
    items, base = rd_set({"jpeg": 1.0, "webp": 0.8, "avif": 0.6, "jxl": 0.7}, n_images=24)
    scores = {f"m{k}": [v + k for v in base["psnr"]] for k in range(6)}
    curves = build_curves(items, scores, dict.fromkeys(scores, True))
    start = time.perf_counter()
    table = bd_rate_table(curves, "jpeg", bootstrap=1000)
    assert time.perf_counter() - start < 10.0
    assert all(ci is not None for by_codec in table["bd_rate_ci95"].values() for ci in by_codec.values())


# ---------------------------------------------------------------------------------------------- figure and report


def test_plot_rd_has_one_line_per_codec_with_the_mean_curves():
    curves = curves_of({"jpeg": 1.0, "webp": 0.8})
    fig = plot_rd(curves, "prfnet")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["jpeg", "webp"]
    for line, codec in zip(ax.get_lines(), ("jpeg", "webp"), strict=True):
        np.testing.assert_allclose(line.get_xdata(), curves.bpp[codec].mean(axis=0))
        np.testing.assert_allclose(line.get_ydata(), curves.scores["prfnet"][codec].mean(axis=0))
    assert ax.get_xlabel() == "bits per pixel" and "lower = closer" in ax.get_ylabel()
    assert "higher = closer" in plot_rd(curves, "psnr").axes[0].get_ylabel()


def test_report_has_the_bd_rate_table_the_figures_and_the_rate_points(tmp_path):
    curves = curves_of({"jpeg": 1.0, "webp": 0.8})
    table = bd_rate_table(curves, "jpeg", bootstrap=50)
    table["notes"]["psnr"]["webp"] = "a note about <webp>"
    report = rd_report(curves, table, "RD on tiny", notes=["scored on CPU"])
    page = report.html()
    low, high = table["bd_rate_ci95"]["psnr"]["webp"]
    assert f"<td>{table['bd_rate']['psnr']['webp']:+.1f} [{low:+.1f}, {high:+.1f}]</td>" in page
    assert "<td>jpeg</td><td>anchor</td><td>anchor</td>" in page
    assert page.count("data:image/png;base64,") == 2
    assert "psnr-rgb BD-rate %" in page and "a note about &lt;webp&gt;" in page and "scored on CPU" in page
    assert f"<td>q0</td><td>{curves.bpp['jpeg'][:, 0].mean():.4f}</td>" in page
    assert "n_images = 3" in page
    written = report.write(tmp_path / "report.html")
    assert written.read_text(encoding="utf-8") == page
    assert "BD-rate not computed" in rd_report(curves, None, "no bd").html()
