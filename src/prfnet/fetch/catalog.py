"""The data sets ``prfnet fetch`` knows: where each file comes from, its published checksum (if any), sizes
(published or estimated, and said which), terms, and the commands that use the result.

Sources: the CLIC 2021 devkit README (github.com/fab-jul/clic2021-devkit, commit 4e0ab07, April 2022) for every
CLIC URL and MD5; lpips' ``scripts/download_dataset.sh`` (github.com/richzhang/PerceptualSimilarity) for the BAPPS
URLs and its README for their sizes; a newer mirror of BAPPS for the SHA-256 of ``twoafc_val.tar.gz``.
``$PRFNET_FETCH_MIRROR`` (``http://host:port/``) replaces the scheme and host of every URL, keeping the path: for
mirrors (and the tests' local server).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field

from ..errors import ConfigError

MIRROR_ENV = "PRFNET_FETCH_MIRROR"
GB = 1_000_000_000
MB = 1_000_000
HEX = "0123456789abcdef"

CLIC_TERMS = "CLIC challenge data, see compression.cc terms; for research"
#: the lpips repository's LICENSE is the BSD 2-clause text, "Copyright (c) 2018, Richard Zhang, Phillip Isola,
#: Alexei A. Efros, Eli Shechtman, Oliver Wang"; it does not name the data set separately
BAPPS_TERMS = "BAPPS (Zhang et al. 2018), BSD-2-Clause per the lpips repository"
CLIC_SOURCE = "CLIC 2021 devkit README (github.com/fab-jul/clic2021-devkit @ 4e0ab07)"
BAPPS_SOURCE = "lpips scripts/download_dataset.sh (github.com/richzhang/PerceptualSimilarity)"


@dataclass(frozen=True)
class DataFile:
    """One file to download. ``size``: bytes, ``size_known`` says whether published (True) or estimated."""

    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    size_known: bool = False

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def published_checksum(self) -> bool:
        return bool(self.md5 or self.sha256)


@dataclass(frozen=True)
class DataSet:
    """A data set of the catalog and how it is laid out under ``DIR/<folder>``.

    ``kind``: ``clic`` (CSV + images: ``images/``, ``triplets`` file name, ``oracle.csv``), ``bapps-2afc`` (subsets
    with ``ref/ p0/ p1/ judge/`` go to ``2afc/<split>/``) or ``bapps-jnd`` (subsets with ``p0/ p1/ same/`` go to
    ``jnd/<split>/``). ``unpacked``: bytes on disk after unpacking (estimated unless ``unpacked_known``).
    """

    name: str
    purpose: str
    kind: str
    folder: str
    files: tuple[DataFile, ...]
    unpacked: int
    unpacked_known: bool
    size_note: str
    source: str
    terms: str
    split: str = ""
    triplets: str = ""  # clic: the name the O,A,B file gets
    oracle: bool = False  # clic: an O,A,B,T oracle is part of the set
    next: tuple[str, ...] = ()  # commands to run next; {dir} = the data set's folder
    notes: tuple[str, ...] = field(default=())

    @property
    def download_size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def sizes_known(self) -> bool:
        return all(f.size_known for f in self.files)


def _crops(base: str, suffix: str, md5s: str, size: int) -> tuple[DataFile, ...]:
    return tuple(DataFile(f"{base}/{c}.{suffix}", md5=m, size=size) for c, m in zip(HEX, md5s.split(), strict=True))


CLIC21_TEST_MD5 = """1051e8adc4763c7f43a8bdde4007b08a 015822694e53692cf6c9c68f6186ee1a 76bf1c66114f882d040b3bc1ef07bb9a
5dcd38f56982bc231156f63c2c7de97f 09c6c620157fdf08e23c0d905af4536d f6ba7d89dd69de00d71d86a8f02a9538
faf4e522548b0e6370bfc868e2e404c8 8593b89231c0418a69f89c6187e0202a 9d369a0b10ee923815b49b3c27726eee
30876781abcd554939125490f8dc28a4 5164040b4acd707575084968b0f94808 34bc20563534730265dc26de12a29764
a3e8238bc5300d969e3b7421b0306bf6 503dca354a62b9edd477c9b35d3afdf7 1d5da08c1eb8f26463fd7c80e0be920b
3425385b344c5daf4bd7a3e526ff07a7"""
CLIC22_TEST_MD5 = """b6eddbed2e88bfe20c101862a48e9f6c ce7a5e67fe069860dee965a015380eed cd8a305287bcf9b953f57bf982064be8
9de2367d274b38d04bf846ed5257d7c0 95eadd87afbf5034dc86010b977d29f5 55af0df91e6bb8fe7f3e70ed4d37b497
5e45727275e6d78ab6ec3ac28bbf62ed 96db3240eabfeeb90f007564a5a68dcd bc7efed7f27d4d0649b6d4d6604dd74b
e081e2eece15b352d1b90c6b5d2aa6dd 69432ac41277b9dc30a02af78064c47e b404bcaf3fd1cdda3025cc9a5881cc39
dd8d331c795913ec6ed940cb6c8e002c 380d2c38410dd5152ec6f3940c453ed6 1e15862bb4fb4d93fe647d32b3a2f25f
271edee5431a82c6831cb20b0a46c921"""

CLIC21 = "https://storage.googleapis.com/clic2021_public/perceptual"
CLIC22 = "https://storage.googleapis.com/clic2022_public/test_sets/perceptual"
BAPPS = "https://people.eecs.berkeley.edu/~rich.zhang/projects/2018_perceptual/dataset"
#: a guess, for the free-space check only: no size or image count is published for the test crops (about 700
#: crops of ~1 MB per archive); `prfnet fetch NAME --dry-run` asks the server for the real sizes
CROPS_GUESS = 700 * MB

CATALOG: dict[str, DataSet] = {
    s.name: s
    for s in (
        DataSet(
            name="clic2021-valid",
            purpose="CLIC 2021 perceptual validation set with its oracle: evaluation (or a small training set)",
            kind="clic",
            folder="clic2021-valid",
            files=(DataFile(f"{CLIC21}/clic_2021_perceptual_valid.zip", size=2730 * MB),),
            unpacked=2730 * MB,
            unpacked_known=False,
            size_note="estimated from 2730 PNGs of 768x768 at ~1 MB each; no size published",
            source=CLIC_SOURCE,
            terms=CLIC_TERMS,
            triplets="validation.csv",
            oracle=True,
            next=(
                "prfnet eval clic --csv {dir}/validation.csv --root {dir}/images --oracle {dir}/oracle.csv "
                "--metrics psnr,ssim",
                "prfnet train --config clic2022 --data {dir} --out runs/clic2021-valid",
            ),
        ),
        DataSet(
            name="clic2021-test",
            purpose="CLIC 2021 perceptual test set with its oracle (released Jan 20 2022): the usual training set",
            kind="clic",
            folder="clic2021-test",
            files=(
                DataFile(f"{CLIC21}/test/clic_2021_test.zip", size=1 * MB),
                *_crops(f"{CLIC21}/test", "tar", CLIC21_TEST_MD5, CROPS_GUESS),
                DataFile(
                    f"{CLIC21}/test/clic_2021_perceptual_oracle.zip", md5="c8f73bb863dfed677fe897dade35c89a", size=MB
                ),
            ),
            unpacked=16 * CROPS_GUESS,
            unpacked_known=False,
            size_note="estimated: a guess of ~700 crops of ~1 MB per archive; no size or image count published",
            source=CLIC_SOURCE,
            terms=CLIC_TERMS,
            triplets="test.csv",
            oracle=True,
            next=(
                "prfnet train --config clic2022 --data {dir} --out runs/clic2022",
                "prfnet eval clic --csv {dir}/test.csv --root {dir}/images --oracle {dir}/oracle.csv "
                "--metrics psnr,ssim",
            ),
            notes=("the CSV archive has no published checksum: its SHA-256 is recorded on first download",),
        ),
        DataSet(
            name="clic2022-test",
            purpose="CLIC 2022 perceptual test set (no oracle published): the set a CLIC submission is made on",
            kind="clic",
            folder="clic2022-test",
            files=(
                DataFile(f"{CLIC22}/clic2022_test.csv", md5="b3812cd346f449a148efd41a4cb6ce58", size=MB),
                *_crops(CLIC22, "zip", CLIC22_TEST_MD5, CROPS_GUESS),
            ),
            unpacked=16 * CROPS_GUESS,
            unpacked_known=False,
            size_note="estimated: a guess of ~700 crops of ~1 MB per archive; no size or image count published",
            source="CLIC devkit README, CLIC 2022 section (github.com/fab-jul/clic2021-devkit @ 4e0ab07)",
            terms=CLIC_TERMS,
            triplets="test.csv",
            oracle=False,
            next=("prfnet eval clic --csv {dir}/test.csv --root {dir}/images --metrics psnr -c prfnet.safetensors",),
        ),
        DataSet(
            name="bapps-2afc-train",
            purpose="BAPPS 2AFC training split (LPIPS paper): training with --config bapps",
            kind="bapps-2afc",
            folder="bapps",
            split="train",
            files=(DataFile(f"{BAPPS}/twoafc_train.tar.gz", size=int(5.3 * GB), size_known=True),),
            unpacked=int(5.3 * GB),
            unpacked_known=True,
            size_note="published: 5.3 GB (lpips README); the archive is taken to be as large",
            source=BAPPS_SOURCE,
            terms=BAPPS_TERMS,
            next=("prfnet train --config bapps --data {dir} --out runs/bapps",),
            notes=("--config bapps validates on 2afc/val: fetch bapps-2afc-val into the same DIR",),
        ),
        DataSet(
            name="bapps-2afc-val",
            purpose="BAPPS 2AFC validation split: evaluation (prfnet eval bapps) and --config bapps validation",
            kind="bapps-2afc",
            folder="bapps",
            split="val",
            files=(
                DataFile(
                    f"{BAPPS}/twoafc_val.tar.gz",
                    sha256="41486671b06de923e7ba277c4797d4d9d86d609863ba35ecdb576133f8b9d859",
                    size=int(1.1 * GB),
                    size_known=True,
                ),
            ),
            unpacked=int(1.1 * GB),
            unpacked_known=True,
            size_note="published: 1.1 GB (lpips README); the archive is taken to be as large",
            source=BAPPS_SOURCE + "; SHA-256 from a newer mirror of the same file",
            terms=BAPPS_TERMS,
            next=("prfnet eval bapps --root {dir}/2afc/val --metrics psnr,ssim",),
        ),
        DataSet(
            name="bapps-jnd",
            purpose="BAPPS JND validation split (same/different judgements): prfnet eval jnd",
            kind="bapps-jnd",
            folder="bapps",
            split="val",
            files=(DataFile(f"{BAPPS}/jnd.tar.gz", size=int(0.2 * GB), size_known=True),),
            unpacked=int(0.2 * GB),
            unpacked_known=True,
            size_note="published: 0.2 GB (lpips README); the archive is taken to be as large",
            source=BAPPS_SOURCE,
            terms=BAPPS_TERMS,
            next=("prfnet eval jnd --root {dir}/jnd/val --metrics psnr,ssim",),
        ),
    )
}


def dataset(name: str) -> DataSet:
    """The catalog entry ``name``; :class:`ConfigError` (one line, the known names) for an unknown one."""
    if name not in CATALOG:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(CATALOG)} (prfnet fetch --list)")
    return CATALOG[name]


def resolve_url(url: str) -> str:
    """``url`` with its scheme and host replaced by ``$PRFNET_FETCH_MIRROR`` when set (the path kept)."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"${MIRROR_ENV}={mirror!r}: expected http(s)://host[:port]/[prefix]")
    return mirror.rstrip("/") + urllib.parse.urlsplit(url).path
