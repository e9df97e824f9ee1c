"""``prfnet view``: its one-line errors (exit 2), the URL line and ``--json``, the warning for a host beyond this
machine, ``--static`` from the command line, Ctrl-C and SIGTERM ending a real server process (exit 130 / 143, one
line, no traceback), and the ``prfnet view OUT`` hint at the end of ``eval``. Most tests read a hand-made view
(:func:`tests.view.test_server.make_view`, ``build_view`` patched); the last one reads a real ``eval clic`` output."""

from __future__ import annotations

import http.client
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import prfnet.view.catalog as catalog
import prfnet.view.server as server_module
import prfnet.view.static as static_module
from tests.cli.test_options import one_error_line as options_error_line
from tests.cli.test_options import run
from tests.view.test_server import ASSET_TEXT, make_assets, make_view

ROOT = Path(__file__).resolve().parents[2]


def one_error_line(code: int, out: str, err: str) -> str:
    assert "Traceback" not in err
    return options_error_line(code, out, err)


@pytest.fixture()
def handmade(tmp_path, monkeypatch):
    """``build_view`` patched to return a hand-made view of ``tmp_path/out`` (and the page's files, if the installed
    ones are not there yet)."""
    view = make_view(tmp_path)
    monkeypatch.setattr(catalog, "build_view", lambda out: view)
    if not all((static_module.ASSETS / name).is_file() for name in ASSET_TEXT):
        monkeypatch.setattr(static_module, "ASSETS", make_assets(tmp_path / "assets"))
    return view


# -- one-line errors -------------------------------------------------------------------------------------------------


def test_a_missing_folder_or_a_file_is_one_error_line(capsys, tmp_path):
    assert "no such folder" in one_error_line(*run(capsys, "view", tmp_path / "nosuch"))
    (tmp_path / "a.txt").write_text("x")
    assert "is a file" in one_error_line(*run(capsys, "view", tmp_path / "a.txt"))


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--maps"], ["--maps", "--static DIR"]),
        (["--port", "70000"], ["--port", "70000"]),
        (["--port", "-1"], ["--port", "-1"]),
        (["--static", "{tmp}/shared", "--port", "8000"], ["--static", "--port"]),
        (["--max-pixels", "lots"], ["--max-pixels"]),
    ],
)
def test_options_that_cannot_be_are_one_error_line(capsys, tmp_path, handmade, options, fragments):
    argv = [o.replace("{tmp}", str(tmp_path)) for o in options]
    line = one_error_line(*run(capsys, "view", tmp_path / "out", *argv))
    assert all(f in line for f in fragments), line
    assert not (tmp_path / "shared").exists()


def test_a_port_in_use_is_one_error_line(capsys, tmp_path, handmade):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(*run(capsys, "view", tmp_path / "out", "--port", port))
    assert f"port {port}" in line and "in use" in line


def test_a_static_folder_inside_the_output_set_is_one_error_line(capsys, tmp_path, handmade):
    line = one_error_line(*run(capsys, "view", tmp_path / "out", "--static", tmp_path / "out" / "shared"))
    assert "lies inside" in line and not (tmp_path / "out" / "shared").exists()


def test_a_folder_that_is_not_an_output_set_is_one_error_line(capsys, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("mine")
    line = one_error_line(*run(capsys, "view", tmp_path / "plain"))
    assert "plain" in line


# -- serving, in this process ----------------------------------------------------------------------------------------


def _stop_at_once(monkeypatch, seen: list):
    """``serve_forever`` checks one request against the bound server, then raises Ctrl-C as the terminal would."""

    def serve(self, poll_interval=0.5):
        seen.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(server_module.ViewServer, "serve_forever", serve)


def test_the_url_is_the_one_line_on_stdout_and_ctrl_c_exits_130(capsys, tmp_path, handmade, monkeypatch):
    seen = []
    _stop_at_once(monkeypatch, seen)
    code, out, err = run(capsys, "view", tmp_path / "out")
    (server,) = seen
    assert code == 130 and out == f"{server.url}\n"
    assert out.startswith("http://127.0.0.1:") and f"?token={server.token}" in out
    assert err.strip().splitlines() == [
        "prfnet view: hand-made; Ctrl-C stops the server",
        "prfnet view: stopped (Ctrl-C)",
    ]


def test_json_prints_one_object_with_the_url(capsys, tmp_path, handmade, monkeypatch):
    seen = []
    _stop_at_once(monkeypatch, seen)
    code, out, _ = run(capsys, "view", tmp_path / "out", "--json")
    info = json.loads(out)
    assert code == 130 and info == {"url": seen[0].url, "host": "127.0.0.1", "port": seen[0].port,
                                    "token": seen[0].token, "out": str(tmp_path / "out")}  # fmt: skip


def test_a_host_beyond_this_machine_prints_a_warning(capsys, tmp_path, handmade, monkeypatch):
    seen = []
    _stop_at_once(monkeypatch, seen)
    monkeypatch.setattr(server_module, "is_loopback", lambda host: False)  # bound to 127.0.0.1 all the same
    code, _, err = run(capsys, "view", tmp_path / "out")
    assert code == 130 and "warning: --host 127.0.0.1 serves beyond this machine" in " ".join(err.split())


def test_static_writes_the_folder_and_prints_where_to_open_it(capsys, tmp_path, handmade):
    code, out, err = run(capsys, "view", tmp_path / "out", "--static", tmp_path / "shared")
    assert code == 0, err
    assert out == (tmp_path / "shared" / "index.html").resolve().as_uri() + "\n"
    assert "wrote 9 images, 9 thumbnails and 0 score maps" in " ".join(err.split())
    assert "warning: f9 left out" in err and (tmp_path / "shared" / "view.js").is_file()
    code, out, _ = run(capsys, "view", tmp_path / "out", "--static", tmp_path / "shared", "--json")
    assert code == 0 and json.loads(out)["images"] == 9


# -- a real server process: Ctrl-C and SIGTERM -----------------------------------------------------------------------

CHILD = """
import signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever the test runner ignores
import prfnet.view.catalog as catalog
from tests.view.test_server import make_view
view = make_view(Path({tmp!r}))
catalog.build_view = lambda out: view
from prfnet.cli import main
sys.exit(main(["view", {out!r}]))
"""


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


@pytest.mark.parametrize(("signum", "code", "what"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_stops_the_server_with_one_line(tmp_path, signum, code, what):
    script = CHILD.format(root=str(ROOT), tmp=str(tmp_path), out=str(tmp_path / "out"))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)  # fmt: skip
    try:
        stdout: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, stdout), daemon=True).start()
        url = stdout.get(timeout=300)  # the URL line: the server is bound and about to serve
        assert url is not None and url.startswith("http://127.0.0.1:"), process.stderr.read()
        port = int(url.split(":")[2].split("/")[0])
        token = url.strip().split("token=")[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", f"/view.json?token={token}")
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signum)
        assert process.wait(timeout=120) == code
        err = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == f"prfnet view: stopped ({what})" and "error" not in lines[-1], err
    assert stdout.get(timeout=60) is None  # nothing after the URL


# -- the hint at the end of the evaluations, and a real output set ---------------------------------------------------


def test_eval_ends_with_the_view_command_and_view_reads_its_output(capsys, tmp_path, clic_dir):
    out = tmp_path / "eval clic"  # a space: the hint quotes the path
    keys = dict.fromkeys(",".join(line.split(",")[:3]) for line in (clic_dir / "oracle.csv").read_text().split())
    (tmp_path / "val.csv").write_text("\n".join(keys) + "\n")
    code, _, err = run(capsys, "eval", "clic", "--csv", tmp_path / "val.csv", "--root", clic_dir / "images",
                       "--oracle", clic_dir / "oracle.csv", "--metrics", "psnr,ssim", "--no-progress", "--no-store",
                       "-o", out)  # fmt: skip
    assert code == 0, err
    assert err.strip().splitlines()[-1] == f"look at them: prfnet view '{out}'"
    code, stdout, err = run(capsys, "view", out, "--static", tmp_path / "shared", "--json")
    assert code == 0, err
    assert json.loads(stdout)["images"] > 0
    document = json.loads((tmp_path / "shared" / "view.js").read_text()[len("window.PRFNET_VIEW = ") : -2])
    assert document["kind"] == "triplets" and len(document["triplets"]) > 0


def test_rd_ends_with_the_view_command_and_view_reads_its_output(capsys, tmp_path):
    inputs = tmp_path / "inputs"  # the folder of the images: the view reads it, so the export goes elsewhere
    inputs.mkdir()
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(ref).save(inputs / "ref.png")
    rows = ["codec,image,rate_point,decoded_path,original_path,bpp"]
    for codec, bpp in (("jpeg", 0.1), ("webp", 0.08)):
        for q in range(1, 5):
            noise = rng.normal(0, 40 / q, ref.shape)
            Image.fromarray(np.clip(ref + noise, 0, 255).astype(np.uint8)).save(inputs / f"{codec}{q}.png")
            rows.append(f"{codec},x,q{q},{codec}{q}.png,ref.png,{bpp * q}")
    (inputs / "rd.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "rd"
    code, _, err = run(capsys, "rd", "--csv", inputs / "rd.csv", "-m", "psnr", "--no-progress", "--bootstrap", "0",
                       "-o", out)  # fmt: skip
    assert code == 0, err
    assert err.strip().splitlines()[-1] == f"look at them: prfnet view {out}"
    code, stdout, err = run(capsys, "view", out, "--static", tmp_path / "shared", "--json")
    assert code == 0, err
    assert json.loads(stdout)["images"] == 9 and json.loads(stdout)["skipped"] == {}
    document = json.loads((tmp_path / "shared" / "view.js").read_text()[len("window.PRFNET_VIEW = ") : -2])
    assert document["kind"] == "rd" and {p["codec"] for p in document["rd"]["points"]} == {"jpeg", "webp"}
