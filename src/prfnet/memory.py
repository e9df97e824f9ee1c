"""Memory checks before big allocations: how much memory is available here, and one line when a job needs more.

A job that would not fit (a synthetic set of huge images, a whole-image backbone pass over a 144-megapixel pair)
fails before it allocates anything, with :class:`NotEnoughMemory` naming what it needs, what is available and what
to do instead (``--tile``, a smaller ``--size``), not with a ``MemoryError`` or an allocator traceback minutes in.

Available memory (:func:`available_bytes`): on a CUDA device, ``torch.cuda.mem_get_info`` (free memory) plus what
torch's caching allocator holds unused; elsewhere the smallest of ``MemAvailable`` of ``/proc/meminfo``, the
cgroup's limit minus its usage (v2: ``memory.max`` - ``memory.current``; v1: ``memory.limit_in_bytes`` -
``memory.usage_in_bytes``; reclaimable page cache, ``inactive_file``, not counted as used) and the address-space
limit (``ulimit -v``) minus this process's virtual size. What cannot be read is left out; when nothing can be read
(another OS), nothing is refused. The estimates are the callers' (``docs/performance.md``, "Memory"): they are
lower bounds from measured peaks, so a job is refused only when it clearly cannot fit.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import PRFNetError

__all__ = ["NotEnoughMemory", "available_bytes", "check_memory", "format_bytes"]

#: where the readings come from (module constants, so that tests can point them at files of their own)
PROC_MEMINFO = Path("/proc/meminfo")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PROC_SELF_STATM = Path("/proc/self/statm")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class NotEnoughMemory(PRFNetError, MemoryError):
    """A job needs more memory than is available here (checked before it allocates); the message names both
    amounts and what to do instead. A :class:`~prfnet.errors.PRFNetError`: the command line prints one line and
    exits with 2."""


def format_bytes(n: float) -> str:
    """``n`` bytes for people: ``"512 MiB"``, ``"6.0 GiB"``, ``"229 TiB"``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{max(n, 0) / 2**10:.0f} KiB"


def _read_int(path: Path) -> int | None:
    """The integer in a one-value file (``max`` and unreadable files: ``None``)."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: Path, *keys: str) -> int:
    """The first of ``keys`` found in a ``memory.stat`` file (0 when none is)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    values = dict(line.split(maxsplit=1) for line in lines if len(line.split()) == 2)
    for key in keys:
        if values.get(key, "").isdigit():
            return int(values[key])
    return 0


def meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (``None`` where unreadable)."""
    try:
        for line in PROC_MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return None
    return None


def _cgroup_dirs() -> list[tuple[int, Path]]:
    """(cgroup version, folder) candidates of this process's memory cgroup: its own path under the mount, then
    the mount itself (inside a container the namespace's root is the container's cgroup)."""
    own: list[tuple[int, Path]] = []
    try:
        lines = PROC_SELF_CGROUP.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        relative = path.strip().lstrip("/")
        if controllers == "":  # v2 (unified)
            own.append((2, CGROUP_ROOT / relative))
        elif "memory" in controllers.split(","):  # v1
            own.append((1, CGROUP_ROOT / "memory" / relative))
    return [*own, (2, CGROUP_ROOT), (1, CGROUP_ROOT / "memory")]


def cgroup_available() -> int | None:
    """The memory cgroup's limit minus its usage (less reclaimable ``inactive_file``), in bytes; ``None`` where no
    limit is set or nothing is readable."""
    for version, folder in _cgroup_dirs():
        if version == 2:
            limit, usage = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
            cache = _stat_value(folder / "memory.stat", "inactive_file")
        else:
            limit, usage = _read_int(folder / "memory.limit_in_bytes"), _read_int(folder / "memory.usage_in_bytes")
            cache = _stat_value(folder / "memory.stat", "total_inactive_file", "inactive_file")
            above = _stat_value(folder / "memory.stat", "hierarchical_memory_limit")  # a parent's limit
            limit = min(limit, above) if limit is not None and above else limit
        if limit is None or usage is None or limit >= 2**60:  # v1 writes "no limit" as about 2**63
            continue
        return max(0, limit - max(0, usage - cache))
    return None


def address_space_available() -> int | None:
    """The address-space limit (``ulimit -v``, RLIMIT_AS) minus this process's virtual size; ``None`` without a
    limit."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        size = int(PROC_SELF_STATM.read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        size = 0
    return max(0, soft - size)


def available_bytes(device: str | torch.device | None = None) -> int | None:
    """Memory a new allocation can use now, in bytes (see the module doc); ``None`` where nothing can be read."""
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(dev)
            cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free + max(0, cached))
    if dev.type != "cpu":  # MPS, XPU, ...: no portable reading
        return None
    readings = [r for r in (meminfo_available(), cgroup_available(), address_space_available()) if r is not None]
    return min(readings) if readings else None


def check_memory(
    need: float, what: str, advice: str | Callable[[int], str], device: str | torch.device | None = None
) -> None:
    """:class:`NotEnoughMemory` when ``need`` bytes are more than :func:`available_bytes` on ``device`` (CPU when
    ``None``): one line, ``"<what> needs about N of memory, M is available here (<where>); <advice>"``
    (``advice`` may be a function of the available bytes). Nothing is refused where the available memory cannot
    be read."""
    available = available_bytes(device)
    if available is None or need <= available:
        return
    dev = torch.device("cpu" if device is None else device)
    where = "RAM" if dev.type == "cpu" else f"free on {dev}"
    raise NotEnoughMemory(
        f"{what} needs about {format_bytes(need)} of memory, {format_bytes(available)} is available here ({where}); "
        f"{advice(available) if callable(advice) else advice}"
    )
