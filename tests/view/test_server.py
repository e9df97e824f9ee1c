"""The viewer's HTTP server without a browser: a server in a thread on a free port, asked with ``http.client`` and raw
sockets. Token, Host header, traversal (plain, encoded, double-encoded, absolute, NUL, a link out of the roots),
unknown ids, corrupt and huge images, conversions to PNG, thumbnails, score maps, HEAD and other methods, 200
requests at once, and the bounded cache. The page's files are a stand-in folder here (the real ones: test_browser)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import socket
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.errors import ConfigError
from prfnet.view.catalog import ViewData
from prfnet.view.images import THUMB_SIDE, ViewCache
from prfnet.view.server import CSP, ViewServer, is_loopback
from tests.conftest import save_tiny_checkpoint

SECRET = b"the secret bytes outside the roots"
ASSET_TEXT = {"index.html": "<!doctype html><title>stand-in</title><script>go();</script><script src='x.js'></script>",
              "viewer.css": "/* */", "viewer.js": "// viewer", "table.js": "// table", "compare.js": "// compare",
              "plots.js": "// plots", "tune.js": "// tune"}  # fmt: skip
INLINE_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(b"go();").digest()).decode() + "'"


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG that claims ``width`` x ``height`` RGB pixels with almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


def rgb(seed: int, height: int = 64, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_view(root: Path, model: bool = False) -> ViewData:
    """An output set by hand: ``root/out`` with images of every kind the server meets (ids f0...), a link out of the
    roots, one triplet; ``root/secret/s.png`` outside; with ``model``, a tiny checkpoint for score maps."""
    out = root / "out"
    (out / "images").mkdir(parents=True)
    images = out / "images"
    Image.fromarray(rgb(0)).save(images / "ref.png")
    Image.fromarray(rgb(1)).save(images / "a.png")
    Image.fromarray(rgb(2)).save(images / "b.jpg", quality=90)
    Image.fromarray(rgb(3)).save(images / "c.gif")
    Image.fromarray(rgb(4)).save(images / "d.webp")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(images / "deep.png")
    Image.fromarray(rgb(5)).save(images / "e.ppm")
    Image.fromarray(rgb(6)).save(images / "png_named.jpg", format="PNG")  # the bytes decide, not the name
    Image.fromarray(rgb(7, 200, 320)).save(images / "wide.png")
    (images / "text.png").write_text("this is not an image\n")
    good = (images / "a.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    (images / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    secret = root / "secret"
    secret.mkdir()
    (secret / "s.png").write_bytes(SECRET)
    (images / "link.png").symlink_to(secret / "s.png")
    names = ["ref.png", "a.png", "b.jpg", "c.gif", "d.webp", "deep.png", "e.ppm", "png_named.jpg", "wide.png",
             "text.png", "truncated.png", "bomb.png", "link.png"]  # fmt: skip
    files = {f"f{i}": images / name for i, name in enumerate(names)}
    files["gone"] = images / "deleted.png"
    document = {
        "format": "prfnet-view", "version": 1, "kind": "triplets", "title": "hand-made", "source": {"out": str(out)},
        "maps": {"available": model, "how" if model else "why": "test"},
        "metrics": [{"name": "psnr", "label": "PSNR", "higher_better": True}],
        "images": {i: {"name": p.name, "width": 64, "height": 64} for i, p in files.items()},
        "triplets": [{"id": 0, "ref": "f0", "a": "f1", "b": "f2", "group": "ref.png", "kind": None, "p_a": 0.5,
                      "votes": 2, "majority": "tie", "decisions": {"psnr": "A"}, "prfnet_p": None}],
    }  # fmt: skip
    checkpoint = save_tiny_checkpoint(out / "model.safetensors", seed=0) if model else None
    return ViewData(document=document, files=files, roots=[out], model=checkpoint)


def make_assets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ASSET_TEXT.items():
        (folder / name).write_text(text)
    return folder


class Running:
    """A :class:`ViewServer` serving in a thread; ``get`` asks it (the token added unless ``token=None``)."""

    def __init__(self, server: ViewServer):
        self.server = server
        self.port = server.port
        self.address = server.server_address[0]
        self.token = server.token
        self.thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def request(self, method: str, path: str, token: str | None = "", host: str | None = None, headers=None):
        token = self.token if token == "" else token
        if token is not None:
            path += ("&" if "?" in path else "?") + f"token={token}"
        conn = http.client.HTTPConnection(self.address, self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if host is not None else f"127.0.0.1:{self.port}")
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start(data: ViewData, tmp_path: Path, **options) -> Running:
    options.setdefault("assets", make_assets(tmp_path / "assets"))
    options.setdefault("cache", ViewCache(tmp_path / "cache"))
    return Running(ViewServer(data, port=0, **options))


@pytest.fixture()
def view(tmp_path):
    return make_view(tmp_path)


@pytest.fixture()
def running(view, tmp_path):
    server = start(view, tmp_path)
    yield server
    server.close()


def raw(port: int, request: bytes) -> tuple[int, bytes]:
    """Status and whole answer of ``request`` sent as it is (bytes http.client refuses to send: NUL, spaces)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# -- token and Host --------------------------------------------------------------------------------------------------


def test_the_page_and_the_document_need_the_token(running, view):
    for path in ("/", "/view.json", "/image/f0", "/thumb/f0", "/assets/viewer.js"):
        assert running.get(path, token=None)[0] == 403
        assert running.get(path, token="wrong")[0] == 403
        assert running.get(path, token=running.token[:-1])[0] == 403  # a prefix is not the token
        assert running.get(path, token=running.token + "x")[0] == 403
    status, headers, body = running.get("/")
    assert status == 200 and body.decode() == ASSET_TEXT["index.html"]
    assert headers["Content-Type"].startswith("text/html")
    # the page's own inline loader runs (by its hash), no other inline script, nothing from elsewhere
    assert headers["Content-Security-Policy"] == CSP.replace("script-src 'self'", f"script-src 'self' {INLINE_HASH}")
    assert "default-src 'none'" in CSP and "'unsafe-inline'" not in CSP.split("script-src")[1].split(";")[0]
    status, _, body = running.get("/view.json")
    assert status == 200 and json.loads(body) == view.document
    assert len(running.token) >= 20 and running.server.url.endswith(f"/?token={running.token}")


def test_a_host_header_that_is_not_this_server_is_refused(running):
    port = running.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"localhost:{port}.evil.example",
                 "", f"10.0.0.1:{port}"):  # fmt: skip
        status, _, body = running.get("/view.json", host=host)
        assert status == 400 and running.token.encode() not in body, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert running.get("/view.json", host=host)[0] == 200, host
    status, _ = raw(port, b"GET /view.json?token=" + running.token.encode() + b" HTTP/1.0\r\n\r\n")  # no Host at all
    assert status == 400


def test_the_host_value_given_is_accepted(view, tmp_path):
    try:
        server = Running(
            ViewServer(view, "127.0.0.2", 0, assets=make_assets(tmp_path / "a"), cache=ViewCache(tmp_path))
        )
    except ConfigError:
        pytest.skip("127.0.0.2 is not an address of this machine")
    try:
        assert server.get("/view.json", host=f"127.0.0.2:{server.port}")[0] == 200
        assert server.get("/view.json", host=f"localhost:{server.port}")[0] == 200
        assert server.get("/view.json", host=f"127.0.0.3:{server.port}")[0] == 400
        assert server.server.url == f"http://127.0.0.2:{server.port}/?token={server.token}"
    finally:
        server.close()


# -- traversal -------------------------------------------------------------------------------------------------------

TRAVERSALS = [
    "/../../../../etc/passwd",
    "/assets/../../../../etc/passwd",
    "/assets/..%2f..%2f..%2fetc%2fpasswd",
    "/assets/%2e%2e/%2e%2e/etc/passwd",
    "/assets/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/assets/%252e%252e%252f%252e%252e%252fetc%252fpasswd",  # double-encoded
    "/assets/..%252f..%252fsecret%252fs.png",
    "/assets/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",  # overlong UTF-8 dots
    "/assets/..\\..\\secret\\s.png",
    "/assets/manifest.json",
    "/assets/",
    "/assets",
    "/image/..",
    "/image/../../secret/s.png",
    "/image/..%2F..%2Fsecret%2Fs.png",
    "/image/%2e%2e%2fsecret%2fs.png",
    "/image/%252e%252e%252fsecret%252fs.png",
    "/image//etc/passwd",
    "/image/%2Fetc%2Fpasswd",
    "/image/f0/../../secret/s.png",
    "/image/f0%2f..%2f..%2fsecret%2fs.png",
    "/image/f0%00",
    "/image/f12",  # images/link.png -> ../secret/s.png: a link out of the roots
    "/thumb/f12",
    "/map/f0/f12",
    "/thumb/..",
    "/map/../f0",
    "//etc/passwd",
    "/etc/passwd",
    "/view.json/..",
    "/secret/s.png",
    "/out/images/ref.png",
    "http://127.0.0.1/etc/passwd",  # the absolute form of a request target
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_links_out_of_the_roots_are_404(running, path):
    status, _, body = running.get(path)
    assert status == 404, path
    assert SECRET not in body and b"root:" not in body


def test_absolute_paths_and_nul_bytes_sent_raw_are_404(running, tmp_path):
    token = running.token.encode()
    host = f"Host: 127.0.0.1:{running.port}\r\nConnection: close\r\n\r\n".encode()
    targets = [b"/image/f0\x00", b"/image/\x00../../secret/s.png", str(tmp_path / "secret" / "s.png").encode(),
               b"/image/" + str(tmp_path / "secret" / "s.png").encode(), b"/assets/viewer.js\x00.png"]  # fmt: skip
    for target in targets:
        status, answer = raw(running.port, b"GET " + target + b"?token=" + token + b" HTTP/1.1\r\n" + host)
        assert status == 404 and SECRET not in answer, target


def test_unknown_ids_and_removed_files_are_404_with_a_json_error(running):
    for path in ("/image/nosuch", "/thumb/nosuch", "/map/f0/nosuch", "/image/gone", "/thumb/gone"):
        status, headers, body = running.get(path)
        assert status == 404 and headers["Content-Type"] == "application/json", path
        assert set(json.loads(body)) == {"error"}


# -- images ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_id", "content_type"),
    [("f0", "image/png"), ("f2", "image/jpeg"), ("f3", "image/gif"), ("f4", "image/webp"), ("f7", "image/png")],
)
def test_browser_formats_are_sent_as_they_are_typed_by_their_bytes(running, view, image_id, content_type):
    status, headers, body = running.get(f"/image/{image_id}")
    assert status == 200 and headers["Content-Type"] == content_type  # f7: PNG bytes in a .jpg file
    assert body == view.files[image_id].read_bytes()
    assert headers["Cache-Control"] == "private, max-age=3600" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == CSP and "'unsafe-eval'" not in CSP


@pytest.mark.parametrize("image_id", ["f5", "f6"])  # a 16-bit PNG, a PPM
def test_other_files_are_sent_as_8_bit_png(running, view, image_id):
    status, headers, body = running.get(f"/image/{image_id}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    sent = Image.open(io.BytesIO(body))
    assert sent.format == "PNG" and sent.mode == "RGB" and sent.size == (64, 64)
    if image_id == "f6":
        assert np.array_equal(np.asarray(sent), rgb(5))
    else:
        deep = np.asarray(Image.open(view.files["f5"]), dtype=np.float64)
        assert np.abs(np.asarray(sent)[..., 0] - deep / 65535 * 255).max() <= 0.51
    assert running.get(f"/image/{image_id}")[2] == body  # from the cache


@pytest.mark.parametrize(("image_id", "status"), [("f9", 422), ("f10", 422), ("f11", 413)])
def test_corrupt_or_huge_images_answer_an_error_and_the_server_goes_on(running, image_id, status):
    for route in ("image", "thumb"):
        got, headers, body = running.get(f"/{route}/{image_id}")
        assert got == status and headers["Content-Type"] == "application/json", (route, body)
        message = json.loads(body)["error"]
        assert 0 < len(message) < 300 and "Traceback" not in message and "/" not in message.split(":")[0]
    assert running.get("/image/f0")[0] == 200


def test_thumbnails_fit_160_pixels_and_are_cached_outside_the_output_set(running, view, tmp_path):
    before = sorted(p for p in (tmp_path / "out").rglob("*"))
    status, headers, body = running.get("/thumb/f8")  # 320 x 200
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (THUMB_SIDE, 100)
    assert Image.open(io.BytesIO(running.get("/thumb/f0")[2])).size == (64, 64)  # never enlarged
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len([n for n in cached if n.startswith("thumb-")]) == 2
    assert running.get("/thumb/f8")[2] == body
    assert sorted(p for p in (tmp_path / "out").rglob("*")) == before  # nothing written into the output set


def test_view_json_is_gzipped_for_clients_that_take_it_and_never_cached(running, view):
    status, headers, body = running.get("/view.json", headers={"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Cache-Control"] == "no-store"
    assert json.loads(gzip.decompress(body)) == view.document
    status, headers, body = running.get("/view.json")
    assert "Content-Encoding" not in headers and headers["Content-Type"] == "application/json"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_assets_are_a_fixed_list(running, tmp_path):
    (tmp_path / "assets" / "other.js").write_text("// not on the list")
    for name, text in ASSET_TEXT.items():
        status, headers, body = running.get(f"/assets/{name}")
        assert status == 200 and body.decode() == text
        assert headers["Content-Type"].split(";")[0] == {"html": "text/html", "css": "text/css"}.get(
            name.rsplit(".")[1], "text/javascript"
        )
    assert running.get("/assets/other.js")[0] == 404
    (tmp_path / "assets" / "plots.js").unlink()
    status, _, body = running.get("/assets/plots.js")
    assert status == 404 and "missing" in json.loads(body)["error"]


# -- methods ---------------------------------------------------------------------------------------------------------


def test_head_sends_the_headers_of_get_without_a_body(running):
    for path in ("/image/f0", "/view.json", "/thumb/f1", "/image/nosuch"):
        get_status, get_headers, get_body = running.get(path)
        status, headers, body = running.request("HEAD", path)
        assert (status, body) == (get_status, b"")
        assert (
            headers["Content-Length"] == str(len(get_body)) and headers["Content-Type"] == get_headers["Content-Type"]
        )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"])
def test_other_methods_are_405(running, method):
    status, headers, _ = running.request(method, "/view.json")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert running.get("/view.json")[0] == 200


def test_200_concurrent_requests_all_succeed(running, view):
    paths = ["/view.json", "/image/f0", "/image/f2", "/image/f6", "/thumb/f1", "/thumb/f8", "/", "/image/f5"] * 25

    def one(path):
        status, _, body = running.get(path)
        return path, status, len(body)

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, paths))
    assert len(answers) == 200 and all(status == 200 and size > 0 for _, status, size in answers), answers
    sizes = {}
    for path, _, size in answers:
        sizes.setdefault(path, set()).add(size)
    assert all(len(s) == 1 for s in sizes.values())  # every answer to one path is the same file


# -- score maps ------------------------------------------------------------------------------------------------------


def test_score_maps_are_rgba_heat_maps_on_the_scale_asked(tmp_path):
    view = make_view(tmp_path, model=True)
    server = start(view, tmp_path)
    try:
        status, headers, body = server.get("/map/f0/f1")
        assert status == 200 and headers["Content-Type"] == "image/png", body[:200]
        heat = np.asarray(Image.open(io.BytesIO(body)))
        assert heat.shape == (64, 64, 4)
        p99 = float(headers["X-Map-P99"])
        assert float(headers["X-Map-Max"]) == p99 > 0 and float(headers["X-Map-Peak"]) >= p99  # full colour: p99
        assert float(headers["X-Map-Mean"]) > 0
        assert heat[..., 3].max() == 255 and heat[..., 3].min() < 255  # alpha rises with the value
        status, headers, shared = server.get(f"/map/f0/f1?scale={4 * p99!r}")
        assert status == 200 and float(headers["X-Map-Max"]) == pytest.approx(4 * p99)
        assert np.asarray(Image.open(io.BytesIO(shared)))[..., 3].max() < heat[..., 3].max()  # a larger scale: fainter
        for bad in ("0", "-1", "nan", "inf", "abc"):
            assert server.get(f"/map/f0/f1?scale={bad}")[0] == 400, bad
        status, _, body = server.get("/map/f0/f8")  # 64 x 64 against 320 x 200
        assert status == 422 and "size" in json.loads(body)["error"]
        assert server.get("/map/f0/f9")[0] == 422 and server.get("/map/f0/f1")[0] == 200
    finally:
        server.close()


def test_without_a_model_maps_are_404_with_a_json_error(running):
    status, headers, body = running.get("/map/f0/f1")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert "not available" in json.loads(body)["error"]


# -- the server itself -----------------------------------------------------------------------------------------------


def test_a_port_in_use_is_a_one_line_error(view, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            ViewServer(view, port=port, assets=make_assets(tmp_path / "assets"), cache=ViewCache(tmp_path / "c"))


def test_loopback_hosts():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.2", "example.org"]))


def test_the_cache_keeps_to_its_bound_least_recently_used_first(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"x" * 5000)  # not the viewer's: never counted or removed
    cache = ViewCache(folder, max_bytes=3000)
    names = [ViewCache.key("thumb", i) for i in range(4)]
    for name in names[:3]:
        cache.put(name, b"1" * 1000)
    with cache.open(names[0]) as f:  # used: now the most recent
        assert f.read() == b"1" * 1000
    cache.put(names[3], b"2" * 1000)
    assert cache.open(names[1]) is None and not (folder / names[1]).exists()
    assert {p.name for p in folder.iterdir()} == {"notes.txt", names[0], names[2], names[3]}
    assert cache.total == 3000
    again = ViewCache(folder, max_bytes=3000)  # a restart reads what is there
    assert again.total == 3000
    with again.open(names[2]) as f:
        assert f.read() == b"1" * 1000
