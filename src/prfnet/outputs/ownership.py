"""Which files of an output folder prfnet wrote: those its manifest lists (the set, and what earlier runs of other kinds
left), or the journal of a publication that was interrupted, with the same size and SHA-256. Nothing else is ever
replaced or removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DataError, OutputError
from ..ioutil import file_sha256

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "prfnet-outputs"
MANIFEST_VERSION = 1


def verify_outputs(root: str | Path) -> dict:
    """The manifest of ``root`` after checking that every file it lists is there with its size and SHA-256.

    :class:`DataError` when there is no manifest (no complete set: a run was interrupted while publishing) or a
    listed file is missing or differs (it belongs to another run)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{root}: no {MANIFEST}, so no complete set of outputs") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{root / MANIFEST}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{root / MANIFEST}: not a prfnet outputs manifest")
    for entry in manifest.get("files", []):
        path = root / entry["path"]
        try:
            same = path.stat().st_size == entry["size"] and file_sha256(path) == entry["sha256"]
        except OSError:
            same = False
        if not same:
            raise DataError(f"{path}: missing or not the file of run {manifest.get('run_id')} ({root / MANIFEST})")
    return manifest


#: written before a publication moves anything (the manifest goes first), removed once the new manifest is in place:
#: every file of the folder that is prfnet's meanwhile, so that a publication interrupted by SIGKILL or power loss
#: leaves nothing that the next run would take for the user's
JOURNAL = ".prfnet-owned.json"


def _listed(path: Path) -> dict[str, set[tuple[int, str]]]:
    """path -> {(size, sha256)} of the files a prfnet manifest (or journal) at ``path`` lists; {} for anything else."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        return {}
    listed: dict[str, set[tuple[int, str]]] = {}
    for entry in [*document.get("files", []), *document.get("earlier_files", [])]:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("size"), int):
            listed.setdefault(entry["path"], set()).add((entry["size"], str(entry.get("sha256"))))
    return listed


def owned_files(root: Path) -> dict[str, set[tuple[int, str]]]:
    """The files of ``root`` that prfnet wrote, as its manifest (``files``: the set; ``earlier_files``: what earlier
    runs of other kinds left) and the journal of an interrupted publication list them (with their size and SHA-256)."""
    owned = _listed(root / JOURNAL)
    for rel, versions in _listed(root / MANIFEST).items():
        owned.setdefault(rel, set()).update(versions)
    return owned


def _same(path: Path, rel: str, owned: dict[str, set[tuple[int, str]]]) -> bool:
    versions = owned.get(rel, set())
    if path.is_symlink() or not path.is_file():
        return False
    size = path.stat().st_size
    return any(size == s for s, _ in versions) and file_sha256(path) in {h for s, h in versions if s == size}


def is_ours(root: Path, name: str, owned: dict[str, set[tuple[int, str]]]) -> bool:
    """Whether the top-level entry ``root/name`` is prfnet's: the manifest itself (a prfnet manifest), a listed
    file unchanged, or a real folder all of whose files are listed and unchanged (no links, nothing else)."""
    entry = root / name
    if name == MANIFEST:
        return bool(_listed(entry)) or _is_empty_manifest(entry)
    if entry.is_symlink():
        return False
    if entry.is_file():
        return _same(entry, name, owned)
    if not entry.is_dir():
        return False
    for folder, dirs, files in os.walk(entry):
        here = Path(folder)
        if any((here / d).is_symlink() for d in dirs):
            return False
        for file in files:
            if not _same(here / file, (here / file).relative_to(root).as_posix(), owned):
                return False
    return True


def _is_empty_manifest(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("format") == MANIFEST_FORMAT


def refuse_foreign(root: Path, names: list[str]) -> None:
    """:class:`OutputError` (one line) when any of the top-level ``names`` in ``root``, which a run would replace or
    remove, was not written by prfnet (:func:`is_ours`): prfnet never touches a file it did not write."""
    present = [n for n in names if (root / n).exists() or (root / n).is_symlink()]
    if not present:
        return
    owned = owned_files(root)
    foreign = [n for n in present if not is_ours(root, n, owned)]
    if foreign:
        more = f" (and {len(foreign) - 1} more: {', '.join(foreign[1:4])})" if len(foreign) > 1 else ""
        raise OutputError(
            f"{root / foreign[0]} is in the way: prfnet did not write it (it is not in {root / MANIFEST}, or it "
            f"changed since) and never replaces or deletes what it did not write; move it, or choose another output "
            f"folder{more}"
        )
