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
from prfnet.outputs import MANIFEST, STAGING_PREFIX, verify_outputs
from prfnet.outputs.ownership import JOURNAL
from prfnet.trainer_settings import LAUNCHER_VARIABLES

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

    torch.manual_seed(0)
    diverged = PRFNet(TINY)
    with torch.no_grad():
        diverged.head.weight.fill_(float("nan"))  # what a diverged run leaves behind
    c["nan_ckpt"] = str(diverged.save_pretrained(d / "nan.safetensors"))
    _rd_inputs(d, c)
    _mos_folders(d, c)
    _stores(d, c)
    return c


RD_HEADER = "codec,image,rate_point,decoded_path,original_path,bpp"


def _rd_inputs(d: Path, c: dict[str, str]) -> None:
    """RD CSVs (paths relative to ``d``): a good one (2 codecs x 4 rate points of one image) and broken ones."""
    good = [f"{codec},x,q{q},a.png,ref.png,0.{q}{extra}" for codec, extra in (("jpeg", ""), ("webp", "5"))
            for q in range(1, 5)]  # fmt: skip
    four = [f"jpeg,x,q{q},a.png,ref.png,0.{q}" for q in range(1, 5)]
    variants = {
        "rd_csv": good,
        "rd_comma": ["jpeg,x,q1,a.png,ref.png,0,75", *four[1:]],  # a decimal comma: 7 fields
        "rd_short": ["jpeg,x,q1,a.png,ref.png", *four[1:]],  # the bpp left out: 5 fields
        "rd_missing_decoded": [four[0], four[1].replace("a.png", "gone.png"), *four[2:]],
        "rd_size_mismatch": [four[0], four[1].replace("a.png", "wide.png"), *four[2:]],
        "rd_three_rates": four[:3],
        "rd_same_mean": [*four[:2], four[2].replace("0.3", "0.2"), four[3]],
        "rd_zero_bpp": [four[0].replace("0.1", "0"), *four[1:]],
        # image y's bpp falls from q1 to q2 while the mean over images rises
        "rd_falling": [
            *four,
            *(f"jpeg,y,q{q},b.png,ref.png,{bpp}" for q, bpp in ((1, 0.2), (2, 0.15), (3, 0.4), (4, 0.5))),
        ],  # fmt: skip
    }
    for name, rows in variants.items():
        c[name] = _write(d / f"{name}.csv", "\n".join([RD_HEADER, *rows]) + "\n")
    c["rd_no_bpp_column"] = _write(d / "rd_no_bpp.csv", "codec,image,rate_point,decoded_path,original_path\n")
    decoded = d / "rd_decoded" / "jpeg" / "q1"  # a decoded image without an original
    decoded.mkdir(parents=True)
    shutil.copy(c["a"], decoded / "lonely.png")
    c["rd_decoded"] = str(d / "rd_decoded")


def _mos_folders(d: Path, c: dict[str, str]) -> None:
    """A TID2013 and a PIPAL folder of one distorted image each, whose score is written with a decimal comma."""
    tid = d / "tid2013"
    for sub in ("reference_images", "distorted_images"):
        (tid / sub).mkdir(parents=True)
    shutil.copy(c["ref"], tid / "reference_images" / "I01.BMP")
    shutil.copy(c["a"], tid / "distorted_images" / "i01_01_1.bmp")
    _write(tid / "mos_with_names.txt", "5,51429 i01_01_1.bmp\n")
    c["tid2013"] = str(tid)
    pipal = d / "pipal"
    for sub in ("Reference", "Train_Dis", "Train_Label"):
        (pipal / sub).mkdir(parents=True)
    shutil.copy(c["ref"], pipal / "Reference" / "A0001.bmp")
    shutil.copy(c["a"], pipal / "Train_Dis" / "A0001_00_00.bmp")
    _write(pipal / "Train_Label" / "A0001.txt", "A0001_00_00.bmp,1234,5\n")
    c["pipal"] = str(pipal)


def _stores(d: Path, c: dict[str, str]) -> None:
    """Score stores that are not: a text file, a folder, a damaged SQLite file, another program's database."""
    import sqlite3

    from prfnet.store import ScoreStore

    c["text_store"] = _write(d / "text.sqlite", "not a database\n" * 8)
    (d / "folder.sqlite").mkdir()
    c["folder_store"] = str(d / "folder.sqlite")
    scratch = d / "scratch"
    scratch.mkdir()
    with ScoreStore(scratch / "good.sqlite") as store:
        store.register_metric("psnr", "psnr")
    data = bytearray((scratch / "good.sqlite").read_bytes())
    data[100:] = bytes(range(256)) * ((len(data) - 100) // 256) + bytes((len(data) - 100) % 256)  # header kept
    (d / "damaged.sqlite").write_bytes(bytes(data))
    c["damaged_store"] = str(d / "damaged.sqlite")
    conn = sqlite3.connect(d / "foreign.sqlite")
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    c["foreign_store"] = str(d / "foreign.sqlite")
    shutil.rmtree(scratch)


# -- the table ----------------------------------------------------------------------------------------------------

CK = "-c {ckpt}"
CLIC = "eval clic --csv {clic_csv} --root {dir} --no-progress"
BAPPS = "eval bapps --no-progress"
MOS = "eval mos --dataset csv --no-progress"
TRAIN = "train -c demo --data {train_data} --no-progress --out {out}"
DEMO = "demo --refs 4 --size 256 --no-progress"
RD = "rd --csv {rd_csv} -m psnr --no-progress -o {out}"
RD_EXAMPLE = "rd --example -m psnr --no-progress -o {out}"  # refused before OUT/example is written
ABLATE = "ablate -c demo --data {train_data} --no-progress --out {out}"
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
    # -- issue 17 ----------------------------------------------------------------------------------------------------
    # 2. CSV rows with more or fewer fields than the header; decimal commas named
    (
        "rd-decimal-comma",
        "rd --csv {rd_comma} -m psnr -o {out}",
        ["rd_comma.csv, line 2", "7 fields", "header (line 1) has 6", "decimal comma"],
    ),
    ("rd-row-fewer-fields", "rd --csv {rd_short} -m psnr -o {out}", ["rd_short.csv, line 2", "5 fields", "has 6"]),
    (
        "tid2013-decimal-comma",
        MOS.replace("csv", "tid2013") + " --root {tid2013} --metrics psnr -o {out}",
        ["mos_with_names.txt, line 1", "'5,51429'", "decimal comma"],
    ),
    # the field count is named; the decimal-comma hint is not (yet) in this reader's message
    (
        "pipal-label-three-fields",
        MOS.replace("csv", "pipal") + " --root {pipal} --metrics psnr -o {out}",
        ["A0001.txt, line 1", "expected 2 fields", "got 3"],
    ),
    # 4. export: the folder before the model (the missing checkpoint is not what is reported), non-finite weights
    (
        "export-onnx-below-a-file",
        "export --onnx {afile}/x.onnx -c {dir}/none.safetensors",
        ["folder of --onnx", "afile", "is a file"],
    ),
    ("export-nan-checkpoint", "export --onnx {out}/x.onnx -c {nan_ckpt}", ["nan.safetensors", "NaN or infinite"]),
    # 5. rd's Lightning options, checked as train checks them, before OUT (or OUT/example) is written
    ("rd-accelerator-gpu", RD + " --accelerator gpu", ["--accelerator is 'gpu'", "no CUDA GPU"]),
    ("rd-devices-0", RD + " --devices 0", ["--devices is 0"]),
    ("rd-strategy-bogus", RD + " --strategy bogus", ["strategy='bogus'"]),
    ("rd-num-nodes-2", RD + " --num-nodes 2", ["--num-nodes is 2", "launcher"]),
    ("rd-example-accelerator-gpu", RD_EXAMPLE + " --accelerator gpu", ["'gpu'"]),
    ("rd-example-devices-0", RD_EXAMPLE + " --devices 0", ["--devices is 0"]),
    ("rd-example-strategy-bogus", RD_EXAMPLE + " --strategy bogus", ["strategy='bogus'"]),
    ("rd-example-num-nodes-2", RD_EXAMPLE + " --num-nodes 2", ["--num-nodes is 2"]),
    ("train-num-nodes-2", TRAIN + " --num-nodes 2", ["trainer.num_nodes (--num-nodes) is 2", "launcher"]),
    # 6. compare --heatmap: a file where the folder goes
    ("heatmap-is-a-file", f"compare {{ref}} {{a}} {{b}} {CK} --heatmap {{afile}}", ["--heatmap folder", "is a file"]),
    # 7. seeds outside [0, 2**32 - 1]
    ("ablate-seed-negative", ABLATE + " --seeds -1", ["seed -1", "[0, 4294967295]"]),
    ("train-seed-negative", TRAIN + " --set seed=-1", ["seed must be in [0, 4294967295]", "got -1"]),
    ("train-seed-2-to-the-32", TRAIN + " --set seed=4294967296", ["[0, 4294967295]", "got 4294967296"]),
    # -- commands added since the tables were written ---------------------------------------------------------------
    # rd: inputs checked before anything is scored
    ("rd-missing-decoded", "rd --csv {rd_missing_decoded} -m psnr -o {out}", ["q2", "gone.png", "not found"]),
    ("rd-size-mismatch", "rd --csv {rd_size_mismatch} -m psnr -o {out}", ["wide.png is 64x48", "ref.png is 48x48"]),
    ("rd-three-rate-points", "rd --csv {rd_three_rates} -m psnr -o {out}", ["only 3", "at least 4", "--no-bd-rate"]),
    ("rd-bpp-not-rising", "rd --csv {rd_falling} -m psnr -o {out}", ["b.png has 0.15 bpp", "must rise"]),
    ("rd-same-mean-bpp", "rd --csv {rd_same_mean} -m psnr -o {out}", ["q2 and q3", "the same mean bpp"]),
    ("rd-zero-bpp", "rd --csv {rd_zero_bpp} -m psnr -o {out}", ["rd_zero_bpp.csv, line 2", "positive finite"]),
    ("rd-header-without-bpp", "rd --csv {rd_no_bpp_column} -m psnr -o {out}", ["missing bpp or bitstream_path"]),
    ("rd-csv-missing", "rd --csv {dir}/nosuch.csv -m psnr -o {out}", ["nosuch.csv", "not found"]),
    ("rd-unknown-anchor", RD + " --anchor avif", ["anchor 'avif'", "jpeg, webp"]),
    ("rd-bd-method-bogus", RD + " --bd-method linear", ["akima", "'linear'"]),
    ("rd-unknown-metric", "rd --csv {rd_csv} -m psnr,foo -o {out}", ["unknown metric 'foo'"]),
    ("rd-prfnet-without-checkpoint", "rd --csv {rd_csv} -m prfnet,psnr -o {out}", ["no checkpoint given"]),
    ("rd-two-inputs", "rd --csv {rd_csv} --example -m psnr -o {out}", ["exactly one input", "--csv and --example"]),
    ("rd-decoded-without-originals", "rd --decoded {rd_decoded} -m psnr -o {out}", ["--originals is missing"]),
    (
        "rd-decoded-without-an-original",
        "rd --decoded {rd_decoded} --originals {folder} -m psnr -o {out}",
        ["lonely.png", "no original"],
    ),
    ("rd-out-is-a-file", "rd --csv {rd_csv} -m psnr -o {afile}", ["afile", "is a file"]),
    # score stores: --store given, and the one rd and eval keep in OUT by default
    ("rd-store-text-file", RD + " --store {text_store}", ["text.sqlite", "not an SQLite database"]),
    ("rd-store-folder", RD + " --store {folder_store}", ["folder.sqlite", "is a folder"]),
    ("rd-store-damaged", RD + " --store {damaged_store}", ["damaged.sqlite", "damaged"]),
    ("rd-store-foreign-database", RD + " --store {foreign_store}", ["foreign.sqlite", "not a prfnet score store"]),
    ("rd-store-and-no-store", RD + " --store {out}.sqlite --no-store", ["--store and --no-store"]),
    ("clic-store-text-file", CLIC + " --metrics psnr -o {out} --store {text_store}", ["text.sqlite"]),
    ("clic-store-and-no-store", CLIC + " --metrics psnr -o {out} --store {out}.sqlite --no-store", ["--no-store"]),
    # metrics: unknown names, in the listing and in every evaluation
    ("metrics-unknown-name", "metrics bogus", ["unknown metric 'bogus'"]),
    ("mos-unknown-metric", MOS + " --csv {mos_csv} --metrics psnr,foo -o {out}", ["unknown metric 'foo'"]),
    ("bapps-unknown-metric", BAPPS + " --root {bapps} --metrics foo -o {out}", ["unknown metric 'foo'"]),
    # compare --heatmap: nothing written when the comparison itself fails
    ("heatmap-below-a-file", f"compare {{ref}} {{a}} {{b}} {CK} --heatmap {{afile}}/maps", ["afile", "cannot be"]),
    ("heatmap-size-mismatch", f"compare {{ref}} {{a}} {{wide}} {CK} --heatmap {{out}}", ["wide.png", "differs"]),
    ("heatmap-nan-checkpoint", "compare {ref} {a} {b} -c {nan_ckpt} --heatmap {out}", ["nan.safetensors", "finite"]),
    # synth --kind codecs (and the options both kinds share)
    ("synth-codecs-size-100", "synth {out} --kind codecs --refs 1 --size 100", ["--size must be >= 256", "codecs"]),
    ("synth-codecs-refs-0", "synth {out} --kind codecs --refs 0", ["--refs must be >= 1, got 0"]),
    ("synth-codecs-votes", "synth {out} --kind codecs --refs 1 --votes 5", ["--votes applies to --kind distortions"]),
    ("synth-seed-negative", "synth {out} --refs 1 --size 64 --seed -1", ["--seed must be >= 0"]),
    ("synth-votes-0", "synth {out} --refs 1 --size 64 --votes 0", ["--votes must be >= 1"]),
    # export
    ("export-what-bogus", "export --onnx {out}/x.onnx --what bogus -c {dir}/none.safetensors", ["--what", "'bogus'"]),
    ("export-onnx-is-a-folder", "export --onnx {folder} -c {ckpt}", ["--onnx", "is a directory"]),
    # ablate
    ("ablate-unknown-variant", ABLATE + " --variants paper,bogus", ["unknown ablation variant 'bogus'"]),
    ("ablate-seeds-not-numbers", ABLATE + " --seeds abc", ["--seeds", "'abc'"]),
    ("ablate-out-is-a-file", "ablate -c demo --data {train_data} --out {afile}", ["ablation folder", "is a file"]),
    ("ablate-seed-2-to-the-32", ABLATE + " --seeds 0,4294967296", ["seed 4294967296", "[0, 4294967295]"]),
    # view: the folder, its options, and a folder that holds no output set of prfnet
    ("view-missing-folder", "view {dir}/nosuch", ["nosuch", "no such folder"]),
    ("view-a-file", "view {afile}", ["afile", "is a file"]),
    ("view-not-an-output-set", "view {folder}", ["folder"]),
    ("view-maps-without-static", "view {folder} --maps", ["--maps", "--static DIR"]),
    ("view-port-out-of-range", "view {folder} --port 65536", ["--port", "65536"]),
    ("view-static-with-port", "view {folder} --static {out} --port 8000", ["--static", "--port"]),
    ("view-max-pixels-bogus", "view {folder} --max-pixels lots", ["--max-pixels", "'lots'"]),
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
    _check_bad_run(capsys, corpus, tmp_path, monkeypatch, command, expected)


def _check_bad_run(capsys, corpus, tmp_path, monkeypatch, command, expected):
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    for name in LAUNCHER_VARIABLES:  # --num-nodes 2 must be refused, not wait for nodes a launcher announced
        monkeypatch.delenv(name, raising=False)
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


def _disk_full_while_exporting(monkeypatch):
    """The disk fills up while torch writes the ONNX graph: part of it is in the file when the write fails."""
    import errno

    pytest.importorskip("onnx")

    def full(graph, samples, f, **kwargs):
        f.write(b"\x08\x07partial graph")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.onnx, "export", full)


def _disk_full_while_publishing_heatmaps(monkeypatch):
    """The disk fills up after the first of the three heatmaps is staged."""
    import errno

    from PIL import Image

    real = Image.Image.save
    calls = []

    def full(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full)


#: rows whose failure is made by a patch: (id, command, patch(monkeypatch), fragments); checked as CASES are
PATCHED_CASES = [
    # 4. a full disk during export: one line, and neither the graph nor a temporary file is left in the (working)
    # folder
    (
        "export-disk-full",
        "export --onnx x.onnx -c {ckpt}",
        _disk_full_while_exporting,
        ["--onnx", "x.onnx", "No space left on device"],
    ),
    # 6. a full disk while the heatmaps are written: none of the three is published, nor the folder left
    (
        "heatmap-disk-full",
        f"compare {{ref}} {{a}} {{b}} {CK} --heatmap {{out}}",
        _disk_full_while_publishing_heatmaps,
        ["No space left on device"],
    ),
]


@pytest.mark.parametrize(
    ("command", "patch", "expected"), [pytest.param(c, f, e, id=i) for i, c, f, e in PATCHED_CASES]
)
def test_a_failure_while_writing_is_one_error_line_and_leaves_nothing(
    capsys, corpus, tmp_path, monkeypatch, command, patch, expected
):
    patch(monkeypatch)
    _check_bad_run(capsys, corpus, tmp_path, monkeypatch, command, expected)


# -- the user's files in an output folder: refused before any work, kept byte for byte -----------------------------

USERS_MOS = "ref,dist,score\n{ref},{a},4.5\n{ref},{b},3.0\n{ref},{wide},1.5\n{ref},{ref},5.0\n"
IN_THE_WAY = "is in the way: prfnet did not write it"
#: (id, the user's files in the output folder {own} (name -> text; None: a folder), earlier prfnet runs into {own},
#: the command, run in {own}, and the fragments of its one line)
OWNED_CASES = [
    # 1. the four cases of the issue: the input table, the demo's data/ and train/, rd's results/, clic's outputs
    (
        "eval-mos-input-is-the-users-scores-csv",
        {"scores.csv": USERS_MOS},
        [],
        MOS + " --csv {own}/scores.csv --metrics psnr -o {own}",
        ["scores.csv", IN_THE_WAY],
    ),
    (
        "demo-users-data-and-train",
        {"data/x.txt": "mine\n", "train/notes.txt": "mine\n"},
        [],
        DEMO + " --out {own}",
        ["data", IN_THE_WAY, "1 more: train"],
    ),
    (
        "rd-out-dot-users-results",
        {"results/mine.json": "[1, 2]\n"},
        [],
        "rd --csv {rd_csv} -m psnr -o .",
        ["results", IN_THE_WAY],
    ),
    (
        "rd-example-users-results",
        {"results/mine.json": "[1, 2]\n"},
        [],
        "rd --example -m psnr -o .",
        ["results", IN_THE_WAY],
    ),  # and no example/ written into the folder
    (
        "eval-clic-out-dot-users-scores-and-report",
        {"scores.csv": "mine\n", "report.html": "<p>mine</p>\n"},
        [],
        CLIC + " --metrics psnr -o .",
        ["report.html", IN_THE_WAY, "1 more: scores.csv"],
    ),
    # an input below a name this run writes (a heatmap of an earlier run, listed in its manifest) is never an output
    (
        "heatmap-input-is-an-earlier-heatmap",
        {},
        [f"compare {{ref}} {{a}} {{b}} {CK} --heatmap {{own}}"],
        f"compare {{own}}/heatmap_a.png {{a}} {{b}} {CK} --heatmap {{own}}",
        ["input", "heatmap_a.png", "lies where this run writes"],
    ),
    # 6. compare --heatmap DIR holding a picture of the user's
    (
        "heatmap-users-heatmap-a",
        {"heatmap_a.png": "mine\n"},
        [],
        f"compare {{ref}} {{a}} {{b}} {CK} --heatmap {{own}}",
        ["heatmap_a.png", IN_THE_WAY],
    ),
    # commands added since the tables were written
    ("rd-users-figure", {"rd_psnr.png": "mine\n"}, [], RD.replace("{out}", "{own}"), ["rd_psnr.png", IN_THE_WAY]),
    (
        "rd-users-text-file-as-default-store",
        {"scores.sqlite": "mine\n"},
        [],
        "rd --csv {rd_csv} -m psnr -o {own}",
        ["scores.sqlite", "not an SQLite database"],
    ),
    (
        "synth-users-images-folder",
        {"images/x.png": "mine\n"},
        [],
        "synth {own} --refs 1 --size 64",
        ["images", IN_THE_WAY],
    ),
    (
        "ablate-users-report",
        {"report.html": "<p>mine</p>\n"},
        [],
        ABLATE.replace("{out}", "{own}"),
        ["report.html", IN_THE_WAY],
    ),
    (
        "eval-bapps-users-results",
        {"results.json": "[1, 2]\n"},
        [],
        BAPPS + " --root {bapps} --metrics psnr -o {own}",
        ["results.json", IN_THE_WAY],
    ),
]


def _contents(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (hidden ones too): a file's bytes, ``None`` for a folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize(
    ("files", "earlier", "command", "expected"), [pytest.param(f, r, c, e, id=i) for i, f, r, c, e in OWNED_CASES]
)
def test_the_users_files_are_refused_before_work_and_kept(
    capsys, corpus, tmp_path, monkeypatch, files, earlier, command, expected
):
    monkeypatch.delenv("PRFNET_CHECKPOINT", raising=False)
    own = tmp_path / "own"
    own.mkdir()
    monkeypatch.chdir(own)
    argv = lambda text: [part.format(**corpus, own=own) for part in text.split()]  # noqa: E731
    for run in earlier:
        code, _, err = run_cli(capsys, argv(run))
        assert code == 0, err
    for name, text in files.items():
        if text is None:
            (own / name).mkdir(parents=True)
        else:
            _write(own / name, text.format(**corpus))
    before, corpus_before = _contents(own), _snapshot(Path(corpus["dir"]))
    line = assert_one_error_line(*run_cli(capsys, argv(command)))
    for fragment in expected:
        assert fragment in line
    assert _contents(own) == before  # byte for byte, and nothing new: no staging folder, journal or manifest
    assert not [p for p in own.rglob("*") if p.name.startswith(STAGING_PREFIX) or p.name == JOURNAL]
    assert _snapshot(Path(corpus["dir"])) == corpus_before


def test_the_two_tables_hold_at_least_60_cases():
    from tests.cli.test_bad_input import API_CASES, CLI_CASES

    assert len(CASES) + len(CLI_CASES) + len(API_CASES) >= 60
    assert len(CASES) + len(PATCHED_CASES) + len(OWNED_CASES) + len(CLI_CASES) + len(API_CASES) >= 107 + 30


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
