"""Bad input for every command, second table (the first is ``tests/cli/test_bad_input.py``): images, checkpoints,
CSV/YAML/npy files, options, output locations and signals.

Every CLI row: exit code 2, nothing on stdout, exactly one stderr line starting with "error:", no traceback, and no
partial output: the case's ``{out}`` does not exist afterwards, the shared corpus folder and the working folder are
unchanged (no ``.run-*`` staging folder, no hidden ``.tmp`` file, no ``config.yaml`` of a run that never started).
Runs in-process with tiny files (``test_resnet`` checkpoint, 48 px images); no case trains.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from prfnet import PRFNet, save_image
from prfnet.cli import main
from prfnet.outputs import MANIFEST, verify_outputs

TINY = "test_resnet"
MAX_ERROR_CHARS = 600


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """Every file the table refers to, by name (read-only for the cases: the table checks that none changes)."""
    d = tmp_path_factory.mktemp("bad_runs")
    g = torch.Generator().manual_seed(0)
    c: dict[str, str] = {"dir": str(d)}
    ref = torch.rand(1, 3, 48, 48, generator=g)
    for name, amount in (("ref", 0.0), ("a", 0.05), ("b", 0.3)):
        c[name] = str(d / f"{name}.png")
        save_image((ref + amount * torch.randn(ref.shape, generator=g)).clamp(0, 1), c[name])
    c["wide"] = str(d / "wide.png")
    save_image(torch.rand(1, 3, 48, 64, generator=g), c["wide"])  # another size than ref
    c["tiny"] = str(d / "tiny.png")
    save_image(torch.rand(1, 3, 16, 16, generator=g), c["tiny"])  # below PRFNet's 32 px
    c["empty_png"] = _write(d / "empty.png", "")
    c["text_png"] = _write(d / "text.png", "this is not an image\n")
    good = Path(c["ref"]).read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    c["truncated_png"] = str(d / "truncated.png")

    torch.manual_seed(0)
    c["ckpt"] = str(PRFNet(TINY).save_pretrained(d / "tiny.safetensors"))
    c["empty_ckpt"] = _write(d / "empty.safetensors", "")
    (d / "garbage.safetensors").write_bytes(os.urandom(4096))
    c["garbage_ckpt"] = str(d / "garbage.safetensors")
    c["yaml_ckpt"] = _write(d / "config.safetensors", "model:\n  backbone: test_resnet\n")

    # CLIC: names relative to {dir}
    c["clic_csv"] = _write(d / "val.csv", "ref.png,a.png,b.png\nref.png,b.png,a.png\n")
    c["clic_oracle"] = _write(d / "oracle.csv", "ref.png,a.png,b.png,0\nref.png,b.png,a.png,1\n")
    c["two_columns_csv"] = _write(d / "two.csv", "ref.png,a.png\n")
    c["empty_csv"] = _write(d / "empty.csv", "")
    c["bad_label_oracle"] = _write(d / "bad_label.csv", "ref.png,a.png,b.png,2\n")
    c["foreign_oracle"] = _write(d / "foreign.csv", "ref.png,a.png,wide.png,0\n")  # not in val.csv
    c["missing_image_csv"] = _write(d / "missing.csv", "ref.png,a.png,gone.png\n")

    # BAPPS: one subset with one triplet, and broken variants
    def bapps(name: str, judge: np.ndarray | None = None, judge_bytes: bytes | None = None, p1: bool = True) -> str:
        subset = d / name / "val" / "cnn"
        for sub in ("ref", "p0", "p1", "judge"):
            (subset / sub).mkdir(parents=True)
        shutil.copy(c["ref"], subset / "ref" / "x.png")
        shutil.copy(c["a"], subset / "p0" / "x.png")
        if p1:
            shutil.copy(c["b"], subset / "p1" / "x.png")
        if judge_bytes is not None:
            (subset / "judge" / "x.npy").write_bytes(judge_bytes)
        else:
            np.save(subset / "judge" / "x.npy", judge if judge is not None else np.array([0.25]))
        return str(subset)

    c["bapps"] = bapps("bapps")
    c["bapps_garbage_judge"] = bapps("bapps_garbage", judge_bytes=b"not a numpy file")
    c["bapps_no_p1"] = bapps("bapps_no_p1", p1=False)
    (d / "no_subsets").mkdir()
    c["no_subsets"] = str(d / "no_subsets")

    # MOS CSVs (paths relative to the CSV)
    rows = "ref.png,a.png,4.5\nref.png,b.png,3.0\nref.png,wide.png,1.5\nref.png,ref.png,5.0\n"
    c["mos_csv"] = _write(d / "mos.csv", "ref,dist,score\n" + rows.replace("wide.png", "a.png"))
    c["mos_no_header"] = _write(d / "mos_no_header.csv", rows)
    c["mos_text_score"] = _write(d / "mos_text.csv", "ref,dist,score\nref.png,a.png,good\n" + rows)
    c["mos_missing_image"] = _write(d / "mos_missing.csv", "ref,dist,score\n" + rows.replace("b.png", "gone.png"))

    # training configs and data
    c["empty_yaml"] = _write(d / "empty.yaml", "")
    c["comments_yaml"] = _write(d / "comments.yaml", "# nothing but a comment\n")
    c["list_yaml"] = _write(d / "list.yaml", "- seed: 0\n")
    c["broken_yaml"] = _write(d / "broken.yaml", "data: [unclosed\n")
    c["typo_yaml"] = _write(d / "typo.yaml", "data:\n  batch_szie: 4\n")
    c["fp7_yaml"] = _write(d / "fp7.yaml", "trainer:\n  precision: 7-bit\n  accelerator: cpu\n")
    train_data = d / "train_data"  # 4 references of 48 px, a mild and a strong distortion of each
    (train_data / "images").mkdir(parents=True)
    oracle = []
    for r in range(4):
        image = torch.rand(1, 3, 48, 48, generator=g)
        save_image(image, train_data / "images" / f"r{r}.png")
        for k, sigma in enumerate((0.03, 0.3)):
            save_image((image + sigma * torch.randn(image.shape, generator=g)).clamp(0, 1),
                       train_data / "images" / f"r{r}_d{k}.png")  # fmt: skip
        oracle += [f"r{r}.png,r{r}_d0.png,r{r}_d1.png,0", f"r{r}.png,r{r}_d1.png,r{r}_d0.png,1"]
    _write(train_data / "oracle.csv", "\n".join(oracle) + "\n")
    c["train_data"] = str(train_data)

    c["afile"] = _write(d / "afile", "a file where a folder is expected\n")
    (d / "folder").mkdir()
    c["folder"] = str(d / "folder")
    return c


# -- the table ----------------------------------------------------------------------------------------------------

CK = "-c {ckpt}"
CLIC = "eval clic --csv {clic_csv} --root {dir} --no-progress"
BAPPS = "eval bapps --no-progress"
MOS = "eval mos --dataset csv --no-progress"
TRAIN = "train -c demo --data {train_data} --no-progress --out {out}"
DEMO = "demo --refs 4 --size 256 --no-progress"
CASES = [
    # compare / score / rank: images
    ("compare-missing-image", f"compare {{dir}}/nosuch.png {{a}} {{b}} {CK}", ["nosuch.png"]),
    ("compare-empty-image", f"compare {{empty_png}} {{a}} {{b}} {CK}", ["empty.png"]),
    ("compare-text-as-image", f"compare {{ref}} {{text_png}} {{b}} {CK}", ["text.png"]),
    ("compare-truncated-png", f"compare {{ref}} {{a}} {{truncated_png}} {CK}", ["truncated.png"]),
    ("compare-size-mismatch", f"compare {{ref}} {{a}} {{wide}} {CK}", ["64"]),
    ("score-image-below-32px", f"score {{tiny}} {{tiny}} {CK}", ["32"]),
    ("rank-one-candidate-missing", f"rank {{ref}} {{a}} {{dir}}/gone.png {CK}", ["gone.png"]),
    # compare / score / rank: checkpoints
    ("score-missing-checkpoint", "score {ref} {a} -c {dir}/none.safetensors", ["none.safetensors"]),
    ("score-empty-checkpoint", "score {ref} {a} -c {empty_ckpt}", ["empty.safetensors"]),
    ("score-garbage-checkpoint", "score {ref} {a} -c {garbage_ckpt}", ["garbage.safetensors"]),
    ("rank-yaml-as-checkpoint", "rank {ref} {a} {b} -c {yaml_ckpt}", ["config.safetensors"]),
    # synth: output locations
    ("synth-out-is-a-file", "synth {afile} --refs 1 --size 64", ["afile"]),
    ("synth-out-below-a-file", "synth {afile}/sub --refs 1 --size 64", ["afile"]),
    # train: trainer options, refused before anything is written
    ("train-accelerator-gpu", TRAIN + " --accelerator gpu", ["trainer.accelerator", "'gpu'", "--accelerator cpu"]),
    ("train-precision-7-bit", TRAIN + " --precision 7-bit", ["trainer.precision", "'7-bit'", "bf16-mixed"]),
    ("train-devices-0", TRAIN + " --devices 0", ["trainer.devices (--devices) is 0"]),
    ("train-devices-list-on-cpu", TRAIN + " --devices 0,1", ["devices='0,1'"]),
    ("train-strategy-bogus", TRAIN + " --strategy bogus", ["strategy='bogus'"]),
    ("train-accelerator-tpu", TRAIN + " --accelerator tpu", ["accelerator='tpu'"]),
    ("train-precision-in-yaml", "train -c {fp7_yaml} --data {train_data} --out {out}", ["trainer.precision", "7-bit"]),
    # train: YAML files and overrides
    ("train-empty-yaml", "train -c {empty_yaml} --data {train_data} --out {out}", ["empty.yaml", "empty"]),
    ("train-comments-only-yaml", "train -c {comments_yaml} --out {out}", ["comments.yaml", "empty"]),
    ("train-yaml-list", "train -c {list_yaml} --out {out}", ["list.yaml", "mapping"]),
    ("train-yaml-syntax", "train -c {broken_yaml} --out {out}", ["broken.yaml", "not valid YAML"]),
    ("train-yaml-typo", "train -c {typo_yaml} --out {out}", ["data.batch_szie", "data.batch_size"]),
    ("train-config-missing", "train -c {dir}/nosuch.yaml --out {out}", ["nosuch.yaml", "not found"]),
    ("train-set-without-value", TRAIN + " --set data.crop", ["--set", "key.sub=value"]),
    ("train-set-unknown-key", TRAIN + " --set data.fromat=clic", ["data.fromat", "data.format"]),
    # train: output and data locations
    ("train-out-is-a-file", "train -c demo --data {train_data} --out {afile}", ["run folder", "afile", "is a file"]),
    ("train-out-below-a-file", "train -c demo --data {train_data} --out {afile}/run", ["afile", "cannot be created"]),
    ("train-resume-nothing", "train -c demo --out {out} --resume", ["nothing to resume"]),
    ("train-data-missing", "train -c demo --data {dir}/nosuch --out {out}", ["nosuch"]),
    # eval clic
    ("clic-out-dir-is-a-file", CLIC + " --metrics psnr -o {afile}", ["output folder", "afile", "is a file"]),
    ("clic-out-dir-below-a-file", CLIC + " --metrics psnr -o {afile}/x/y", ["afile", "cannot be created"]),
    ("clic-out-dir-impossible", CLIC + " --metrics psnr -o /dev/null/prfnet", ["/dev/null/prfnet"]),
    ("clic-csv-two-columns", "eval clic --csv {two_columns_csv} --root {dir} --metrics psnr -o {out}", ["two.csv"]),
    ("clic-csv-empty", "eval clic --csv {empty_csv} --root {dir} --metrics psnr -o {out}", ["empty.csv"]),
    ("clic-oracle-label-2", CLIC + " --oracle {bad_label_oracle} --metrics psnr -o {out}", ["bad_label.csv"]),
    ("clic-oracle-key-not-in-csv", CLIC + " --oracle {foreign_oracle} --metrics psnr -o {out}", ["foreign.csv"]),
    ("clic-missing-image", "eval clic --csv {missing_image_csv} --root {dir} --metrics psnr -o {out}", ["gone.png"]),
    # data errors come before the model: a missing image is named even when the checkpoint is missing too
    (
        "clic-missing-image-no-checkpoint",
        "eval clic --csv {missing_image_csv} --root {dir} -m prfnet -o {out}",
        ["gone.png"],
    ),
    ("clic-unknown-metric", CLIC + " --metrics psnr,sharpness -o {out}", ["sharpness"]),
    ("clic-root-missing", "eval clic --csv {clic_csv} --root {dir}/nowhere --metrics psnr -o {out}", ["nowhere"]),
    # eval bapps
    ("bapps-root-missing", BAPPS + " --root {dir}/nowhere --metrics psnr -o {out}", ["nowhere"]),
    ("bapps-no-subset", BAPPS + " --root {no_subsets} --metrics psnr -o {out}", ["no_subsets"]),
    ("bapps-judge-not-npy", BAPPS + " --root {bapps_garbage_judge} --metrics psnr -o {out}", ["x.npy"]),
    ("bapps-p1-missing", BAPPS + " --root {bapps_no_p1} --metrics psnr -o {out}", ["p1"]),
    ("bapps-out-dir-is-a-file", BAPPS + " --root {bapps} --metrics psnr -o {afile}", ["output folder", "afile"]),
    # eval mos
    ("mos-unknown-dataset", "eval mos --dataset live --root {dir} --metrics psnr -o {out}", ["live"]),
    ("mos-csv-without-header", MOS + " --csv {mos_no_header} --metrics psnr -o {out}", ["mos_no_header.csv"]),
    ("mos-csv-text-score", MOS + " --csv {mos_text_score} --metrics psnr -o {out}", ["mos_text.csv"]),
    ("mos-csv-and-root", MOS + " --csv {mos_csv} --root {dir} --metrics psnr -o {out}", ["--csv", "--root"]),
    ("mos-kadid-without-root", "eval mos --dataset kadid --metrics psnr -o {out}", ["--root"]),
    ("mos-missing-image", MOS + " --csv {mos_missing_image} --metrics psnr -o {out}", ["gone.png"]),
    ("mos-missing-image-no-checkpoint", MOS + " --csv {mos_missing_image} --metrics prfnet -o {out}", ["gone.png"]),
    ("mos-out-dir-is-a-file", MOS + " --csv {mos_csv} --metrics psnr -o {afile}", ["output folder", "afile"]),
    # demo: refused before any data is synthesised
    ("demo-config-missing", DEMO + " --config nosuch --out {out}", ["nosuch", "not found"]),
    ("demo-empty-config", DEMO + " --config {empty_yaml} --out {out}", ["empty.yaml", "empty"]),
    ("demo-precision-in-config", DEMO + " --config {fp7_yaml} --out {out}", ["trainer.precision"]),
    ("demo-unknown-metric", DEMO + " --metrics prfnet,sharpness --out {out}", ["sharpness"]),
    ("demo-out-is-a-file", DEMO + " --out {afile}", ["output folder", "afile", "is a file"]),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``folder`` (hidden ones too) with its size and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        found[path.relative_to(folder).as_posix()] = (info.st_size if path.is_file() else -1, info.st_mtime_ns)
    return found


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: int, out: str, err: str, expected_code: int = 2) -> str:
    lines = err.strip().splitlines()
    assert code == expected_code, err
    assert out == ""
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert len(lines[0]) < MAX_ERROR_CHARS, f"{len(lines[0])} characters"
    return lines[0]


@pytest.mark.parametrize(("command", "expected"), [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_bad_run_is_one_error_line_and_leaves_nothing(capsys, corpus, tmp_path, monkeypatch, command, expected):
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default output folders (prfnet-eval/..., runs/...) would land here
    out = tmp_path / "out"
    before = _snapshot(Path(corpus["dir"]))
    argv = [part.format(**corpus, out=out) for part in command.split()]
    code, stdout, err = run_cli(capsys, argv)
    line = assert_one_error_line(code, stdout, err)
    for fragment in expected:
        assert fragment in line
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert not any(work.iterdir()), sorted(p.name for p in work.rglob("*"))
    assert _snapshot(Path(corpus["dir"])) == before


def test_the_two_tables_hold_at_least_60_cases():
    from tests.cli.test_bad_input import API_CASES, CLI_CASES

    assert len(CASES) + len(CLI_CASES) + len(API_CASES) >= 60


# -- output folders: a consistent set per run ---------------------------------------------------------------------


def _clic(corpus, out: Path, metrics: str) -> list[str]:
    """These tests snapshot the output folder: no score store in it (tests/evaluation/test_store_reuse.py tests
    the store)."""
    return ["eval", "clic", "--csv", corpus["clic_csv"], "--root", corpus["dir"], "--oracle", corpus["clic_oracle"],
            "--metrics", metrics, "--no-progress", "--no-store", "-o", str(out)]  # fmt: skip


def _listed(out: Path) -> set[str]:
    return {entry["path"] for entry in verify_outputs(out)["files"]}


def test_a_rerun_replaces_the_whole_set_and_the_manifest_lists_it(capsys, corpus, tmp_path):
    out = tmp_path / "eval"
    assert run_cli(capsys, _clic(corpus, out, "psnr,ssim"))[0] == 0
    first = json.loads((out / MANIFEST).read_text())
    assert _listed(out) == {"results.json", "report.html", "submission_psnr.csv", "submission_ssim.csv"}
    assert first["command"].startswith("prfnet eval clic --csv")
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    second = json.loads((out / MANIFEST).read_text())
    assert second["run_id"] != first["run_id"]
    # the ssim submission of the first run is gone with it: no file of ours that the manifest does not list
    assert {p.name for p in out.iterdir()} == {MANIFEST, "results.json", "report.html", "submission_psnr.csv"}
    assert _listed(out) == {"results.json", "report.html", "submission_psnr.csv"}
    assert set(json.loads((out / "results.json").read_text())) == {"psnr"}


def test_leftovers_of_a_killed_run_are_removed_by_the_next_one(capsys, corpus, tmp_path):
    out = tmp_path / "eval"
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    dead = out / ".run-20000101T000000Z-1-abcdef"  # what SIGKILL while staging leaves
    (dead / "sub").mkdir(parents=True)
    (dead / "results.json").write_text("{half")
    (out / ".results.json.0123456789abcdef.tmp").write_text("{half")  # an atomic_write cut short
    (out / "notes.txt").write_text("the user's own file")  # not of our kinds: kept
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    assert {p.name for p in out.iterdir()} == {MANIFEST, "results.json", "report.html", "submission_psnr.csv",
                                               "notes.txt"}  # fmt: skip
    assert _listed(out) == {"results.json", "report.html", "submission_psnr.csv"}


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="flock on folders: POSIX")
def test_a_live_staging_folder_is_left_alone(capsys, corpus, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "eval"
    live = out / ".run-20000101T000000Z-2-abcdef"
    live.mkdir(parents=True)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the run writing into it holds it
        assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
        assert live.is_dir()
    finally:
        os.close(fd)


def test_a_full_disk_while_writing_keeps_the_previous_set(capsys, corpus, tmp_path, monkeypatch):
    import errno

    import prfnet.evaluation.clic as clic_module

    out = tmp_path / "eval"
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    before = _snapshot(out)

    def full(path, triplets, decision_t):  # the disk fills up while the new set is being written
        Path(path).write_text("r0.png,")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(clic_module, "write_submission", full)
    code, stdout, err = run_cli(capsys, _clic(corpus, out, "psnr,ssim"))
    line = assert_one_error_line(code, stdout, err)
    assert "No space left on device" in line and str(out) in line
    assert _snapshot(out) == before  # the previous set, whole, and no staging folder
    verify_outputs(out)


def test_a_set_interrupted_while_moved_into_place_is_not_trusted(capsys, corpus, tmp_path):
    from prfnet.errors import DataError

    out = tmp_path / "eval"
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    (out / "results.json").write_text("{}")  # another run's file beside this manifest
    with pytest.raises(DataError, match="results.json"):
        verify_outputs(out)
    (out / MANIFEST).unlink()  # what a kill between the moves leaves
    with pytest.raises(DataError, match="no manifest.json"):
        verify_outputs(out)


@pytest.mark.parametrize(("signum", "exit_code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                           (signal.SIGTERM, 143, "terminated")])  # fmt: skip
def test_ctrl_c_and_sigterm_end_eval_cleanly(capsys, corpus, tmp_path, monkeypatch, signum, exit_code, word):
    import prfnet.evaluation.clic as clic_module

    out = tmp_path / "eval"
    assert run_cli(capsys, _clic(corpus, out, "psnr"))[0] == 0
    before = _snapshot(out)
    real = clic_module.write_submission

    def signalled(path, triplets, decision_t):  # the signal arrives while the new set is being written
        real(path, triplets, decision_t)
        # raise_signal runs the handler before it returns; os.kill(getpid()) would let the kernel hand the signal to
        # any thread and the handler run a moment later, wherever the run then is (after the publication, or in a
        # finaliser that swallows the KeyboardInterrupt): a race
        signal.raise_signal(signum)

    monkeypatch.setattr(clic_module, "write_submission", signalled)
    previous = signal.getsignal(signal.SIGTERM)
    code, stdout, err = run_cli(capsys, _clic(corpus, out, "psnr,ssim"))
    line = assert_one_error_line(code, stdout, err, expected_code=exit_code)
    assert word in line
    assert _snapshot(out) == before
    assert signal.getsignal(signal.SIGTERM) == previous  # main() restores the handler it installed
    fresh = tmp_path / "fresh"  # a folder the interrupted run created is removed again
    assert run_cli(capsys, _clic(corpus, fresh, "psnr"))[0] == exit_code
    assert not fresh.exists()


def _read_only_works(folder: Path) -> bool:
    """Whether chmod 0o500 really stops this process from writing (not as root, not on every file system)."""
    probe = folder / "probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    return False


@pytest.mark.parametrize("command", ["eval", "train", "demo"])
def test_read_only_output_folder_is_refused_before_any_work(capsys, corpus, tmp_path, command):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
    try:
        if not _read_only_works(locked):
            pytest.skip("this process can write into a 0o500 folder (root?)")
        argv = {
            "eval": _clic(corpus, locked / "eval", "psnr"),
            "train": ["train", "-c", "demo", "--data", corpus["train_data"], "--out", str(locked / "run")],
            "demo": ["demo", "--refs", "4", "--size", "256", "--out", str(locked / "demo")],
        }[command]
        line = assert_one_error_line(*run_cli(capsys, argv))
        assert str(locked) in line and ("not writable" in line or "cannot be created" in line)
        assert not any(locked.iterdir())
    finally:
        locked.chmod(stat.S_IRWXU)


# -- training: a run that failed before its first checkpoint does not block the corrected rerun ----------------------


def test_the_corrected_command_runs_after_a_refused_one(capsys, corpus, tmp_path, monkeypatch):
    import prfnet.training.run as run_module
    from prfnet.training import load_train_config, train

    out = tmp_path / "run"
    base = ["train", "-c", "demo", "--data", corpus["train_data"], "--out", str(out), "--no-progress"]
    assert_one_error_line(*run_cli(capsys, [*base, "--accelerator", "gpu"]))
    assert not out.exists()  # before this fix: config.yaml and val_triplets.csv, and the rerun was refused
    # what an older prfnet, or a run that died in its first epoch, leaves: a config and logs, no checkpoint
    (out / "step1_classification" / "logs" / "version_0").mkdir(parents=True)
    (out / "config.yaml").write_text("seed: 0\n")
    (out / "val_triplets.csv").write_text("")

    class Started(Exception):
        pass

    def started(*args, **kwargs):  # stands in for the training itself
        raise Started

    monkeypatch.setattr(run_module, "_run_step", started)
    config = load_train_config("demo", {"data.crop": 48, "data.val.crop": None})
    with pytest.raises(Started):
        train(config, Path(corpus["train_data"]), out, progress=False)
    assert "test_resnet" in (out / "config.yaml").read_text()  # the new run's
    assert not (out / "step1_classification").exists()  # the dead run's logs are gone
    # a folder with a checkpoint is a run to resume, not to overwrite
    (out / "step1_classification" / "checkpoints").mkdir(parents=True)
    (out / "step1_classification" / "checkpoints" / "step=000000001.ckpt").write_bytes(b"")
    line = assert_one_error_line(*run_cli(capsys, base))
    assert "already holds a training run" in line and "--resume" in line


@pytest.mark.parametrize("size", [64, 100])
def test_demo_crops_follow_the_image_size(size):
    from prfnet.demo import demo_config

    config = demo_config("demo", size)
    assert config.data.crop == min(128, size)
    assert config.data.train == "train_oracle.csv"
    assert demo_config("demo", 256).data.crop == 128
