"""Fixtures of the browser tests: Debian's headless Chromium (``/usr/bin/chromium``) driven by Playwright, the
viewer opened from a static export on ``file://`` (the layout of ``prfnet view OUT --static DIR``) or from a
small test server that answers the routes of the real one, and the screenshots of the docs.

:func:`write_static` writes the static layout here and :class:`ContractServer` plays the server (with a CSP like
the real one's), so that the page is tested on its own; both take a :class:`View` (the document and its image
files, as ``prfnet.view.ViewData`` has them), so that switching to ``export_static`` / ``ViewServer`` is a change of
two functions (``write_static`` stays for the precomputed test maps: ``export_static`` computes its maps with a
model).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

import prfnet

from .documents import View

CHROMIUM = Path("/usr/bin/chromium")
ASSETS = Path(prfnet.__file__).resolve().parent / "view" / "assets"
#: the page's files, as the static export copies them and the server's /assets/ allow-list names them
ASSET_NAMES = ("index.html", "viewer.css", "viewer.js", "table.js", "compare.js", "plots.js", "tune.js")
VIEWPORT = {"width": 1280, "height": 800}
_INLINE = re.search(rb"<script>(.*?)</script>", (ASSETS / "index.html").read_bytes(), re.S)
#: the page's own scripts only (its inline loader by its hash), no eval; tests wait with functions ("() => ..."),
#: which Playwright runs without eval
CSP = (
    "default-src 'none'; script-src 'self' 'sha256-"
    + base64.b64encode(hashlib.sha256(_INLINE[1]).digest()).decode()
    + "'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'"
)
THUMB_SIDE = 160


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"no {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)"
    return None


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process; skips (with the reason) where playwright or chromium is missing."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    """A fresh page of 1280 x 800 CSS pixels at device pixel ratio 1; a JavaScript error on it fails the test."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# -- the static export (the contract's layout) ------------------------------------------------------------------------


def write_static(view: View, folder: Path) -> Path:
    """The layout of ``prfnet view OUT --static DIR``: the page's files, ``view.js`` (``window.PRFNET_VIEW = ...``),
    images/<id>.png, thumbs/<id>.png and the precomputed maps, with ``static = {"images": {id: path}, "thumbs":
    {id: path}, "maps": {"<ref id>/<dist id>": path}}`` (paths relative to DIR) added to the document. Returns
    DIR/index.html. (Stands in for ``prfnet.view.export_static`` until it exists.)"""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ASSET_NAMES:
        shutil.copyfile(ASSETS / name, folder / name)
    static: dict[str, dict[str, str]] = {"images": {}, "thumbs": {}, "maps": {}, "skipped": {}}
    for image_id in view.document["images"]:
        if image_id not in view.files:  # the exporter leaves an unreadable image out, with its reason
            static["skipped"][image_id] = "cannot be read: not a PNG file"
    for part in ("images", "thumbs", "maps"):
        (folder / part).mkdir(exist_ok=True)
    for image_id, path in view.files.items():
        shutil.copyfile(path, folder / "images" / f"{image_id}.png")
        with Image.open(path) as img:
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            img.save(folder / "thumbs" / f"{image_id}.png")
        static["images"][image_id] = f"images/{image_id}.png"
        static["thumbs"][image_id] = f"thumbs/{image_id}.png"
    for (ref, dist), path in view.maps.items():
        shutil.copyfile(path, folder / "maps" / f"{ref}_{dist}.png")
        static["maps"][f"{ref}/{dist}"] = f"maps/{ref}_{dist}.png"
    maps = (
        {"available": True, "how": "precomputed with OUT/model.safetensors (prfnet view --static --maps)"}
        if static["maps"]
        else {"available": False, "why": "score maps need `prfnet view OUT` (a server)"}
    )
    document = dict(view.document, static=static, maps=maps)
    (folder / "view.js").write_text("window.PRFNET_VIEW = " + json.dumps(document) + ";\n", encoding="utf-8")
    return folder / "index.html"


@pytest.fixture()
def open_static(page, tmp_path):
    """open_static(view, hash="") -> the page, showing the static export of ``view`` opened from file://."""

    def go(view: View, route: str = ""):
        index = write_static(view, tmp_path / "site")
        page.goto(index.as_uri() + route)
        page.wait_for_function("() => window.prfnetView && window.prfnetView.view() !== null")
        return page

    return go


# -- a server that answers the contract's routes (stands in for prfnet.view.serve) -----------------------------------


class ContractServer:
    """127.0.0.1 on a free port: /?token=T, /assets/<name>, /view.json, /image/<id>, /thumb/<id>,
    /map/<ref>/<dist>[?scale=S] (an RGBA PNG with the header X-Map-Max), each only with the token (else 403).
    ``requests`` records (path, query) of every request."""

    def __init__(self, view: View, token: str = "t0ken-123"):
        self.view, self.token, self.requests = view, token, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - the http.server name
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                server.requests.append((url.path, query))
                if query.get("token") != [server.token]:
                    return self.answer(403, b"", "text/plain")
                found = server.route(url.path, query)
                if found is None:
                    return self.answer(404, b'{"error": "not found"}', "application/json")
                self.answer(200, *found)

            def answer(self, status, body, kind, headers=None):
                self.send_response(status)
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, path: str, query: dict):
        parts = path.strip("/").split("/")
        kinds = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}
        if path == "/":
            return (ASSETS / "index.html").read_bytes(), "text/html"
        if parts[0] == "assets" and len(parts) == 2 and parts[1] in ASSET_NAMES:
            return (ASSETS / parts[1]).read_bytes(), kinds[Path(parts[1]).suffix]
        if path == "/view.json":
            return json.dumps(self.view.document).encode(), "application/json"
        if parts[0] in ("image", "thumb") and len(parts) == 2 and parts[1] in self.view.files:
            return self.view.files[parts[1]].read_bytes(), "image/png"
        if parts[0] == "map" and len(parts) == 3 and (parts[1], parts[2]) in self.view.maps:
            key = (parts[1], parts[2])
            scale = query.get("scale", [str(self.view.map_max.get(key, 1.0))])[0]
            return self.view.maps[key].read_bytes(), "image/png", {"X-Map-Max": scale}
        return None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# -- the screenshots of the docs --------------------------------------------------------------------------------------


def make_docs_screenshots(browser, work: Path, out: Path, light: bool = False) -> list[Path]:
    """view_triplet.png (a triplet of scikit-image photos, zoomed 2x on a detail, side by side) and view_rd.png (the
    RD example's curves with a point's tooltip, and its BD-rate table), 1280 px wide, written into ``out``.
    ``light``: fewer photos and codecs (the same pages, made in seconds: the fast test suite)."""
    from .documents import photo_rd_view, photo_triplet_view

    if light:
        triplets = photo_triplet_view(work / "triplet", photos=("astronaut",))
        rd_view = photo_rd_view(work / "rd", codecs=("jpeg", "webp"), photos=("astronaut", "coffee"))
    else:
        triplets, rd_view = photo_triplet_view(work / "triplet"), photo_rd_view(work / "rd")
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    tab = context.new_page()
    try:
        tab.goto(write_static(triplets, work / "triplet-site").as_uri() + "#/t/0")
        tab.wait_for_function("() => window.prfnetView && prfnetView.ready()")
        box = tab.locator("#panel-a").bounding_box()
        t = tab.evaluate("prfnetView.transform()")
        detail = (box["x"] + t["x"] + 250 * t["scale"], box["y"] + t["y"] + 130 * t["scale"])  # the face
        tab.mouse.move(*detail)
        tab.mouse.wheel(0, -462)  # 2x around the face (exp(462 * 0.0015) = 2.0)
        tab.wait_for_function("() => prfnetView.transform().scale > 1.9")
        tab.mouse.move(10, 10)
        triplet = out / "view_triplet.png"
        tab.screenshot(path=str(triplet))

        tab.goto(write_static(rd_view, work / "rd-site").as_uri())
        tab.wait_for_function("() => window.prfnetView && prfnetView.view() === 'rd-view'")
        tab.hover('circle.rd-point[data-codec="webp"][data-rate-point="q50"]')
        tab.wait_for_selector("#tooltip", state="visible")
        rd = out / "view_rd.png"
        tab.screenshot(path=str(rd), full_page=True)
    finally:
        context.close()
    return [triplet, rd]
