"""What the user owns is never touched (prfnet.outputs.ownership): the manifest verified, a file prfnet did not
write (or that the user changed since) refused before any work and left as it is, the journal of an interrupted
publication trusted, inputs below an output name refused."""

from __future__ import annotations

import json

import pytest

from prfnet.errors import DataError, OutputError
from prfnet.outputs import MANIFEST, STAGING_PREFIX, OutputSet, verify_outputs
from tests.conftest import OUTPUT_KINDS, file_snapshot, publish_outputs, write_text

fcntl = pytest.importorskip("fcntl")  # the liveness of a staging folder is its flock (POSIX)


def test_verify_outputs_refuses_a_changed_file_and_a_folder_without_manifest(tmp_path):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "{}\n"})
    write_text(root / "results.json", '{"other": "run"}\n')
    with pytest.raises(DataError, match="results.json"):
        verify_outputs(root)
    (root / MANIFEST).unlink()
    with pytest.raises(DataError, match="no manifest.json"):
        verify_outputs(root)


@pytest.mark.parametrize(
    "theirs",
    [
        {"results.json": "my notes\n"},  # a file of the user's under one of our names
        {"data/mine.txt": "mine\n"},  # a folder of the user's under one of our names
        {"submission_psnr.csv": "mine\n"},  # a pattern of ours matching a user's file
        {MANIFEST: '{"mine": true}\n'},  # a manifest.json that is not prfnet's
    ],
)
def test_a_file_prfnet_did_not_write_is_refused_before_work_and_left_as_it_is(tmp_path, theirs):
    root = tmp_path / "out"
    for name, text in theirs.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_text(root / name, text)
    before = file_snapshot(root)
    with pytest.raises(OutputError, match="in the way: prfnet did not write it") as info:
        OutputSet(root, OUTPUT_KINDS).check()
    assert str(root / next(iter(theirs)).split("/")[0]) in str(info.value)
    assert file_snapshot(root) == before and not any(p.name.startswith(".") for p in root.iterdir())


def test_files_of_an_earlier_run_are_replaced_and_stale_ones_removed(tmp_path):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "1\n", "submission_ssim.csv": "x\n", "data/a.txt": "a\n"})
    write_text(root / "notes.txt", "the user's, not of our kinds\n")
    publish_outputs(root, {"results.json": "2\n"})
    assert (root / "results.json").read_text() == "2\n"
    assert not (root / "submission_ssim.csv").exists() and not (root / "data").exists()
    assert (root / "notes.txt").read_text() == "the user's, not of our kinds\n"


@pytest.mark.parametrize("change", ["edit", "add"])
def test_an_output_changed_by_the_user_since_it_was_published_is_theirs_now(tmp_path, change):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "1\n", "data/a.txt": "a\n"})
    if change == "edit":
        write_text(root / "results.json", "edited by hand\n")
    else:
        write_text(root / "data/added.txt", "added by hand\n")
    before = file_snapshot(root)
    with pytest.raises(OutputError, match="in the way"):
        publish_outputs(root, {"results.json": "2\n"})
    assert file_snapshot(root) == before


def test_a_file_put_in_the_way_during_the_run_is_refused_at_publication(tmp_path):
    root = tmp_path / "out"
    sink = OutputSet(root, OUTPUT_KINDS).open()
    write_text(sink.path("results.json"), "ours\n")
    write_text(root / "report.html", "the user's, written while the run was scoring\n")
    with pytest.raises(OutputError, match="report.html is in the way"):
        sink.commit()
    sink.abort()
    assert (root / "report.html").read_text().startswith("the user's")
    assert not (root / "results.json").exists() and not list(root.glob(f"{STAGING_PREFIX}*"))


def test_an_interrupted_publication_leaves_a_journal_that_the_next_run_trusts(tmp_path, monkeypatch):
    root = tmp_path / "out"
    publish_outputs(root, {"results.json": "1\n", "data/a.txt": "a\n"})
    sink = OutputSet(root, OUTPUT_KINDS).open()
    write_text(sink.path("results.json"), "2\n")
    write_text(sink.path("report.html"), "<p>2</p>\n")
    real = OutputSet._move_into_place
    moved = []

    def die_after_the_first_move(self, name):
        real(self, name)
        moved.append(name)
        raise KeyboardInterrupt  # as if killed half-way: one file moved, no manifest

    monkeypatch.setattr(OutputSet, "_move_into_place", die_after_the_first_move)
    with pytest.raises(KeyboardInterrupt):
        sink.commit()
    sink.abort()
    monkeypatch.undo()
    assert moved and not (root / MANIFEST).exists()  # no complete set, but the journal names every file
    publish_outputs(root, {"results.json": "3\n"})  # accepted: everything in the way was written by prfnet
    assert (root / "results.json").read_text() == "3\n" and not (root / "data").exists()
    assert not (root / ".prfnet-owned.json").exists()


def test_an_input_below_an_output_name_is_refused(tmp_path):
    root = tmp_path / "out"
    publish_outputs(root, {"data/table.csv": "ref,dist,score\n"})
    outputs = OutputSet(root, OUTPUT_KINDS).check()
    with pytest.raises(OutputError, match="lies where this run writes its output"):
        outputs.refuse_inputs([root / "data" / "table.csv"], "--csv")
    outputs.refuse_inputs([root / "elsewhere.csv", tmp_path / "x.png"])  # not of our kinds: fine


def test_runs_of_different_kinds_into_one_folder_keep_each_others_files_theirs(tmp_path):
    """eval, then rd, then eval again into one folder: the second eval may replace what the first wrote, although the
    current manifest (rd's) does not list it as its set: it lists it in ``earlier_files``."""
    root = tmp_path / "out"
    with OutputSet(root, ("results.json", "report.html")) as sink:  # eval
        sink.path("results.json").write_text("eval 1\n")
    with OutputSet(root, ("rd.json", "results", "report.html")) as sink:  # rd (report.html of the same name)
        sink.path("rd.json").write_text("rd\n")
        sink.path("results/jpeg.json").write_text("{}\n")
    manifest = json.loads((root / MANIFEST).read_text())
    assert [f["path"] for f in manifest["earlier_files"]] == ["results.json"]
    with OutputSet(root, ("results.json", "report.html")) as sink:  # eval again: results.json is still ours
        sink.path("results.json").write_text("eval 2\n")
    assert (root / "results.json").read_text() == "eval 2\n"
    with OutputSet(root, ("rd.json", "results", "report.html")) as sink:  # and rd's folder is still rd's
        sink.path("rd.json").write_text("rd 2\n")
    assert not (root / "results").exists() and not (root / ".prfnet-owned.json").exists()
