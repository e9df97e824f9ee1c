"""The viewer's HTTP server: standard library only (``http.server.ThreadingHTTPServer``, daemon threads), read-only,
bound to 127.0.0.1 on a free port unless told otherwise.

Every request needs the token of the URL (``?token=T``, compared in constant time) and a Host header naming the
bound address (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT`` or the ``--host`` value: a guard against DNS
rebinding); otherwise 403 (token) or 400 (Host). Only these routes exist (anything else is 404, methods other than
GET and HEAD are 405):

``/`` the page; ``/assets/<name>`` a file of the page (a fixed list of names); ``/view.json`` the document (made
once at start-up; gzip when the client takes it); ``/image/<id>``, ``/thumb/<id>`` and ``/map/<ref id>/<dist id>``
(``&scale=<value of full colour>``; the headers ``X-Map-Max``, the value drawn at full colour, ``X-Map-P99``,
``X-Map-Peak`` and ``X-Map-Mean`` describe the map) the images the document names by id. An id is looked up in
:attr:`ViewData.files` and its file re-resolved under :attr:`ViewData.roots` on every request, so no path of the URL
ever reaches the file system: ``..``, encoded ``..``, absolute paths and links out of the roots are all 404.
"""

from __future__ import annotations

import base64
import errno
import gzip
import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import socket
import socketserver
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs

from ..errors import ConfigError
from ..images import DEFAULT_MAX_PIXELS
from .catalog import ViewData
from .images import CHUNK, Products, Refused, ViewCache, resolve_under

DEFAULT_HOST = "127.0.0.1"
#: the folder of the page's files, and the only names served from it (with their Content-Type)
ASSETS = Path(__file__).resolve().parent / "assets"
_JS = "text/javascript; charset=utf-8"
ASSET_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
    "viewer.js": _JS,
    "table.js": _JS,
    "compare.js": _JS,
    "plots.js": _JS,
    "tune.js": _JS,
}
#: the page runs its own scripts only (the page's inline loader by its SHA-256, see :func:`csp`); images may be blobs
#: or data URLs the page makes; nothing is fetched from elsewhere
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.S | re.I)


def csp(page: bytes = b"") -> str:
    """:data:`CSP`, with the hash of each inline ``<script>`` of the HTML ``page`` allowed (no other inline script)."""
    hashes = [base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() for m in _INLINE_SCRIPT.finditer(page)]
    return CSP.replace("script-src 'self'", " ".join(["script-src 'self'", *(f"'sha256-{h}'" for h in hashes)]))


_ID = r"[A-Za-z0-9_-]{1,64}"
_ROUTES = [
    ("image", re.compile(rf"^/image/({_ID})$")),
    ("thumb", re.compile(rf"^/thumb/({_ID})$")),
    ("map", re.compile(rf"^/map/({_ID})/({_ID})$")),
    ("asset", re.compile(r"^/assets/([A-Za-z0-9_.-]{1,64})$")),
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _netloc(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ViewServer(ThreadingHTTPServer):
    """The viewer of one :class:`ViewData`; :attr:`url` holds the token. ``port=0``: a free port."""

    daemon_threads = True
    allow_reuse_address = False  # a port in use is the user's error, not something to share
    request_queue_size = 512

    def __init__(self, data: ViewData, host: str = DEFAULT_HOST, port: int = 0, *, assets: str | Path | None = None,
                 cache: ViewCache | None = None, token: str | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS):  # fmt: skip
        self.data = data
        self.host = host
        self.token = token or secrets.token_urlsafe(16)
        self.assets = Path(assets) if assets is not None else ASSETS
        self.roots = [Path(r).resolve() for r in data.roots]
        self.products = Products(cache if cache is not None else ViewCache(), data.model, max_pixels)
        document = json.dumps(data.document, allow_nan=False, separators=(",", ":")).encode("utf-8")
        self.document = document, gzip.compress(document, compresslevel=5)
        self.address_family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        try:
            super().__init__((host.strip("[]"), port), Handler)
        except OSError as exc:
            raise ConfigError(_bind_error(host, port, exc)) from None
        self.port = self.server_address[1]
        loopback = {_netloc(h, self.port) for h in ("127.0.0.1", "localhost", "::1")}
        self.hosts = {n.lower() for n in {*loopback, _netloc(host, self.port)}}
        if self.port == 80:  # a browser leaves the default port out of the Host header
            self.hosts |= {n.rsplit(":", 1)[0] for n in self.hosts}

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # not HTTPServer's: it looks the host's name up in the DNS
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def url(self) -> str:
        """The page's address with its token (a wildcard bind address is shown as the loopback one)."""
        host = self.host.strip("[]")
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"http://{_netloc(host, self.port)}/?token={self.token}"

    def handle_error(self, request, client_address):
        """A failed request is its own business: one line on stderr, the server goes on."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            print(f"prfnet view: a request failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use: choose another --port, or leave --port out for a free one"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges this process lacks: choose a --port above 1023"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host} is not an address of this machine ({exc.strerror or exc})"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


class Handler(BaseHTTPRequestHandler):
    """One request; see the module doc."""

    server: ViewServer
    server_version = "prfnet-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    head = False  # a HEAD request: headers only
    timeout = 120  # seconds a connection may stay silent (an idle keep-alive connection is then closed)

    def log_message(self, format, *args):  # quiet: request lines hold the token
        pass

    def do_GET(self):
        self._answer(head=False)

    def do_HEAD(self):
        self._answer(head=True)

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # POST, PUT, DELETE, ...: this server only reads
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self):
        self._send(405, b"read-only: GET and HEAD only\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"})

    # -- the answer ---------------------------------------------------------------------------------------------
    def _answer(self, head: bool) -> None:
        self.head = head
        if (self.headers.get("Host") or "").strip().lower() not in self.server.hosts:
            self._send(400, b"bad Host header\n", "text/plain; charset=utf-8")
            return
        path, _, query = self.path.partition("?")
        try:
            params = parse_qs(query, keep_blank_values=True, max_num_fields=16)
        except ValueError:
            params = {}
        token = params.get("token", [""])[-1]
        if not hmac.compare_digest(token.encode("utf-8", "replace"), self.server.token.encode()):
            self._send(403, b"forbidden\n", "text/plain; charset=utf-8")
            return
        try:
            self._route(path, params)
        except Refused as exc:
            self._error(exc.status, exc.message)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:  # a bug answers 500 and the server goes on
            self.server.handle_error(self.request, self.client_address)
            self._error(500, f"internal error: {type(exc).__name__}")

    def _route(self, path: str, params: dict[str, list[str]]) -> None:
        if path == "/":
            self._asset("index.html")
            return
        if path == "/view.json":
            plain, packed = self.server.document
            gz = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
            headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
            if gz:
                headers["Content-Encoding"] = "gzip"
            self._send(200, packed if gz else plain, "application/json", headers)
            return
        for name, pattern in _ROUTES:
            match = pattern.match(path)
            if match:
                getattr(self, f"_{name}")(*match.groups(), params=params)
                return
        raise Refused(404, "not found")

    def _file(self, image_id: str) -> Path:
        path = self.server.data.files.get(image_id)
        if path is None:
            raise Refused(404, f"no image {image_id!r} in this view")
        return resolve_under(path, self.server.roots)

    def _asset(self, name: str, params=None) -> None:
        if name not in ASSET_TYPES:
            raise Refused(404, "not found")
        try:
            body = resolve_under(self.server.assets / name, [self.server.assets.resolve()]).read_bytes()
        except (Refused, OSError):
            raise Refused(404, f"the viewer's {name} is missing from this installation") from None
        headers = {"Cache-Control": "no-cache"}
        if name.endswith(".html"):
            headers["Content-Security-Policy"] = csp(body)
        self._send(200, body, ASSET_TYPES[name], headers)

    def _image(self, image_id: str, params) -> None:
        f, content_type = self.server.products.image(self._file(image_id))
        self._stream(f, content_type, {"Cache-Control": "private, max-age=3600"})

    def _thumb(self, image_id: str, params) -> None:
        f = self.server.products.thumbnail(self._file(image_id))
        self._stream(f, "image/png", {"Cache-Control": "private, max-age=3600"})

    def _map(self, ref_id: str, dist_id: str, params) -> None:
        scale = None
        if params.get("scale", [""])[-1]:
            try:
                scale = float(params["scale"][-1])
            except ValueError:
                scale = math.nan
            if not (math.isfinite(scale) and scale > 0):
                raise Refused(400, "scale must be a positive number (the map value of full colour)")
        if self.server.data.model is None:
            maps = self.server.data.document.get("maps") or {}
            raise Refused(404, f"score maps are not available: {maps.get('why') or 'this output set has no model'}")
        ref, dist = self._file(ref_id), self._file(dist_id)
        png, info = self.server.products.heat_map_png(ref, dist, scale)
        headers = {"Cache-Control": "private, max-age=3600"}
        # X-Map-Max: the value drawn at full colour (the scale; `&scale=` of the contract), X-Map-P99 the default
        # scale, X-Map-Peak the map's largest value, X-Map-Mean its mean (= PRFNet's distance of the pair)
        values = {"Max": info["scale"], "P99": info["p99"], "Peak": info["max"], "Mean": info["mean"]}
        headers |= {f"X-Map-{k}": repr(float(v)) for k, v in values.items()}
        self._send(200, png, "image/png", headers)

    # -- writing --------------------------------------------------------------------------------------------------
    def _headers(self, status: int, content_type: str, length: int, extra: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        extra = {"Content-Security-Policy": CSP, **(extra or {})}
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token stays in this server
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self._headers(status, content_type, len(body), extra)
        if not self.head:
            self.wfile.write(body)

    def _stream(self, f: BinaryIO, content_type: str, extra: dict[str, str]) -> None:
        with f:
            f.seek(0, 2)
            length = f.tell()
            f.seek(0)
            self._headers(200, content_type, length, extra)
            while not self.head and (chunk := f.read(CHUNK)):
                self.wfile.write(chunk)

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"error": message}, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})


def serve(data: ViewData, host: str = DEFAULT_HOST, port: int = 0, *, open_browser: bool = False,
          announce: Callable[[ViewServer], None] | None = None, **options) -> None:  # fmt: skip
    """Serve ``data`` until interrupted (the ``KeyboardInterrupt`` is the caller's); ``announce(server)`` runs once the
    port is bound (print :attr:`ViewServer.url` there); ``open_browser``: the page in the default browser.
    ``options`` go to :class:`ViewServer` (``assets``, ``cache``, ``token``, ``max_pixels``)."""
    server = ViewServer(data, host, port, **options)
    try:
        if announce is not None:
            announce(server)
        if open_browser:  # in a thread: a text-mode browser would hold the terminal
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
