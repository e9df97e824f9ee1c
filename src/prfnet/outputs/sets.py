"""One set of outputs: staged in ``OUT/.run-<id>/``, published together, ``manifest.json`` last (see the package)."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..errors import OutputError
from ..ioutil import atomic_write, file_sha256, fsync_directory
from .folder import (
    STAGING_PREFIX,
    TMP_FILE,
    TRASH_PREFIX,
    check_output_dir,
    command,
    fcntl,
    files_below,
    locked,
    new_run_id,
    open_dir,
    reason,
    signals_held,
    staging_is_dead,
)
from .ownership import JOURNAL, MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, owned_files, refuse_foreign


class OutputSet:
    """The outputs of one run into the folder ``root``, staged in ``root/.run-<id>/`` and published together.

    ``own``: glob patterns of the top-level names this kind of run writes (``results.json``, ``submission_*.csv``,
    ``data``); files and folders matching them that the new set does not contain are removed when it is published.
    :meth:`check` the folder when the run starts, before any work (once: :meth:`open` checks only an unchecked set).
    Use as a context manager (or :meth:`open` / :meth:`commit` / :meth:`abort`): the staging folder is created on
    entry, published on a normal exit and removed on an exception. An ``OSError`` raised inside the block (a full
    disk) becomes an :class:`OutputError`; the previous set in ``root`` is then left as it was.

    Write a file of the set to :meth:`path` (``name`` relative to ``root``, may hold ``/``); :meth:`final` is where it
    will be once published. :meth:`publish_now` moves a finished folder into place early (the demo's data, whose
    absolute path the training run records).
    """

    def __init__(self, root: str | Path, own: Sequence[str]):
        self.root = Path(root)
        self.own = tuple(own)
        self.run_id = new_run_id()
        self.staging = self.root / f"{STAGING_PREFIX}{self.run_id}"
        self.checked = False
        self._fd: int | None = None
        self._published: list[str] = []  # names moved into place early (publish_now)
        self._created_root = False

    # -- writing ------------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Where to write ``name`` now (inside the staging folder; its parent folders are created)."""
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def final(self, name: str) -> Path:
        """Where ``name`` will be once the set is published."""
        return self.root / name

    def sub(self, prefix: str) -> OutputView:
        """A view whose names are below ``prefix/`` (the demo's ``eval/``), published with this set."""
        return OutputView(self, prefix)

    # -- life cycle ---------------------------------------------------------------------------------------------
    def check(self, what: str = "output folder") -> OutputSet:
        """:func:`check_output_dir` of ``root`` (an :class:`OutputError` now, before any work); returns the set."""
        check_output_dir(self.root, what)
        self._refuse_foreign(self._own_entries())
        self.checked = True
        return self

    def refuse_inputs(self, paths, what: str = "input") -> None:
        """:class:`OutputError` when one of ``paths`` (the run's inputs) lies where this set writes (a top-level name
        of our kinds in ``root``, or below one): an input is never an output. Call it before any work."""
        root = self.root.resolve()
        for path in paths:
            try:
                rel = Path(path).resolve().relative_to(root)
            except ValueError:
                continue
            if rel.parts and self._is_own(rel.parts[0]):
                raise OutputError(
                    f"{what} {path} lies where this run writes its output {self.root / rel.parts[0]}: an input is "
                    "never overwritten; choose another output folder"
                )

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputSet]:
        """``with outputs.writing() as sink: write(sink.path(name))``: staged, published on success, discarded on
        an error (the same protocol as :meth:`OutputView.writing`)."""
        with self as sink:
            yield sink

    def open(self) -> OutputSet:
        if not self.checked:
            self.check()
        self._created_root = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        try:
            self.staging.mkdir()
        except OSError as exc:
            why = reason(exc)
            raise OutputError(f"output folder {self.root}: cannot create {self.staging.name}: {why}") from None
        self._fd = open_dir(self.staging)
        if fcntl is not None and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # alive while held (released when we die)
        return self

    def __enter__(self) -> OutputSet:
        return self.open()

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            try:
                self.commit()
            except BaseException:  # Ctrl-C while hashing, or let through once the move is done: staging goes
                self.abort()
                raise
            return False
        self.abort()
        if self._created_root:  # a new folder that received nothing goes too
            with contextlib.suppress(OSError):
                self.root.rmdir()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            raise OutputError(
                f"writing the outputs to {self.root} failed: {reason(exc)}{where}; the previous outputs there "
                "are unchanged"
            ) from None
        return False

    def abort(self) -> None:
        """Discard the staged files (the folder ``root`` keeps its previous set)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def publish_now(self, name: str) -> Path:
        """Move the staged top-level ``name`` into place at once (replacing the old one) and invalidate the
        previous set (its manifest is removed). It is listed in the manifest when the set is committed."""
        root_fd = open_dir(self.root)
        try:
            with locked(root_fd) if root_fd is not None else contextlib.nullcontext(), signals_held():
                self._refuse_foreign([name])
                new = [self._entry(self.staging, rel) for rel in files_below(self.staging, name)]
                self._write_journal(self._kept(set()) + new)  # until the set is committed, it says what is ours
                (self.root / MANIFEST).unlink(missing_ok=True)
                self._move_into_place(name)
                fsync_directory(self.root)
        finally:
            if root_fd is not None:
                os.close(root_fd)
        self._published.append(name)
        return self.root / name

    def commit(self) -> dict:
        """Publish: move every staged entry into place, drop stale entries of our kinds, put the manifest last."""
        names = sorted(p.name for p in self.staging.iterdir() if not p.name.startswith("."))
        files = []
        for name in names:  # hashed in the staging folder, before anything in root changes
            files += [self._entry(self.staging, rel) for rel in files_below(self.staging, name)]
        for name in self._published:
            files += [self._entry(self.root, rel) for rel in files_below(self.root, name)]
        files.sort(key=lambda f: f["path"])
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "run_id": self.run_id,
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command() or "python",
            "files": files,
        }
        keep = {*names, *self._published}
        root_fd = open_dir(self.root)
        try:
            with locked(root_fd) if root_fd is not None else contextlib.nullcontext(), signals_held():
                # replaced or removed below: only what prfnet wrote (checked again: the run may have taken hours)
                present = [n for n in self._own_entries() if n not in self._published]
                self._refuse_foreign(present)
                manifest["earlier_files"] = self._kept({*names, *present, *self._published})
                self._write_journal(self._kept(set()) + files)  # the old and the new: ours while nothing is complete
                with atomic_write(self.staging / f".{MANIFEST}", encoding="utf-8") as f:
                    json.dump(manifest, f, indent=2, allow_nan=False)
                    f.write("\n")
                (self.root / MANIFEST).unlink(missing_ok=True)
                for name in names:
                    self._move_into_place(name)
                self._remove_stale(keep)
                os.replace(self.staging / f".{MANIFEST}", self.root / MANIFEST)  # last: the set is complete
                (self.root / JOURNAL).unlink(missing_ok=True)
                fsync_directory(self.root)
        except OSError as exc:
            self.abort()
            raise OutputError(f"publishing the outputs in {self.root} failed: {reason(exc)}") from None
        finally:
            if root_fd is not None:
                os.close(root_fd)
        self.abort()  # the staging folder now holds only the replaced folders
        return manifest

    # -- helpers ------------------------------------------------------------------------------------------------
    @staticmethod
    def _entry(base: Path, rel: str) -> dict:
        path = base / rel
        return {"path": rel, "size": path.stat().st_size, "sha256": file_sha256(path)}

    def _move_into_place(self, name: str) -> None:
        source, target = self.staging / name, self.root / name
        if source.is_dir() and not source.is_symlink():
            if target.is_dir() and not target.is_symlink():
                target.rename(self.staging / f"{TRASH_PREFIX}{name}")  # removed with the staging folder
            elif target.exists() or target.is_symlink():
                target.unlink()
            source.rename(target)
        else:
            if target.is_dir() and not target.is_symlink():
                raise OutputError(f"output folder {self.root}: {name} is a folder, where the output file {name} goes")
            os.replace(source, target)

    def _own_entries(self) -> list[str]:
        """The top-level entries of ``root`` of this run's kinds (what publishing may replace or remove)."""
        if not self.root.is_dir():
            return []
        return sorted(e.name for e in self.root.iterdir() if not e.name.startswith(".") and self._is_own(e.name))

    def _refuse_foreign(self, names: list[str]) -> None:
        refuse_foreign(self.root, names)

    def _kept(self, touched: set[str]) -> list[dict]:
        """The files prfnet wrote into ``root`` earlier outside the top-level names ``touched`` (which this publication
        replaces or removes): listed in the new manifest as ``earlier_files``, so they stay prfnet's to replace."""
        return [
            {"path": rel, "size": size, "sha256": sha}
            for rel, versions in sorted(owned_files(self.root).items())
            if rel.split("/")[0] not in touched and rel != MANIFEST
            for size, sha in sorted(versions)
        ]

    def _write_journal(self, entries: list[dict]) -> None:
        """Before anything moves (and the manifest goes): every file of ``root`` that is prfnet's during the move."""
        journal = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "run_id": self.run_id, "files": entries}
        with atomic_write(self.root / JOURNAL, encoding="utf-8") as f:
            json.dump(journal, f, allow_nan=False)

    def _is_own(self, name: str) -> bool:
        return name == MANIFEST or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.own)

    def _remove_stale(self, keep: set[str]) -> None:
        """Entries of our kinds that the new set does not contain, and temporaries of atomic_write for them."""
        for entry in self.root.iterdir():
            name = entry.name
            tmp = TMP_FILE.match(name)
            if tmp and self._is_own(tmp.group("name")):
                entry.unlink(missing_ok=True)
            elif name not in keep and name != MANIFEST and self._is_own(name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    def _clean_stale(self) -> None:
        """Staging folders of dead runs and the temporaries they left (under the lock on ``root``)."""
        root_fd = open_dir(self.root)
        try:
            with locked(root_fd) if root_fd is not None else contextlib.nullcontext():
                for entry in self.root.iterdir():
                    if entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and staging_is_dead(entry):
                        shutil.rmtree(entry, ignore_errors=True)
                    elif (tmp := TMP_FILE.match(entry.name)) and self._is_own(tmp.group("name")):
                        entry.unlink(missing_ok=True)  # no commit runs now: nobody is writing it
        except OSError as exc:
            raise OutputError(f"output folder {self.root}: {reason(exc)}") from None
        finally:
            if root_fd is not None:
                os.close(root_fd)


class OutputView:
    """The part of an :class:`OutputSet` below ``prefix/``; written by a callee, published by the set's owner."""

    def __init__(self, owner: OutputSet, prefix: str):
        self.owner = owner
        self.prefix = prefix.strip("/")

    def path(self, name: str) -> Path:
        return self.owner.path(f"{self.prefix}/{name}")

    def final(self, name: str) -> Path:
        return self.owner.final(f"{self.prefix}/{name}")

    @contextlib.contextmanager
    def writing(self) -> Iterator[OutputView]:
        yield self  # the owner publishes
