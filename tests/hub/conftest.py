"""A local HTTP server on 127.0.0.1 (never the internet) serving files the tests put in it, counting requests; a
tiny checkpoint; every test with its own ``$PRFNET_CACHE``, online, and no ``$PRFNET_CHECKPOINT``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prfnet.hub.download import file_digest


class Served:
    """What the server answers (``files``: URL path -> bytes; anything else is a 404) and the paths asked for."""

    def __init__(self, port: int):
        self.port = port
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


@pytest.fixture()
def server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            served.requests.append(self.path)
            body = served.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = Served(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def private_checkpoint_cache(tmp_path, monkeypatch) -> Path:
    """``$PRFNET_CACHE`` in this test's folder; online; no proxy for 127.0.0.1; no default checkpoint."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PRFNET_CACHE", str(cache))
    monkeypatch.delenv("PRFNET_OFFLINE", raising=False)
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache


@pytest.fixture(scope="session")
def checkpoint(tiny_model, tmp_path_factory) -> Path:
    """A tiny prfnet checkpoint (timm's test_resnet) saved by ``save_pretrained``."""
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("hub") / "model.safetensors")


@pytest.fixture(scope="session")
def checkpoint_sha256(checkpoint) -> str:
    return file_digest(checkpoint)
