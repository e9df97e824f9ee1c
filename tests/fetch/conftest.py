"""A local HTTP server on 127.0.0.1 (switches: ignore Range, 404, cut the connection half-way) serving generated
archives under the real archives' names, and the catalog pointed at it ($PRFNET_FETCH_MIRROR) with the generated
files' checksums. Never the internet."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from prfnet.fetch import catalog


class Server:
    """Serves ``files`` (URL path -> bytes); records every request as (method, path, Range header)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.ignore_range = False
        self.missing: set[str] = set()
        self.cut: dict[str, int] = {}  # path -> bytes sent before the connection is closed (once)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, body: bool):
                path = self.path.split("?")[0]
                server.requests.append((self.command, path, self.headers.get("Range")))
                data = server.files.get(path)
                if data is None or path in server.missing:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                ranged = self.headers.get("Range")
                if ranged and not server.ignore_range:
                    start = int(ranged.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                if path in server.cut:
                    self.wfile.write(data[start : start + server.cut.pop(path)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

            def do_GET(self):  # noqa: N802
                self._serve(True)

            def do_HEAD(self):  # noqa: N802
                self._serve(False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def gets(self) -> list[str]:
        return [path for method, path, _ in self.requests if method == "GET"]


def png_bytes(seed: int, side: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(value: float) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([value], dtype=np.float32))
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def clic_rows(refs: int, seed: int) -> tuple[dict[str, bytes], list[str], list[str]]:
    """Images (name -> PNG) and O,A,B and O,A,B,T rows: per reference, 3 distorted images, 3 triplets."""
    images, triplets, oracle = {}, [], []
    for r in range(refs):
        names = [hashlib.md5(f"{seed}-{r}-{i}".encode()).hexdigest() + ".png" for i in range(4)]
        for i, name in enumerate(names):
            images[name] = png_bytes(seed * 100 + r * 10 + i)
        o, a, b, c = names
        for x, y in ((a, b), (b, c), (a, c)):
            triplets.append(f"{o},{x},{y}")
            oracle += [f"{o},{x},{y},0", f"{o},{x},{y},1", f"{o},{x},{y},0"]
    return images, triplets, oracle


def _csv(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def build_archives() -> dict[str, dict[str, bytes]]:
    """Data set name -> {URL path: archive bytes}, laid out like (our guess of) the real archives."""
    out: dict[str, dict[str, bytes]] = {}
    images, triplets, oracle = clic_rows(3, seed=1)
    valid = {"clic_2021_perceptual_valid/validation.csv": _csv(triplets), "clic_2021_perceptual_valid/oracle.csv":
             _csv(oracle), **{f"clic_2021_perceptual_valid/{n}": d for n, d in images.items()}}  # fmt: skip
    out["clic2021-valid"] = {"/clic2021_public/perceptual/clic_2021_perceptual_valid.zip": zip_bytes(valid)}
    images, triplets, oracle = clic_rows(3, seed=2)
    test = {"/clic2021_public/perceptual/test/clic_2021_test.zip": zip_bytes({"clic_2021_test.csv": _csv(triplets)})}
    for c in catalog.HEX:  # crops split by the first hex digit of their names, each in its own folder
        crops = {f"{c}/{n}": d for n, d in images.items() if n[0] == c}
        test[f"/clic2021_public/perceptual/test/{c}.tar"] = tar_bytes(crops)
    test["/clic2021_public/perceptual/test/clic_2021_perceptual_oracle.zip"] = zip_bytes({"oracle.csv": _csv(oracle)})
    out["clic2021-test"] = test
    bapps = {}
    for subset in ("traditional", "cnn"):
        for i in range(3):
            stem = f"val/{subset}/{{}}/{i:06d}"
            for j, folder in enumerate(("ref", "p0", "p1")):
                bapps[stem.format(folder) + ".png"] = png_bytes(1000 + i * 3 + j)
            bapps[stem.format("judge") + ".npy"] = npy_bytes(i / 3)
    prefix = "/~rich.zhang/projects/2018_perceptual/dataset"
    out["bapps-2afc-val"] = {f"{prefix}/twoafc_val.tar.gz": tar_bytes(bapps, "w:gz")}
    return out


ARCHIVES = build_archives()


def _with_checksums(ds: catalog.DataSet, served: dict[str, bytes]) -> catalog.DataSet:
    """``ds`` with each published checksum replaced by the generated file's, and tiny sizes."""
    files = []
    for f in ds.files:
        data = served[urlsplit(f.url).path]
        files.append(dataclasses.replace(
            f, size=len(data), md5=hashlib.md5(data).hexdigest() if f.md5 else None,
            sha256=hashlib.sha256(data).hexdigest() if f.sha256 else None))  # fmt: skip
    return dataclasses.replace(ds, files=tuple(files), unpacked=10 * sum(len(d) for d in served.values()))


@pytest.fixture()
def server(monkeypatch):
    """The local server, serving every generated archive; the catalog points at it."""
    s = Server()
    for served in ARCHIVES.values():
        s.files.update(served)
    for name, served in ARCHIVES.items():
        monkeypatch.setitem(catalog.CATALOG, name, _with_checksums(catalog.CATALOG[name], served))
    monkeypatch.setenv(catalog.MIRROR_ENV, s.url)
    monkeypatch.delenv("PRFNET_OFFLINE", raising=False)
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
