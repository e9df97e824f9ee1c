"""``prfnet view OUT --static DIR`` as a library call: the folder's layout, the document it carries, browser-ready
copies, thumbnails, precomputed maps on one scale per reference, and the folder's checks (outside the output set,
writable, the user's files kept; a second export replaces only its own files)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prfnet.errors import ConfigError, OutputError
from prfnet.outputs import MANIFEST, verify_outputs
from prfnet.view.images import THUMB_SIDE, ViewCache
from prfnet.view.static import NO_SERVER_MAPS, export_static, map_pairs
from tests.view.test_server import make_assets, make_view, rgb

PREFIX, SUFFIX = "window.PRFNET_VIEW = ", ";\n"


def read_document(folder: Path) -> dict:
    text = (folder / "view.js").read_text(encoding="utf-8")
    assert text.startswith(PREFIX) and text.endswith(SUFFIX)
    return json.loads(text[len(PREFIX) : -len(SUFFIX)])


def export(view, tmp_path: Path, dest: Path, **options) -> dict:
    options.setdefault("assets", make_assets(tmp_path / "assets"))
    options.setdefault("cache", ViewCache(tmp_path / "cache"))
    return export_static(view, dest, **options)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_export_holds_the_page_the_document_and_browser_ready_images(tmp_path):
    view = make_view(tmp_path)
    dest = tmp_path / "shared"
    summary = export(view, tmp_path, dest)
    assert summary["index"] == str(dest / "index.html") and summary["maps"] == 0
    for name in ("index.html", "viewer.js", "viewer.css"):
        assert (dest / name).read_bytes() == (tmp_path / "assets" / name).read_bytes()
    document = read_document(dest)
    static = document.pop("static")
    assert document == {**view.document, "maps": {"available": False, "why": NO_SERVER_MAPS}}
    # every readable image, as it is or as PNG; the unreadable ones and the link out of the roots left out, with why
    assert static["images"] == {"f0": "images/f0.png", "f1": "images/f1.png", "f2": "images/f2.jpg",
                                "f3": "images/f3.gif", "f4": "images/f4.webp", "f5": "images/f5.png",
                                "f6": "images/f6.png", "f7": "images/f7.png", "f8": "images/f8.png"}  # fmt: skip
    assert set(static["skipped"]) == {"f9", "f10", "f11", "f12", "gone"}
    assert "pixels" in static["skipped"]["f11"] and static["skipped"]["f12"] == "no such image"
    for image_id in ("f0", "f2", "f3", "f4", "f7"):
        assert (dest / static["images"][image_id]).read_bytes() == view.files[image_id].read_bytes()
    assert np.array_equal(np.asarray(Image.open(dest / "images" / "f6.png")), rgb(5))  # the PPM, converted
    assert static["thumbs"] == {i: f"thumbs/{i}.png" for i in static["images"]}
    assert Image.open(dest / "thumbs" / "f8.png").size == (THUMB_SIDE, 100)
    assert summary["images"] == summary["thumbs"] == 9 and set(summary["skipped"]) == set(static["skipped"])
    listed = {entry["path"] for entry in verify_outputs(dest)["files"]}
    assert listed == set(_contents(dest)) - {MANIFEST}  # one consistent set, manifest last
    assert (tmp_path / "secret" / "s.png").read_bytes() not in _contents(dest).values()


def test_precomputed_maps_share_one_scale_per_reference(tmp_path):
    view = make_view(tmp_path, model=True)
    view.document["triplets"].append({**view.document["triplets"][0], "id": 1, "a": "f6", "b": "f1"})
    assert map_pairs(view.document) == [("f0", "f1"), ("f0", "f2"), ("f0", "f6")]
    dest = tmp_path / "shared"
    summary = export(view, tmp_path, dest, maps=True)
    static = read_document(dest)["static"]
    assert summary["maps"] == 3 and static["maps"] == {f"f0/{d}": f"maps/f0-{d}.png" for d in ("f1", "f2", "f6")}
    assert set(static["map_scales"]) == {"f0"} and static["map_scales"]["f0"] > 0
    alphas = [np.asarray(Image.open(dest / path))[..., 3] for path in static["maps"].values()]
    assert all(a.shape == (64, 64) for a in alphas)
    assert max(a.max() for a in alphas) == 255  # the largest 99th percentile of the three is full colour
    assert read_document(dest)["maps"]["available"] is True


def test_maps_need_a_model_and_nothing_is_written_without_one(tmp_path):
    view = make_view(tmp_path)
    with pytest.raises(ConfigError, match="--maps"):
        export(view, tmp_path, tmp_path / "shared", maps=True)
    assert not (tmp_path / "shared").exists()


@pytest.mark.parametrize("inside", ["out", "out/images", "out/sub/deeper", "data"])
def test_a_folder_inside_the_output_set_or_a_folder_of_its_images_is_refused_before_any_work(tmp_path, inside):
    view = make_view(tmp_path)
    (tmp_path / "data").mkdir()
    view.roots.append(tmp_path / "data")  # a folder the results name: not written into, but beside it is fine
    before = _contents(tmp_path / "out")
    with pytest.raises(OutputError, match="lies inside"):
        export(view, tmp_path, tmp_path / inside)
    assert _contents(tmp_path / "out") == before and not (tmp_path / "out" / "sub").exists()
    assert not any((tmp_path / "data").iterdir())
    export(view, tmp_path, tmp_path / "data" / "shared")
    assert (tmp_path / "data" / "shared" / "view.js").is_file()


def test_a_second_export_replaces_only_its_own_files(tmp_path):
    view = make_view(tmp_path, model=True)
    dest = tmp_path / "shared"
    export(view, tmp_path, dest, maps=True)
    (dest / "notes.txt").write_text("the user's")
    del view.files["f1"]  # the second view has one image less and no maps
    export(view, tmp_path, dest)
    assert (dest / "notes.txt").read_text() == "the user's"
    assert not (dest / "images" / "f1.png").exists() and not (dest / "maps").exists()
    assert {e["path"] for e in verify_outputs(dest)["files"]} == set(_contents(dest)) - {MANIFEST, "notes.txt"}


@pytest.mark.parametrize("users", ["index.html", "images/mine.png", "view.js"])
def test_the_users_files_in_the_folder_are_refused_and_kept(tmp_path, users):
    view = make_view(tmp_path)
    dest = tmp_path / "shared"
    (dest / users).parent.mkdir(parents=True, exist_ok=True)
    (dest / users).write_text("mine")
    with pytest.raises(OutputError, match="prfnet did not write it"):
        export(view, tmp_path, dest)
    assert _contents(dest) == {users: b"mine"}


def test_a_folder_that_cannot_be_written_is_refused(tmp_path):
    view = make_view(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        probe = locked / "probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this process writes into a 0o500 folder (root?)")
        with pytest.raises(OutputError, match="locked"):
            export(view, tmp_path, locked / "shared")
        assert not any(locked.iterdir())
    finally:
        locked.chmod(stat.S_IRWXU)


def test_the_view_js_document_is_strict_json(tmp_path):
    view = make_view(tmp_path)
    view.document["title"] = "</script><script>alert(1)</script> \u2028"
    dest = tmp_path / "shared"
    export(view, tmp_path, dest)
    text = (dest / "view.js").read_text(encoding="utf-8")
    assert read_document(dest)["title"] == view.document["title"]
    assert "\u2028" not in text and text.isascii()
    assert Image.open(io.BytesIO((dest / "images" / "f0.png").read_bytes())).size == (64, 64)
