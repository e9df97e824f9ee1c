"""The whole viewer on real output sets, in the real Chromium: ``prfnet eval clic`` and ``prfnet rd`` sets (made by
the commands, with a tiny checkpoint) read by :func:`prfnet.view.build_view`, served by the real
:class:`~prfnet.view.server.ViewServer` (token, Host check, CSP) and exported by ``prfnet view OUT --static DIR``.
The table shows the run's triplets, a score map is computed on demand with the run's checkpoint and drawn over A
and B, an RD point opens the decoded file of that point, and the static export shows the same table from file://."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from prfnet.cli import main
from prfnet.view import build_view
from prfnet.view.server import ViewServer

from .test_browser import count, wait_ready
from .test_catalog import sets  # noqa: F401 - the module's output sets (a fixture)


@contextmanager
def serving(data):
    server = ViewServer(data)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_clic_run_in_the_server_and_in_its_static_export(sets, page, tmp_path):  # noqa: F811
    data = build_view(sets / "clic_out")
    rows = data.document["triplets"]
    assert data.model is not None and data.document["maps"]["available"]
    with serving(data) as server:
        page.goto(server.url)
        page.wait_for_function("() => prfnetView.view() === 'list-view'")
        assert count(page) == len(rows) and page.inner_text("#mode-badge") == "server"
        served_table = page.inner_text("#table")
        page.goto(server.url + "#/t/0")
        wait_ready(page, "#/t/0")
        assert page.evaluate("prfnetView.imageId('a')") == rows[0]["a"]
        page.keyboard.press("m")  # PRFNet's score maps of A and B, computed now with the run's checkpoint
        page.wait_for_function("() => prfnetView.mapState() === 'shown'")
        assert page.get_attribute("#panel-a", "data-map") == page.get_attribute("#panel-b", "data-map") == "shown"
        assert "computed on demand" in page.inner_text("#map-info")
        page.keyboard.press("b")
        page.wait_for_function("() => prfnetView.shown() === 'b'")
    site = tmp_path / "site"
    assert main(["view", str(sets / "clic_out"), "--static", str(site)]) == 0
    page.goto((site / "index.html").as_uri())
    page.wait_for_function("() => prfnetView.view() === 'list-view'")
    assert count(page) == len(rows) and page.inner_text("#table") == served_table


def test_an_rd_point_of_a_real_run_opens_its_decoded_file(sets, page):  # noqa: F811
    data = build_view(sets / "rd_out")
    point = next(p for p in data.document["rd"]["points"] if p["metric"] == "psnr-rgb" and p["codec"] == "webp")
    with serving(data) as server:
        page.goto(server.url)
        page.wait_for_function("() => prfnetView.view() === 'rd-view'")
        page.select_option("#rd-metric", "psnr-rgb")
        selector = f'circle.rd-point[data-codec="webp"][data-rate-point="{point["rate_point"]}"]'
        page.click(selector)
        wait_ready(page)
        decoded = point["items"][0]["decoded"]
        assert page.evaluate("prfnetView.imageId('a')") == decoded
        assert data.files[decoded].name == "i0.png" and data.files[decoded].parent.name == point["rate_point"]
        assert page.evaluate("prfnetView.imageUrl('a')").startswith(f"image/{decoded}?token=")


@pytest.fixture(autouse=True)
def _browser_or_skip(browser):
    """Every test here needs the browser (skipped with the reason where it is missing)."""


def test_a_tune_cell_opens_the_original_the_match_and_the_codecs_choice(sets, page, tmp_path):  # noqa: F811
    data = build_view(sets / "tune_out")
    row = data.document["tune"]["rows"][1]
    with serving(data) as server:
        page.goto(server.url)
        page.wait_for_function("() => prfnetView.view() === 'tune-view'")
        assert page.locator("#tune-table tbody tr").count() == 2
        assert page.locator("#tune-totals tbody tr").count() == 2  # webp, jpeg420
        served_table = page.inner_text("#tune-table")
        page.click('td.tune-cell[data-codec="webp"][data-row="1"] a')
        wait_ready(page, "#/tune/webp/1")
        shown = page.evaluate("['ref', 'a', 'b'].map((slot) => prfnetView.imageId(slot))")
        assert shown == [row["ref"], row["match"]["file"], row["cells"]["webp"]["file"]]
        assert data.files[shown[2]] == sets / "tune_out" / "files" / "webp" / "i1.webp"
        page.keyboard.press("m")  # PRFNet's maps of the match encode and of WebP's choice, with the run's checkpoint
        page.wait_for_function("() => prfnetView.mapState() === 'shown'")
        assert page.get_attribute("#panel-a", "data-map") == page.get_attribute("#panel-b", "data-map") == "shown"
        page.keyboard.press("p")  # the previous image, same codec
        wait_ready(page, "#/tune/webp/0")
        assert page.evaluate("prfnetView.imageId('b')") == data.document["tune"]["rows"][0]["cells"]["webp"]["file"]
    site = tmp_path / "site"
    assert main(["view", str(sets / "tune_out"), "--static", str(site)]) == 0
    page.goto((site / "index.html").as_uri())
    page.wait_for_function("() => prfnetView.view() === 'tune-view'")
    assert page.inner_text("#tune-table") == served_table


def test_a_tune_set_with_a_value_target_compares_the_original_and_the_choice(sets, page, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(sets)
    args = ["rd/orig", "--codecs", "webp", "--target", "30", "-m", "psnr", "--no-progress", "--bootstrap", "0"]
    assert main(["tune", *args, "--out", str(tmp_path / "value")]) == 0
    data = build_view(tmp_path / "value")
    site = tmp_path / "site"
    assert main(["view", str(tmp_path / "value"), "--static", str(site)]) == 0
    page.goto((site / "index.html").as_uri())
    page.wait_for_function("() => prfnetView.view() === 'tune-view'")
    assert page.locator("#tune-totals th").all_inner_texts() == ["codec", "met", "mean bpp [95 %]", "webp"]
    assert "(A)" in page.inner_text("#tune-help") and "match" not in page.inner_text("#tune-help")
    page.click('td.tune-cell[data-codec="webp"][data-row="0"] a')
    wait_ready(page, "#/tune/webp/0")
    row = data.document["tune"]["rows"][0]
    assert page.evaluate("['ref', 'a'].map((slot) => prfnetView.imageId(slot))") == [
        row["ref"],
        row["cells"]["webp"]["file"],
    ]
    assert not page.is_visible('.panel[data-slot="b"]')


def test_a_jnd_point_opens_its_pair_and_the_plot_says_its_average_precision(page, tmp_path):
    from tests.evaluation.test_jnd import write_jnd

    root = write_jnd(tmp_path / "jnd" / "val", n=3)
    args = ["eval", "jnd", "--root", str(root), "--metrics", "psnr", "--no-progress", "-o", str(tmp_path / "o")]
    assert main(args) == 0
    data = build_view(tmp_path / "o")
    site = tmp_path / "site"
    assert main(["view", str(tmp_path / "o"), "--static", str(site)]) == 0
    page.goto((site / "index.html").as_uri())
    page.wait_for_function("() => prfnetView.view() === 'mos-view'")
    assert page.locator("circle.mos-point").count() == 6 and page.locator("#mos-plot path.fit").count() == 0
    assert "JND average precision: cnn" in page.inner_text("#mos-fit-info")
    page.click('circle.mos-point[data-id="4"]')
    wait_ready(page, "#/m/4")
    point = data.document["mos"]["points"][4]
    assert page.evaluate("[prfnetView.imageId('ref'), prfnetView.imageId('a')]") == [point["ref"], point["dist"]]
