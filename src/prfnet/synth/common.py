"""What both synthetic sets share: PNG and CSV writers, balanced A/B flags, argument checks, an ordered process map."""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError
from ..ioutil import atomic_write
from ..memory import check_memory

OUR_IMAGE = re.compile(r"ref_\d{3,}(_[A-Za-z0-9_.]+)?\.png")  # the images a set writes (and may remove as stale)
PNG_COMPRESS_LEVEL = 3  # lossless either way; 3 is ~2x faster than the default 6
#: bytes per pixel every reference holds for the whole run (the uint8 RGB references are made first)
HELD_BYTES_PER_PIXEL = 3


class SetSummary:
    """What the summaries of both synthetic sets share (mixed into their frozen dataclasses): the JSON form and
    the opening of the one-line summary."""

    triplets: int
    references: int
    photo_references: int
    procedural_references: int
    kinds: dict[str, int]

    def as_dict(self) -> dict:
        """JSON-ready dict (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    def _opening(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
        return (
            f"wrote {self.triplets} triplets ({kinds}) over {self.references} references "
            f"({self.photo_references} photo crops, {self.procedural_references} procedural), "
        )


def images_folder(out_dir: str | Path) -> tuple[Path, Path]:
    """(``out_dir``, ``out_dir/images``), the latter created; DataError if ``out_dir`` is a file or the folder
    cannot be created."""
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder")
    try:
        images_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{images_dir}: cannot create folder ({exc.strerror or exc})") from None
    return out_dir, images_dir


def remove_stale_images(images_dir: Path, written: set[str]) -> None:
    """Delete the files in ``images_dir`` named like ours (:data:`OUR_IMAGE`) that this run did not write."""
    for stale in images_dir.iterdir():
        if OUR_IMAGE.fullmatch(stale.name) and stale.name not in written and stale.is_file():
            stale.unlink()


def check_set_memory(what: str, size: int, refs: int, working: float, concurrent: int, size_name: str) -> None:
    """:class:`~prfnet.memory.NotEnoughMemory` (before anything is allocated or written) unless a set of ``refs``
    references of ``size`` x ``size`` px fits in the memory available here: it needs ``size**2 * (3 * refs +
    working * concurrent)`` bytes, ``working`` being the measured peak bytes per pixel of one reference's work
    (its float64 buffers, distortions, encodes) and ``concurrent`` the references worked on at once. The line
    names the largest ``size_name`` that would fit."""
    per_pixel = HELD_BYTES_PER_PIXEL * refs + working * concurrent

    def advice(available: int) -> str:
        fits = math.isqrt(int(available // per_pixel))
        return f"use a smaller {size_name} (at most about {fits} px could fit here)"

    check_memory(size * size * per_pixel, what, advice)


def write_png(path: Path, img: np.ndarray) -> None:
    """An (H, W, 3) uint8 RGB array as a PNG, written atomically."""
    with atomic_write(path, "wb") as f:
        Image.fromarray(img, mode="RGB").save(f, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def balanced_flags(n: int, rng: np.random.Generator) -> np.ndarray:
    """n booleans, half of them True (the odd one out at random), in random order."""
    flags = np.zeros(n, dtype=bool)
    flags[: (n + int(rng.integers(2))) // 2] = True
    return rng.permutation(flags)


def orientation_flags(
    kinds: list[str], kind_order, swapped_fraction: float, rng: np.random.Generator, swaps: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per triplet (``kinds``: its kind each): whether its first image is shown as A, balanced within each kind of
    ``kind_order`` (drawn in that order), and whether it is one of the ``swapped_fraction`` of triplets that get
    some votes written with A and B swapped (none when not ``swaps``). Both (n,) bool."""
    first_as_a = np.zeros(len(kinds), dtype=bool)
    for kind in kind_order:
        members = [i for i, k in enumerate(kinds) if k == kind]
        first_as_a[members] = balanced_flags(len(members), rng)
    swapped = np.zeros(len(kinds), dtype=bool)
    if swaps:
        swapped[rng.permutation(len(kinds))[: round(swapped_fraction * len(kinds))]] = True
    return first_as_a, swapped


def check_int(function: str, name: str, value, minimum: int) -> int:
    """``value`` as an int; :class:`ConfigError` naming ``function`` and ``name`` unless an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(f"{function}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def cpus() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_in_order(function: Callable, jobs: list, workers: int, progress: Callable[[int, int], None] | None) -> list:
    """``[function(job) for job in jobs]``; ``workers`` > 1 forks processes (Linux only); ``progress(done, total)``
    after each job. ``function`` must be a module-level function (it is pickled by name).

    Signals are the parent's to handle: a worker ignores SIGINT (Ctrl-C reaches the whole process group), dies
    without a traceback on SIGTERM, and gets SIGTERM when the parent process dies; the parent ends the pool on
    any exception (Ctrl-C, SIGTERM as :class:`~prfnet.errors.Terminated`), so no worker is left writing to it."""
    results: list = []

    def done(result) -> None:
        results.append(result)
        if progress is not None:
            progress(len(results), len(jobs))

    if workers > 1 and len(jobs) > 1 and sys.platform.startswith("linux"):
        # fork: the workers inherit the imported modules (no re-import of torch); they only run
        # numpy/scipy/Pillow. Each job is deterministic on its own, so results do not depend on `workers`.
        context = multiprocessing.get_context("fork")
        # a worker starts with SIGINT/SIGTERM blocked (the mask of the forking thread: the pool's own threads are
        # started here too), so the parent's Python handlers it inherits never run in it: _quiet_worker replaces
        # them, then unblocks
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
        try:
            pool = context.Pool(min(workers, len(jobs)), initializer=_quiet_worker, initargs=(os.getpid(),))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        with pool:  # leaving it, normally or by an exception, terminates the workers (SIGTERM: they end quietly)
            for result in pool.imap(function, jobs):
                done(result)
    else:
        for job in jobs:
            done(function(job))
    return results


_WORKER_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _quiet_worker(parent: int) -> None:
    """Pool initializer: Ctrl-C is ignored (the parent ends the pool), SIGTERM ends the worker without a traceback,
    and the parent's death sends it SIGTERM (no worker outlives a killed parent, writing tracebacks about its
    broken pipe); then the signals blocked at the fork are let in."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):  # no prctl: the parent's pool.terminate() still ends it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
