"""A SIMULATED CLIC-format 2AFC set from real codecs and real photos (``prfnet synth --kind codecs``).

**Simulated, not human judgments.** References are crops of the photos shipped with scikit-image
(:func:`prfnet.synth.distortions.photo_crops`), procedural images only when more references are
asked for than crops exist. Distorted images are real codec output (:mod:`prfnet.synth.codecs`: JPEG
4:2:0 and 4:4:4, WebP, JPEG 2000, AVIF, whichever this Pillow encodes), each searched to a few target
bits per pixel with :func:`~prfnet.synth.codecs.encode_at_bpp`; a target a codec cannot reach within
10% is left out. As in CLIC, A and B of a triplet are two different codecs at the same target bpp;
pairs whose PSNRs are close are preferred (that is where PSNR disagrees with the judge), with some
easy pairs kept. Votes are drawn from the psychometric function of the hidden judge
(:func:`prfnet.synth.judge.judge_quality`, :func:`prfnet.synth.judge.simulate_votes`): 3..15 per
triplet, often split (pair choice, votes and scoring: :mod:`prfnet.synth.codec_triplets`). See
``docs/synthetic.md``.

Labels follow CLIC: T = 0 means A is closer to the reference O, T = 1 means B is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..ioutil import atomic_write, write_csv, write_json
from . import codecs as cd
from . import distortions as sd
from . import judge as jd
from .codec_triplets import (
    CLOSE_DB,
    KINDS,
    VOTES_MAX,
    VOTES_MIN,
    Encoded,
    accuracies,
    choose_pairs,
    clic_rows,
    pair_kind,
)
from .common import (
    SetSummary,
    check_int,
    check_set_memory,
    cpus,
    images_folder,
    map_in_order,
    remove_stale_images,
    write_png,
)

MIN_SIZE = 256
DEFAULT_TARGETS_BPP = (0.5, 0.75, 1.0)  # all five codecs reach these at 256 px (JPEG 4:4:4's floor there: ~0.37)
BPP_TOLERANCE = 0.10  # encodes further than this from their target are not used
TRIPLETS_PER_REFERENCE = 12
MAX_WORKERS = 8  # default worker processes: the CPU count, at most this
#: peak bytes per pixel of one reference's work in one process (its encodes at every codec and target, PNG
#: writing, the judge's float64 buffers), beside the 3 bytes per pixel every reference holds: the peak-RSS increase
#: of synthesize_codec_clic(refs=1, workers=1) is 265 B/px at 512 px and 273 B/px at 1024 px (docs/performance.md,
#: "Memory"); the smaller, less those 3 bytes, is kept. Each worker process works on one reference.
WORKING_BYTES_PER_PIXEL = 262
FILES_HEADER = ("image", "reference", "codec", "quality", "target_bpp", "bpp", "psnr", "judge_distance")


@dataclass(frozen=True)
class CodecSynthSummary(SetSummary):
    """What :func:`synthesize_codec_clic` wrote. ``kinds`` counts triplets (unordered) per kind;
    ``judge_accuracy``, ``noise_ceiling`` and ``psnr_accuracy`` are official-scorer accuracies over all
    ``n_keys`` keys (details per kind in ``ceiling.json``)."""

    out_dir: Path
    images_dir: Path
    validation_csv: Path
    oracle_csv: Path
    kinds_csv: Path
    files_csv: Path
    ceiling_json: Path
    readme: Path
    kind: str
    references: int
    photo_references: int
    procedural_references: int
    codecs: list[str]
    targets_bpp: list[float]
    images: int
    distorted: int
    unreached: int
    triplets: int
    validation_rows: int
    oracle_rows: int
    n_keys: int
    kinds: dict[str, int]
    judge_accuracy: float
    noise_ceiling: float
    psnr_accuracy: float
    size: int
    seed: int

    def line(self) -> str:
        """One-line human summary."""
        return self._opening() + (
            f"{self.images} images ({len(self.codecs)} codecs x {len(self.targets_bpp)} bpp targets, "
            f"{self.unreached} unreached left out), {self.oracle_rows} simulated vote rows; "
            f"on {self.n_keys} keys: noise ceiling {self.noise_ceiling:.3f}, hidden judge {self.judge_accuracy:.3f}, "
            f"PSNR {self.psnr_accuracy:.3f} -> {self.out_dir}"
        )


# ------------------------------------------------------------------------------------------- helpers


def _target_label(target: float) -> str:
    return f"{target:g}"


def _encode_reference(job: tuple[Path, int, np.ndarray, tuple[str, ...], tuple[float, ...]]) -> list[Encoded]:
    """Write ``ref_NNN.png`` and every (codec, target) encode of it that reaches its target, with their PSNR and
    judge distance (worker function: the PNGs are written here, so that writing runs in parallel too)."""
    images_dir, index, img, codec_names, targets = job
    ref = f"ref_{index:03d}"
    write_png(images_dir / f"{ref}.png", img)
    out = []
    for codec in codec_names:
        for target in targets:
            match = cd.encode_at_bpp(img, codec, target, tol=BPP_TOLERANCE)
            if not match.reached:
                out.append(Encoded(codec, target, match.quality, match.bpp, math.nan, math.nan, None, match.reason))
                continue
            name = f"{ref}_{codec}_{_target_label(target)}bpp.png"
            write_png(images_dir / name, match.image)
            psnr = round(sd.psnr(img, match.image), 4)
            distance = round(jd.judge_quality(img, match.image), 6)
            out.append(Encoded(codec, target, match.quality, match.bpp, psnr, distance, name))
    return out


def _readme(refs: int, size: int, seed: int, codecs: list[str], targets: tuple[float, ...], counts, unreached) -> str:
    missing = "".join(f"\n  {ref} {e.codec} at {_target_label(e.target_bpp)} bpp: {e.reason}" for ref, e in unreached)
    return f"""Simulated CLIC-format 2AFC set written by `prfnet synth --kind codecs`
(refs={refs}, size={size}, seed={seed}, codecs={",".join(codecs)}, target bpp={",".join(map(_target_label, targets))}).

THIS IS SIMULATED DATA, NOT HUMAN JUDGMENTS. The images are real codec output on real photos, but every
"vote" is a random draw from a psychometric function of a hand-weighted artifact measure (the hidden
judge, prfnet.synth.judge), not a person's answer. Accuracy on this set says nothing about agreement
with human observers: use it to test that a pipeline measures differences between metrics, with
intervals and ceilings, never to report a metric's quality.

images/          {size}x{size} RGB PNGs: ref_NNN.png (references: crops of scikit-image's sample photos, or
                 procedural images when more references are asked for than crops exist) and
                 ref_NNN_<codec>_<target>bpp.png (the decoded codec output at a target bits per pixel)
files.csv        one row per distorted image (with header): image, reference, codec, quality (the codec's
                 rate parameter; compression ratio for jpeg2000), target_bpp, bpp (8 * file bytes /
                 pixels, within 10% of the target), psnr (dB, RGB), judge_distance (hidden judge, lower = closer)
validation.csv   O,A,B rows (headerless), one per key of oracle.csv
oracle.csv       O,A,B,T rows (headerless), one per simulated vote, shuffled; T=0: A closer to O, T=1: B closer.
                 {VOTES_MIN}..{VOTES_MAX} votes per triplet, drawn from the hidden judge's psychometric function
                 (often split); for about a third of the triplets some votes are written as O,B,A,1-T.
kinds.csv        O,A,B,kind rows for every key: psnr_close (|PSNR(A) - PSNR(B)| < {CLOSE_DB:g} dB,
                 {counts["psnr_close"]} triplets) or psnr_apart ({counts["psnr_apart"]} triplets)
ceiling.json     official-scorer accuracy (last vote of each O,A,B key) of the hidden judge and of PSNR, and the
                 noise ceiling of any consistent predictor (prfnet.stats.ceilings), overall and per kind

A and B of a triplet are two different codecs encoded at the same target bpp.
Targets a codec could not reach within 10% were left out: {len(unreached)}{missing}
"""


# ------------------------------------------------------------------------------------------- entry point


def check_memory_for(refs: int, size: int, workers: int | None = None, command: str | None = None) -> None:
    """:class:`~prfnet.memory.NotEnoughMemory` unless a codec set of ``refs`` references of ``size`` px, made by
    ``workers`` processes (default: the usable CPUs, at most :data:`MAX_WORKERS`), fits in the memory available here
    (:func:`~prfnet.synth.common.check_set_memory`); ``command``: the command line to name (the CLI)."""
    workers = min(MAX_WORKERS, cpus()) if workers is None else workers
    what = command or f"synthesize_codec_clic(refs={refs}, size={size}, workers={workers})"
    concurrent = min(workers, refs)
    check_set_memory(what, size, refs, WORKING_BYTES_PER_PIXEL, concurrent, "--size" if command else "size")


def synthesize_codec_clic(
    out_dir: str | Path,
    refs: int = 16,
    size: int = 256,
    seed: int = 0,
    *,
    targets_bpp: Sequence[float] = DEFAULT_TARGETS_BPP,
    codecs: Sequence[str] | None = None,
    triplets_per_ref: int = TRIPLETS_PER_REFERENCE,
    workers: int | None = None,
    slope: float = jd.DEFAULT_SLOPE,
    lapse: float = jd.DEFAULT_LAPSE,
    progress: Callable[[int, int], None] | None = None,
) -> CodecSynthSummary:
    """Write the simulated codec set to ``out_dir`` (see the module docstring); the same arguments give the same bytes.

    ``refs`` >= 1 references of ``size`` x ``size`` (>= 256) pixels; ``seed`` >= 0; ``targets_bpp``: target
    bits per pixel (> 0); ``codecs``: names from :data:`prfnet.synth.codecs.CODECS`, at least two (default: those
    of :data:`~prfnet.synth.codecs.DEFAULT_CODECS` usable here; jpegxl only when named);
    ``triplets_per_ref`` >= 1 (fewer when a reference has fewer usable pairs);
    ``slope``, ``lapse``: the psychometric function of the votes (:func:`prfnet.synth.judge.psychometric`);
    ``workers``: processes encoding references in parallel (default: the usable CPUs, at most 8; 1: none;
    forked, Linux only; the result does not depend on it). Existing files of ours in ``out_dir`` are
    overwritten and stale ``images/ref_*.png`` removed. ``progress(done, total)`` is called after each reference.
    Raises ConfigError for bad arguments (CodecUnavailable for a codec not usable here), DataError if
    ``out_dir`` is not a writable folder, :class:`~prfnet.memory.NotEnoughMemory` before anything is made if the
    set cannot fit in memory here.
    """
    refs = check_int("synthesize_codec_clic", "refs", refs, 1)
    size = check_int("synthesize_codec_clic", "size", size, MIN_SIZE)
    seed = check_int("synthesize_codec_clic", "seed", seed, 0)
    triplets_per_ref = check_int("synthesize_codec_clic", "triplets_per_ref", triplets_per_ref, 1)
    workers = min(MAX_WORKERS, cpus()) if workers is None else check_int("synthesize_codec_clic", "workers", workers, 1)
    targets = (targets_bpp,) if isinstance(targets_bpp, (Real, str)) else tuple(targets_bpp)
    if not targets or not all(isinstance(t, Real) and not isinstance(t, bool) and 0 < t < math.inf for t in targets):
        raise ConfigError(f"synthesize_codec_clic: targets_bpp must be positive numbers, got {targets_bpp!r}")
    targets = tuple(float(t) for t in targets)
    if not (isinstance(slope, Real) and 0 < slope < math.inf and isinstance(lapse, Real) and 0 <= lapse < 1):
        raise ConfigError(f"synthesize_codec_clic: need slope > 0 and 0 <= lapse < 1, got {slope!r}, {lapse!r}")
    slope, lapse = float(slope), float(lapse)
    if len({_target_label(t) for t in targets}) != len(targets):
        raise ConfigError(f"synthesize_codec_clic: targets_bpp must be distinct, got {targets_bpp!r}")
    codec_names = cd.default_codecs() if codecs is None else [cd.get_codec(c).name for c in codecs]
    if len(set(codec_names)) < 2:
        raise ConfigError(
            f"synthesize_codec_clic: needs at least two different codecs, got {codec_names} "
            f"(status here: {cd.codec_status()})"
        )
    codec_names = list(dict.fromkeys(codec_names))
    check_memory_for(refs, size, workers)

    out_dir, images_dir = images_folder(out_dir)

    references = sd.reference_images(refs, size, seed)
    photos = sum(origin != "procedural" for origin, _ in references)
    jobs = [(images_dir, index, img, tuple(codec_names), targets) for index, (_, img) in enumerate(references)]
    try:
        encoded = map_in_order(_encode_reference, jobs, workers, progress)
    except OSError as exc:
        raise DataError(f"{images_dir}: cannot write images ({exc.strerror or exc})") from None

    triplets: list[tuple[str, str, str, str]] = []  # (O, X, Y, kind), X/Y in encode order
    distance: dict[tuple[str, str], float] = {}
    psnr: dict[tuple[str, str], float] = {}
    files_rows, unreached = [], []
    written = {f"ref_{index:03d}.png" for index in range(refs)}
    for index, encodes in enumerate(encoded):
        o = f"ref_{index:03d}.png"
        for e in encodes:
            if e.name is None:
                unreached.append((o.removesuffix(".png"), e))
                continue
            written.add(e.name)
            distance[(o, e.name)], psnr[(o, e.name)] = e.judge_distance, e.psnr
            quality = repr(float(e.quality)) if isinstance(e.quality, float) else str(e.quality)
            files_rows.append(
                (e.name, o, e.codec, quality, _target_label(e.target_bpp), repr(e.bpp), f"{e.psnr:.4f}",
                 f"{e.judge_distance:.6f}")
            )  # fmt: skip
        rng = np.random.default_rng([seed, 6, index])
        for x, y in choose_pairs(encodes, triplets_per_ref, rng):
            triplets.append((o, x.name, y.name, pair_kind(x, y)))
    remove_stale_images(images_dir, written)
    if not triplets:
        raise DataError(f"no usable codec pairs: every reference had fewer than two codecs at a target ({unreached})")

    validation, kinds_rows, oracle = clic_rows(triplets, distance, seed, slope, lapse)
    kind_of = {tuple(r[:3]): r[3] for r in kinds_rows}
    counts = Counter(t[3] for t in triplets)
    counts = {kind: counts.get(kind, 0) for kind in KINDS}
    overall = accuracies(oracle, distance, psnr, slope, lapse)
    by_kind = {}
    for kind in KINDS:
        rows = [r for r in oracle if kind_of[r[:3]] == kind]
        if rows:
            by_kind[kind] = {"triplets": counts[kind], **accuracies(rows, distance, psnr, slope, lapse)}
    ceiling = {
        "simulated": True,
        "note": "SIMULATED votes from a hidden judge (prfnet.synth.judge), NOT human judgments. Accuracies are "
        "the official CLIC scorer's: the last vote of each O,A,B key decides it; matches / keys.",
        "parameters": {
            "refs": refs,
            "size": size,
            "seed": seed,
            "codecs": codec_names,
            "targets_bpp": list(targets),
            "triplets_per_ref": triplets_per_ref,
            "votes_per_triplet": [VOTES_MIN, VOTES_MAX],
            "psychometric": {"slope": slope, "lapse": lapse},
            "psnr_close_db": CLOSE_DB,
        },
        "triplets": len(triplets),
        **overall,
        "by_kind": by_kind,
    }

    paths = {
        n: out_dir / f
        for n, f in (
            ("val", "validation.csv"),
            ("oracle", "oracle.csv"),
            ("kinds", "kinds.csv"),
            ("files", "files.csv"),
            ("ceiling", "ceiling.json"),
            ("readme", "README.txt"),
        )
    }
    try:
        write_csv(paths["val"], validation)
        write_csv(paths["oracle"], oracle)
        write_csv(paths["kinds"], kinds_rows)
        write_csv(paths["files"], files_rows, FILES_HEADER)
        write_json(paths["ceiling"], ceiling)
        with atomic_write(paths["readme"], "w", encoding="utf-8") as f:
            f.write(_readme(refs, size, seed, codec_names, targets, counts, unreached))
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot write ({exc.strerror or exc})") from None
    return CodecSynthSummary(
        out_dir=out_dir,
        images_dir=images_dir,
        validation_csv=paths["val"],
        oracle_csv=paths["oracle"],
        kinds_csv=paths["kinds"],
        files_csv=paths["files"],
        ceiling_json=paths["ceiling"],
        readme=paths["readme"],
        kind="codecs",
        references=refs,
        photo_references=photos,
        procedural_references=refs - photos,
        codecs=codec_names,
        targets_bpp=list(targets),
        images=len(written),
        distorted=len(files_rows),
        unreached=len(unreached),
        triplets=len(triplets),
        validation_rows=len(validation),
        oracle_rows=len(oracle),
        n_keys=overall["n_keys"],
        kinds=counts,
        judge_accuracy=overall["judge"]["accuracy"],
        noise_ceiling=overall["noise_ceiling"]["ceiling"],
        psnr_accuracy=overall["psnr"]["accuracy"],
        size=size,
        seed=seed,
    )
