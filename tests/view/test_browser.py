"""The viewer's page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the triplets
table pages, filters and sorts (counts checked against a document with known decisions, also at 20,000 rows);
keys flip A and B (the pixels shown change); wheel zoom and drag keep R, A and B aligned, with nearest-neighbour
pixels above 1:1; the score-map overlay appears and its opacity changes the pixels; an RD point and a MOS point
open their images; the static export opens from file:// and the server mode shows the same table with the token on
every request. Every wait is on a condition, never a fixed sleep; no timing is asserted."""

from __future__ import annotations

import io
import os
from contextlib import ExitStack
from fnmatch import fnmatch
from pathlib import Path

import pytest
from PIL import Image

from prfnet.stats.correlation import LogisticFit

from .conftest import ASSET_NAMES, ASSETS, ContractServer, make_docs_screenshots
from .documents import BLUE, COLOURS, RED, mos_view, rd_colour, rd_decoded, rd_view, triplet_view

ROOT = Path(__file__).resolve().parents[2]

# -- helpers ----------------------------------------------------------------------------------------------------------


def shot(page, selector: str) -> Image.Image:
    return Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")


def pixel(page, selector: str, at=(0.5, 0.5)) -> tuple[int, int, int]:
    img = shot(page, selector)
    return img.getpixel((int(img.width * at[0]), int(img.height * at[1])))


def close(colour, expected, tolerance=3) -> bool:
    return all(abs(int(c) - int(e)) <= tolerance for c, e in zip(colour, expected, strict=True))


def count(page) -> int:
    return int(page.inner_text("#count"))


def shown_ids(page) -> list[int]:
    return page.eval_on_selector_all("#table tbody tr", "rows => rows.map((r) => Number(r.dataset.id))")


def wait_ready(page, route: str | None = None) -> None:
    if route is not None:
        page.wait_for_function("(r) => location.hash === r", arg=route)
    page.wait_for_function("() => window.prfnetView.ready()")


def verdict(row: dict, metric: str) -> str:
    """The page's rule: a decision agrees, disagrees or ties against an A/B majority; else no verdict."""
    decision = row["decisions"].get(metric)
    if decision is None or row["majority"] not in ("A", "B"):
        return "na"
    return "agree" if decision == row["majority"] else "tie" if decision == "tie" else "disagree"


def against(row: dict, metric: str) -> bool:
    return verdict(row, metric) in ("disagree", "tie")


# -- the triplets table -----------------------------------------------------------------------------------------------


def test_table_pages_filters_and_sorts(open_static, tmp_path):
    view = triplet_view(tmp_path / "src", 250)
    rows = view.document["triplets"]
    page = open_static(view)
    assert count(page) == 250 and shown_ids(page) == list(range(100))
    assert page.inner_text("#page-info") == "1\u2013100 of 250"
    assert page.inner_text("#table thead").split()[-3:] == ["PRFNet", "PSNR", "SSIM"]
    page.click("#next-page")
    page.click("#next-page")
    assert shown_ids(page) == list(range(200, 250)) and page.is_disabled("#next-page")

    page.select_option("#filter", "prfnet-wrong")
    wrong = [r["id"] for r in rows if against(r, "prfnet")]
    assert count(page) == len(wrong) and shown_ids(page) == wrong[:100]
    classes = page.eval_on_selector_all(
        "#table tbody tr td.decision:nth-last-child(3)", "c => c.map((e) => e.className)"
    )
    assert classes and all(c in ("decision disagree", "decision tie") for c in classes)

    page.select_option("#filter", "disagree:ssim")
    page.select_option("#kind", "ssim_close")
    expected = [
        r["id"] for r in rows if r["decisions"]["ssim"] != r["decisions"]["prfnet"] and r["kind"] == "ssim_close"
    ]
    assert count(page) == len(expected) and shown_ids(page) == expected[:100]
    page.select_option("#group", "ref_2.png")
    expected = [i for i in expected if rows[i]["group"] == "ref_2.png"]
    assert count(page) == len(expected) and shown_ids(page) == expected

    page.select_option("#filter", "all")
    page.select_option("#kind", "")
    page.select_option("#group", "")
    page.select_option("#sort", "confidence-gap")
    by_gap = sorted(rows, key=lambda r: (-abs(r["prfnet_p"] - r["p_a"]), r["id"]))
    assert count(page) == 250 and shown_ids(page) == [r["id"] for r in by_gap[:100]]
    page.select_option("#sort", "disagreement")
    by_disagreement = sorted(rows, key=lambda r: (-sum(against(r, m) for m in r["decisions"]), r["id"]))
    assert shown_ids(page) == [r["id"] for r in by_disagreement[:100]]


def test_twenty_thousand_triplets_page_and_filter(open_static, tmp_path):
    view = triplet_view(tmp_path / "src", 20_000)
    rows = view.document["triplets"]
    page = open_static(view)
    assert count(page) == 20_000 and page.inner_text("#page-info") == "1\u2013100 of 20000"
    assert page.locator("#table tbody tr").count() == 100
    page.select_option("#filter", "wrong:psnr")
    page.select_option("#sort", "disagreement")
    expected = sorted(
        (r for r in rows if against(r, "psnr")), key=lambda r: (-sum(against(r, m) for m in r["decisions"]), r["id"])
    )
    assert count(page) == len(expected) and shown_ids(page) == [r["id"] for r in expected[:100]]
    assert page.locator("#table tbody tr").count() == 100


def test_a_row_opens_its_triplet_and_n_p_follow_the_filter(open_static, tmp_path):
    view = triplet_view(tmp_path / "src", 250)
    wrong = [r["id"] for r in view.document["triplets"] if against(r, "prfnet")]
    page = open_static(view)
    page.select_option("#filter", "prfnet-wrong")
    page.click(f'#table tr[data-id="{wrong[0]}"] td.group')
    wait_ready(page, f"#/t/{wrong[0]}")
    assert page.evaluate("prfnetView.imageId('a')") == view.document["triplets"][wrong[0]]["a"]
    assert "PRFNet" in page.inner_text("#facts") and f"1 of {len(wrong)}" in page.inner_text("#item-title")
    page.keyboard.press("n")
    wait_ready(page, f"#/t/{wrong[1]}")
    page.keyboard.press("ArrowRight")
    wait_ready(page, f"#/t/{wrong[2]}")
    page.keyboard.press("p")
    wait_ready(page, f"#/t/{wrong[1]}")
    page.keyboard.press("Escape")
    page.wait_for_function("() => prfnetView.view() === 'list-view'")
    assert page.input_value("#filter") == "prfnet-wrong" and count(page) == len(wrong)
    assert page.get_attribute(f'#table tr[data-id="{wrong[1]}"]', "class") == "last"


# -- the compare viewer -----------------------------------------------------------------------------------------------


def test_keys_flip_a_and_b_and_the_pixels_change(open_static, tmp_path):
    page = open_static(triplet_view(tmp_path / "src", 20), "#/t/1")
    wait_ready(page)
    page.keyboard.press("a")
    page.wait_for_function("() => prfnetView.shown() === 'a' && prfnetView.layout() === 'flicker'")
    shown_a = shot(page, "#panel-flicker")
    assert page.get_attribute("#panel-flicker", "data-image") == "a1"
    assert close(pixel(page, "#panel-flicker"), RED[0]) or close(pixel(page, "#panel-flicker"), RED[1])
    page.keyboard.press("b")
    page.wait_for_function("() => prfnetView.shown() === 'b'")
    shown_b = shot(page, "#panel-flicker")
    assert shown_a.tobytes() != shown_b.tobytes()
    assert close(pixel(page, "#panel-flicker"), BLUE[0]) or close(pixel(page, "#panel-flicker"), BLUE[1])
    page.keyboard.press("r")
    page.wait_for_function("() => prfnetView.shown() === 'ref'")
    assert pixel(page, "#panel-flicker") in ((0, 0, 0), (255, 255, 255))
    page.keyboard.press(" ")  # alternation: A, then B, then A again
    for slot in ("a", "b", "a"):
        page.wait_for_function("(s) => prfnetView.shown() === s", arg=slot)
    page.keyboard.press(" ")
    page.keyboard.press("f")
    page.wait_for_function("() => prfnetView.layout() === 'side'")
    assert page.is_visible("#panel-b") and not page.is_visible("#panel-flicker")


def test_zoom_and_pan_keep_r_a_b_aligned_with_pixels_as_pixels(open_static, tmp_path):
    page = open_static(triplet_view(tmp_path / "src", 20), "#/t/4")
    wait_ready(page)
    assert page.evaluate("prfnetView.transform().scale") == 1  # opens at 1:1
    boxes = {p: page.locator(f"#panel-{p}").bounding_box() for p in ("ref", "a", "b")}

    def at(panel, rx, ry):
        box = boxes[panel]
        return box["x"] + rx * box["width"], box["y"] + ry * box["height"]

    def coord(panel, rx, ry):
        return page.evaluate("([p, x, y]) => prfnetView.imageCoordAt(p, x, y)", [f"panel-{panel}", *at(panel, rx, ry)])

    def aligned():  # the same point of each panel shows the same image point (panel widths differ by < 0.1 px)
        for rx, ry in ((0.53, 0.47), (0.2, 0.8), (0.9, 0.1)):
            assert coord("ref", rx, ry) == pytest.approx(coord("a", rx, ry), abs=0.01)
            assert coord("b", rx, ry) == pytest.approx(coord("a", rx, ry), abs=0.01)

    cursor = [round(v) for v in at("a", 0.53, 0.47)]  # mouse events land on whole pixels
    under = "(xy) => prfnetView.imageCoordAt('panel-a', ...xy)"
    before = page.evaluate(under, cursor)
    page.mouse.move(*cursor)
    page.mouse.wheel(0, -1000)
    page.wait_for_function("() => prfnetView.transform().scale > 3")
    assert page.evaluate(under, cursor) == pytest.approx(before, abs=1e-9)  # zoomed around the cursor
    aligned()

    before = page.evaluate("prfnetView.transform()")
    start = at("b", 0.5, 0.5)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 40, start[1] + 30, steps=4)
    page.mouse.up()
    after = page.evaluate("prfnetView.transform()")
    assert (after["x"], after["y"]) == pytest.approx((before["x"] + 40, before["y"] + 30))
    aligned()

    # the reference is a one-pixel black and white checkerboard: nearest-neighbour keeps exactly two colours
    img = shot(page, "#panel-ref")
    middle = img.crop((img.width // 2 - 30, img.height // 2 - 30, img.width // 2 + 30, img.height // 2 + 30))
    assert {c for _, c in middle.getcolors(4096)} == {(0, 0, 0), (255, 255, 255)}


def test_score_map_overlay_appears_and_its_opacity_changes_the_pixels(open_static, tmp_path):
    page = open_static(triplet_view(tmp_path / "src", 20, maps=True), "#/t/2")
    wait_ready(page)
    plain = pixel(page, "#panel-a")
    plain_ref = pixel(page, "#panel-ref")
    assert page.get_attribute("#panel-a", "data-map") == "hidden"
    page.keyboard.press("m")
    page.wait_for_function("() => prfnetView.mapState() === 'shown'")
    assert page.get_attribute("#panel-a", "data-map") == page.get_attribute("#panel-b", "data-map") == "shown"
    assert page.is_checked("#map-toggle") and "precomputed" in page.inner_text("#map-info")
    at_60 = pixel(page, "#panel-a")
    assert close(at_60, [round(0.4 * c + 0.6 * g) for c, g in zip(plain, (0, 255, 0), strict=True)], 4)
    assert pixel(page, "#panel-ref") == plain_ref  # no map over the reference
    page.focus("#map-opacity")
    page.keyboard.press("End")
    assert close(pixel(page, "#panel-a"), (0, 255, 0), 1)
    page.keyboard.press("Home")
    assert pixel(page, "#panel-a") == plain
    page.click("#map-toggle")
    page.wait_for_function("() => prfnetView.mapState() === 'off'")


def test_without_maps_the_toggle_says_why(open_static, tmp_path):
    page = open_static(triplet_view(tmp_path / "src", 5), "#/t/0")
    wait_ready(page)
    assert page.is_disabled("#map-toggle")
    assert "score maps need `prfnet view OUT` (a server)" in page.inner_text("#map-info")
    page.keyboard.press("m")
    assert page.evaluate("prfnetView.mapState()") == "unavailable"


@pytest.mark.parametrize("mode", ["static", "server"])
def test_an_image_that_cannot_be_shown_is_named_and_the_others_are_drawn(open_static, page, tmp_path, mode):
    view = triplet_view(tmp_path / "src", 5)
    del view.files["b1"]
    with ExitStack() as stack:
        if mode == "static":
            open_static(view, "#/t/1")
            expected = "b_1.png is not in this export (cannot be read: not a PNG file)"
        else:
            page.goto(stack.enter_context(ContractServer(view)).url + "#/t/1")
            expected = "cannot show b_1.png (HTTP 404: not found)"
        page.wait_for_function("(text) => document.querySelector('#status').textContent.includes(text)", arg=expected)
        assert page.get_attribute("#panel-a", "data-state") == page.get_attribute("#panel-ref", "data-state") == "drawn"
        assert page.get_attribute("#panel-b", "data-state") == "empty"


# -- RD and MOS -------------------------------------------------------------------------------------------------------


def test_an_rd_point_opens_its_decoded_image(open_static, tmp_path):
    page = open_static(rd_view(tmp_path / "src"))
    point = 'circle.rd-point[data-metric="psnr-rgb"][data-codec="webp"][data-rate-point="q50"]'
    assert page.locator("circle.rd-point").count() == 6
    page.hover(point)
    tooltip = page.inner_text("#tooltip")
    assert page.is_visible("#tooltip") and "webp" in tooltip and "q50" in tooltip and "bpp" in tooltip
    assert "\u221225.0 %" in page.inner_text("#bd-table") and "[\u221230.1, \u221219.8]" in page.inner_text("#bd-table")
    page.click(point)
    wait_ready(page, "#/rd/psnr-rgb/webp/q50/0")
    decoded = rd_decoded("webp", "q50", "img0")
    assert page.evaluate("prfnetView.imageId('a')") == decoded
    assert page.evaluate("prfnetView.imageUrl('a')") == f"images/{decoded}.png"
    assert close(pixel(page, "#panel-a"), rd_colour("webp", "q50", "img0"))
    assert page.evaluate("prfnetView.imageId('ref')") == "o0" and not page.is_visible("#panel-b")
    page.select_option("#pair-item", "1")
    wait_ready(page, "#/rd/psnr-rgb/webp/q50/1")
    assert close(pixel(page, "#panel-a"), rd_colour("webp", "q50", "img1"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => prfnetView.view() === 'rd-view'")


def test_a_mos_point_opens_its_pair_and_the_curve_is_the_projects_logistic(open_static, tmp_path):
    view = mos_view(tmp_path / "src")
    page = open_static(view)
    assert page.locator("circle.mos-point").count() == 12 and page.locator("#mos-plot path.fit").count() == 1
    for metric in ("psnr", "prfnet"):
        fit = view.document["mos"]["fits"][metric]
        curve = LogisticFit(tuple(fit["params"]), fit["mean"], fit["std"], True)
        for point in view.document["mos"]["points"][::3]:
            x = point["scores"][metric]
            page_value = page.evaluate("([m, x]) => prfnetView.fitAt(m, x)", [metric, x])
            assert page_value == pytest.approx(float(curve(fit["sign"] * x)), rel=1e-9)
    page.click('circle.mos-point[data-id="5"]')
    wait_ready(page, "#/m/5")
    assert page.evaluate("prfnetView.imageId('a')") == "m_d5"
    assert close(pixel(page, "#panel-a"), COLOURS[5])
    page.keyboard.press("n")
    wait_ready(page, "#/m/6")
    assert close(pixel(page, "#panel-a"), COLOURS[6])


# -- server mode: the same table, the token on every request ----------------------------------------------------------


def test_server_mode_shows_the_same_table_with_the_token_on_every_request(open_static, page, tmp_path):
    view = triplet_view(tmp_path / "src", 250, maps=True)
    open_static(view)
    static_table = page.inner_text("#table")
    with ContractServer(view) as server:
        page.goto(server.url)
        page.wait_for_function("() => prfnetView.view() === 'list-view'")
        assert page.inner_text("#table") == static_table and page.inner_text("#mode-badge") == "server"
        page.click('#table tr[data-id="3"] td.group')
        wait_ready(page, "#/t/3")
        page.keyboard.press("m")
        page.wait_for_function("() => prfnetView.mapState() === 'shown'")
        requests = list(server.requests)
    assert requests and all(query.get("token") == [server.token] for _, query in requests)
    paths = [path for path, _ in requests]
    assert {"/", "/view.json", "/assets/viewer.js", "/assets/viewer.css", "/image/a3", "/thumb/r0"} <= set(paths)
    assert "/view.js" not in paths
    # A's map has maximum 2.0 and B's 1.0: B's is asked again on A's scale, so both share one colour scale
    assert any(path == "/map/r3/b3" and query.get("scale") == ["2"] for path, query in requests)


# -- the screenshots of the docs --------------------------------------------------------------------------------------


def test_docs_screenshots(browser, tmp_path):
    """Writes docs/images/view_triplet.png and view_rd.png (1280 px wide) when PRFNET_DOCS_SCREENSHOTS=1, else the
    same files in a temporary folder: PRFNET_DOCS_SCREENSHOTS=1 python -m pytest tests/view -k screenshots -n 0"""
    docs = os.environ.get("PRFNET_DOCS_SCREENSHOTS") == "1"
    out = ROOT / "docs" / "images" if docs else tmp_path / "shots"
    paths = make_docs_screenshots(browser, tmp_path / "work", out, light=not docs)
    for path in paths:
        with Image.open(path) as img:
            assert img.width == 1280 and len(img.getcolors(1 << 20) or range(1 << 20)) > 1000  # a real picture


def test_a_static_folder_without_its_document_says_so(open_static, page, tmp_path):
    view = triplet_view(tmp_path / "src", 3)
    open_static(view)
    (tmp_path / "site" / "view.js").unlink()
    page.reload()
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('view.js is missing')")
    assert page.evaluate("prfnetView.view()") is None


def test_the_wheel_ships_every_asset_of_the_page():
    tomllib = pytest.importorskip("tomllib")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = patterns["package-data"]["prfnet"]
    assets = sorted(p.name for p in ASSETS.iterdir() if p.is_file())
    assert sorted(ASSET_NAMES) == assets
    assert all(any(fnmatch(f"view/assets/{name}", pattern) for pattern in patterns) for name in assets)
