"""A synthetic data set in the CLIC perceptual-track format, with labels known by construction.

This is a demonstration / smoke-test set, NOT human judgments: accuracy on it says nothing about
agreement with human observers. Two kinds of triplet (see ``docs/synthetic.md``):

* ``within_family``: two levels of one distortion family far apart (JPEG q 60 vs 10, ...); the
  milder level is closer to the reference.
* ``matched_mse``: a structural distortion (JPEG-like blocking, blur, noise) against a barely
  visible one (global luminance offset, small contrast change, sub-pixel shift) with the same MSE
  within 1% (measured on the 8-bit images written); the barely visible one is closer. PSNR cannot
  tell them apart (a tie up to < 0.05 dB, with a random sign).

Labels follow CLIC: T = 0 means A is closer to the reference O, T = 1 means B is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..ioutil import atomic_write, write_csv
from . import distortions as sd
from .common import (
    SetSummary,
    check_int,
    check_set_memory,
    images_folder,
    orientation_flags,
    remove_stale_images,
    write_png,
)

KINDS = ("within_family", "matched_mse")
MIN_SIZE = 64
#: peak bytes per pixel of one reference's work (float64 buffers, ~20 distorted images, PNG encoding), beside the
#: 3 bytes per pixel every reference holds: the peak-RSS increase of synthesize_clic(refs=1) is 266, 229 and 211 B/px
#: at 512, 1024 and 2048 px (docs/performance.md, "Memory"); the largest size's value, less those 3 bytes, is kept
WORKING_BYTES_PER_PIXEL = 208

#: (family, (milder level, stronger level) options). Levels are far apart so that the order is unambiguous.
FAMILY_LEVELS: dict[str, tuple[tuple[float, float], ...]] = {
    "jpeg": ((60, 10), (70, 15), (50, 8)),  # quality, higher = milder
    "webp": ((60, 5), (70, 10), (50, 3)),  # quality, higher = milder
    "blur": ((0.6, 2.5), (0.8, 3.0), (1.0, 4.0)),  # Gaussian sigma in pixels
    "noise": ((0.015, 0.08), (0.02, 0.1), (0.03, 0.12)),  # Gaussian sigma on the [0, 1] scale
    "resample": ((2, 6), (2, 8), (3, 8)),  # bicubic down-sampling factor
}
MIN_FAMILY_MSE_RATIO = 2.0  # sanity check: the stronger level has at least twice the MSE of the milder one
STRUCTURAL = ("blocking", "blur", "noise")
BARELY_VISIBLE = ("offset", "contrast", "shift")
MATCHED_PER_REFERENCE = 5
TARGET_PSNR_DB = (28.0, 34.0)  # matched pairs are drawn at a PSNR in this range
ACCEPTED_PSNR_DB = (26.0, 42.0)  # ... and dropped if the barely visible distortion lands outside this one
MAX_CONTRAST_CHANGE = 0.2
MAX_SHIFT_PX = 1.0
MSE_MATCH_TOLERANCE = 0.005  # relative; the promise in the docs is 1%
SWAPPED_FRACTION = 1 / 3  # triplets that get one of their vote rows written as (O, B, A, 1 - T)


Pair = tuple[str, np.ndarray, str, np.ndarray]  # (better name, better image, worse name, worse image)


@dataclass(frozen=True)
class SynthSummary(SetSummary):
    """What :func:`synthesize_clic` wrote. ``kinds`` counts triplets (unordered) per kind."""

    out_dir: Path
    images_dir: Path
    validation_csv: Path
    oracle_csv: Path
    kinds_csv: Path
    readme: Path
    references: int
    photo_references: int
    procedural_references: int
    images: int
    triplets: int
    validation_rows: int
    oracle_rows: int
    kinds: dict[str, int]
    size: int
    seed: int
    votes: int

    def line(self) -> str:
        """One-line human summary."""
        return self._opening() + f"{self.images} images, {self.oracle_rows} oracle rows -> {self.out_dir}"


def _family_image(family: str, img: np.ndarray, level: float, field: np.ndarray) -> tuple[str, np.ndarray]:
    if family == "jpeg":
        return f"jpeg_q{int(level)}", sd.jpeg(img, int(level))
    if family == "webp":
        return f"webp_q{int(level)}", sd.webp(img, int(level))
    if family == "blur":
        return f"blur_s{level:.1f}", sd.gaussian_blur(img, level)
    if family == "noise":
        return f"noise_s{level:.3f}", sd.gaussian_noise(img, level, field)
    return f"resample_x{int(level)}", sd.resample(img, level)


def _within_family(ref: str, img: np.ndarray, rng: np.random.Generator) -> list[Pair]:
    """One (milder, stronger) pair per family; a pair failing the MSE-ratio sanity check is replaced."""
    field = rng.standard_normal(img.shape).astype(np.float32)
    pairs = []
    for family, options in FAMILY_LEVELS.items():
        for option in rng.permutation(len(options)):
            mild_level, strong_level = options[option]
            mild_name, mild = _family_image(family, img, mild_level, field)
            strong_name, strong = _family_image(family, img, strong_level, field)
            if sd.mse(img, strong) >= MIN_FAMILY_MSE_RATIO * max(sd.mse(img, mild), 1e-12):
                pairs.append((f"{ref}_{mild_name}", mild, f"{ref}_{strong_name}", strong))
                break
    return pairs


def _barely_visible(kind: str, img: np.ndarray, target: float) -> np.ndarray:
    """The barely visible distortion of ``kind`` with an MSE near ``target`` (closed-form strength)."""
    x = sd.to_float(img)
    if kind == "offset":
        levels = max(1, round(255.0 * np.sqrt(target)))
        return sd.luminance_offset(img, -levels if sd.luminance(img).mean() > 0.5 else levels)
    if kind == "contrast":
        spread = float(np.mean((x - sd.luminance(img).mean()) ** 2))
        return sd.contrast_change(img, min(MAX_CONTRAST_CHANGE, float(np.sqrt(target / max(spread, 1e-12)))))
    diagonal = float(np.mean((x[1:, 1:] - x[:-1, :-1]) ** 2))  # MSE of a (1, 1) px shift, roughly
    return sd.subpixel_shift(img, min(MAX_SHIFT_PX, float(np.sqrt(target / max(diagonal, 1e-12)))))


def _structural_maker(kind: str, img: np.ndarray, rng: np.random.Generator):
    """(make(strength) -> uint8 image, strength range) for a structural distortion; MSE grows with strength."""
    if kind == "blocking":
        means = sd.block_means(img)
        return (lambda a: sd.blocking(img, a, means)), (0.0, 1.0)
    if kind == "blur":
        return (lambda s: sd.gaussian_blur(img, s)), (0.0, 8.0)
    field = rng.standard_normal(img.shape).astype(np.float32)
    return (lambda s: sd.gaussian_noise(img, s, field)), (0.0, 0.5)


def _matched_mse(ref: str, img: np.ndarray, rng: np.random.Generator) -> list[Pair]:
    """Up to MATCHED_PER_REFERENCE (barely visible, structural) pairs with MSEs equal within 1%."""
    combos = [(s, v) for s in STRUCTURAL for v in BARELY_VISIBLE]
    pairs = []
    for combo in rng.permutation(len(combos)):
        structural, visible_kind = combos[combo]
        target = 10.0 ** (-rng.uniform(*TARGET_PSNR_DB) / 10.0)
        prefer_above = bool(rng.integers(2))
        visible = _barely_visible(visible_kind, img, target)
        if not ACCEPTED_PSNR_DB[0] <= sd.psnr(img, visible) <= ACCEPTED_PSNR_DB[1]:
            continue
        make, (low, high) = _structural_maker(structural, img, rng)
        found = sd.match_mse(img, make, sd.mse(img, visible), low, high, MSE_MATCH_TOLERANCE, prefer_above)
        if found is None:
            continue
        j = len(pairs)
        pairs.append((f"{ref}_mm{j}_{visible_kind}", visible, f"{ref}_mm{j}_{structural}", found.image))
        if len(pairs) == MATCHED_PER_REFERENCE:
            break
    return pairs


def _readme(refs: int, size: int, seed: int, votes: int, counts: dict[str, int]) -> str:
    return f"""Synthetic CLIC-format 2AFC set written by `prfnet synth`
(refs={refs}, size={size}, seed={seed}, votes={votes}).

THIS IS A DEMONSTRATION SET, NOT HUMAN JUDGMENTS. Labels are known by construction; accuracy on
this set says nothing about agreement with human observers. Use it to smoke-test training and
evaluation pipelines, never to report a metric's quality.

images/          {size}x{size} RGB PNGs: ref_NNN.png (references) and ref_NNN_<distortion>.png
validation.csv   O,A,B rows (headerless), one per key of oracle.csv
oracle.csv       O,A,B,T rows, one per simulated vote; T=0: A closer to O, T=1: B closer.
                 {votes} vote row(s) per triplet, all agreeing; some written with A and B swapped and T flipped.
kinds.csv        O,A,B,kind rows; kind is within_family ({counts["within_family"]} triplets) or
                 matched_mse ({counts["matched_mse"]} triplets)

within_family: two levels of one distortion (JPEG/WebP quality, Gaussian blur or noise sigma,
  down/up-sampling factor) far apart; the milder level is the closer one.
matched_mse: a structural distortion (JPEG-like blocking, blur, noise) against a barely visible one
  (luminance offset, contrast change, sub-pixel shift) with the same MSE within 1%; the barely
  visible one is the closer one. PSNR is at chance on these by design.
"""


def _clic_rows(triplets: list[tuple[str, str, str, str]], votes: int, seed: int):
    """(O, better, worse, kind) -> validation rows (O,A,B), kinds rows (O,A,B,kind), shuffled oracle rows (O,A,B,T).

    A/B orientation balanced per kind; with votes >= 2 a SWAPPED_FRACTION of triplets get one vote
    row as (O, B, A, 1 - T), and validation/kinds then list both orientations.
    """
    rng = np.random.default_rng([seed, 4])
    a_better, swapped = orientation_flags([t[3] for t in triplets], KINDS, SWAPPED_FRACTION, rng, swaps=votes >= 2)

    validation, kinds_rows, oracle = [], [], []
    for i, (o, better, worse, kind) in enumerate(triplets):
        a, b, t = (better, worse, 0) if a_better[i] else (worse, better, 1)
        keys = [(o, a, b, t)] + ([(o, b, a, 1 - t)] if swapped[i] else [])
        validation += [k[:3] for k in keys]
        kinds_rows += [(*k[:3], kind) for k in keys]
        swap_at = int(rng.integers(votes))
        oracle += [keys[1] if swapped[i] and v == swap_at else keys[0] for v in range(votes)]
    return validation, kinds_rows, [oracle[i] for i in rng.permutation(len(oracle))]


def check_memory_for(refs: int, size: int, command: str | None = None) -> None:
    """:class:`~prfnet.memory.NotEnoughMemory` unless a set of ``refs`` references of ``size`` px fits in the memory
    available here (:func:`~prfnet.synth.common.check_set_memory`); ``command``: the command line to name (the CLI),
    else the function call is named."""
    what = command or f"synthesize_clic(refs={refs}, size={size})"
    check_set_memory(what, size, refs, WORKING_BYTES_PER_PIXEL, 1, "--size" if command else "size")


def synthesize_clic(
    out_dir: str | Path,
    refs: int = 12,
    size: int = 256,
    seed: int = 0,
    votes: int = 3,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SynthSummary:
    """Write the synthetic set to ``out_dir`` (see the module docstring); the same seed gives the same bytes.

    ``refs`` >= 1 references of ``size`` x ``size`` (>= 64) pixels, ~10 triplets each; ``seed`` >= 0;
    ``votes`` >= 1 oracle rows per triplet. Existing files of ours in ``out_dir`` are overwritten and stale
    ``images/ref_*.png`` removed. ``progress(done, total)`` is called after each reference.
    Raises ConfigError for bad arguments, DataError if ``out_dir`` is not a writable folder,
    :class:`~prfnet.memory.NotEnoughMemory` before anything is made if the set cannot fit in memory here.
    """
    refs, size, seed, votes = (
        check_int("synthesize_clic", name, value, minimum)
        for name, value, minimum in (
            ("refs", refs, 1),
            ("size", size, MIN_SIZE),
            ("seed", seed, 0),
            ("votes", votes, 1),
        )
    )
    check_memory_for(refs, size)
    out_dir, images_dir = images_folder(out_dir)

    triplets: list[tuple[str, str, str, str]] = []  # (O, better, worse, kind)
    written: set[str] = set()
    references = sd.reference_images(refs, size, seed)
    photos = sum(origin != "procedural" for origin, _ in references)
    try:
        for index, (_, img) in enumerate(references):
            rng = np.random.default_rng([seed, 3, index])
            ref = f"ref_{index:03d}"
            images = {ref: img}
            for kind, pairs in (
                ("within_family", _within_family(ref, img, rng)),
                ("matched_mse", _matched_mse(ref, img, rng)),
            ):
                for better, better_img, worse, worse_img in pairs:
                    images[better], images[worse] = better_img, worse_img
                    triplets.append((f"{ref}.png", f"{better}.png", f"{worse}.png", kind))
            for name, image in images.items():
                write_png(images_dir / f"{name}.png", image)
                written.add(f"{name}.png")
            if progress is not None:
                progress(index + 1, refs)
    except OSError as exc:
        raise DataError(f"{images_dir}: cannot write images ({exc.strerror or exc})") from None
    remove_stale_images(images_dir, written)

    validation, kinds_rows, oracle = _clic_rows(triplets, votes, seed)

    counts = dict(Counter(t[3] for t in triplets))
    counts = {kind: counts.get(kind, 0) for kind in KINDS}
    paths = {n: out_dir / f for n, f in (("val", "validation.csv"), ("oracle", "oracle.csv"), ("kinds", "kinds.csv"))}
    try:
        write_csv(paths["val"], validation)
        write_csv(paths["oracle"], oracle)
        write_csv(paths["kinds"], kinds_rows)
        with atomic_write(out_dir / "README.txt") as f:
            f.write(_readme(refs, size, seed, votes, counts))
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot write ({exc.strerror or exc})") from None
    return SynthSummary(
        out_dir=out_dir,
        images_dir=images_dir,
        validation_csv=paths["val"],
        oracle_csv=paths["oracle"],
        kinds_csv=paths["kinds"],
        readme=out_dir / "README.txt",
        references=refs,
        photo_references=photos,
        procedural_references=refs - photos,
        images=len(written),
        triplets=len(triplets),
        validation_rows=len(validation),
        oracle_rows=len(oracle),
        kinds=counts,
        size=size,
        seed=seed,
        votes=votes,
    )
