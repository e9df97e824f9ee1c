"""Report (prfnet.report.html): text escaped, floats formatted in tables, sections merged in order, figures inlined
as PNG, one file written."""

from __future__ import annotations

import base64

from prfnet.report.html import Report, figure_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def test_text_is_escaped_and_table_floats_are_formatted():
    report = Report("a <b> & c")
    report.add_heading("x < y")
    report.add_text("plain & simple", note=True)
    report.add_table(["metric", "accuracy"], [["<psnr>", 0.123456], ["n", 7]], floatfmt=".2f")
    html = report.html()
    assert "<title>a &lt;b&gt; &amp; c</title>" in html and "<h1>a &lt;b&gt; &amp; c</h1>" in html
    assert "<h2>x &lt; y</h2>" in html and '<p class="note">plain &amp; simple</p>' in html
    assert "<td>&lt;psnr&gt;</td><td>0.12</td>" in html and "<td>n</td><td>7</td>" in html  # ints as they are
    assert "<psnr>" not in html


def test_merge_appends_or_prepends_the_other_reports_sections():
    first, second = Report("one"), Report("two")
    first.add_heading("A")
    second.add_heading("B")
    first.merge(second)
    assert first.html().index("<h2>A</h2>") < first.html().index("<h2>B</h2>")
    third = Report("three")
    third.add_heading("C")
    first.merge(third, first=True)
    html = first.html()
    assert html.index("<h2>C</h2>") < html.index("<h2>A</h2>") < html.index("<h2>B</h2>")
    assert "<h1>one</h1>" in html and "<h1>three</h1>" not in html  # the title stays


def test_figures_are_inlined_as_png_and_the_file_is_written(tmp_path):
    assert figure_png(_figure()).startswith(PNG_MAGIC)
    report = Report("figures")
    report.add_figure(_figure(), caption="a line & its caption")
    path = report.write(tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert html == report.html() and html.startswith("<!DOCTYPE html>")
    data = html.split("data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(data).startswith(PNG_MAGIC)
    assert "<figcaption class='note'>a line &amp; its caption</figcaption>" in html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left behind
