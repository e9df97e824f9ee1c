"""What both synthetic sets share: PNG and CSV writers, balanced A/B flags, argument checks, an ordered process map."""

from __future__ import annotations

import csv
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..ioutil import atomic_write

PNG_COMPRESS_LEVEL = 3  # lossless either way; 3 is ~2x faster than the default 6


def write_png(path: Path, img: np.ndarray) -> None:
    """An (H, W, 3) uint8 RGB array as a PNG, written atomically."""
    with atomic_write(path, "wb") as f:
        Image.fromarray(img, mode="RGB").save(f, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def write_rows(path: Path, rows, header: Sequence[str] | None = None) -> None:
    """CSV rows (UTF-8, ``\\n`` line ends; ``header`` first when given), written atomically."""
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


def balanced_flags(n: int, rng: np.random.Generator) -> np.ndarray:
    """n booleans, half of them True (the odd one out at random), in random order."""
    flags = np.zeros(n, dtype=bool)
    flags[: (n + int(rng.integers(2))) // 2] = True
    return rng.permutation(flags)


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
    after each job. ``function`` must be a module-level function (it is pickled by name)."""
    results: list = []

    def done(result) -> None:
        results.append(result)
        if progress is not None:
            progress(len(results), len(jobs))

    if workers > 1 and len(jobs) > 1 and sys.platform.startswith("linux"):
        # fork: the workers inherit the imported modules (no re-import of torch); they only run
        # numpy/scipy/Pillow. Each job is deterministic on its own, so results do not depend on `workers`.
        with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
            for result in pool.imap(function, jobs):
                done(result)
    else:
        for job in jobs:
            done(function(job))
    return results
