"""Two human-preference 2AFC sets: BAPPS (LPIPS paper) and PieAPP.

BAPPS ``judge`` = fraction of humans preferring p1, so ``p_a = 1 - judge`` with A = p0, B = p1.
PieAPP probabilities are P(A preferred), i.e. the fraction of people who found A closer: ``p_a`` directly.
Both readers return absolute image paths, checked to exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._files import DECIMAL_COMMA_HINT, IMAGE_SUFFIXES, csv_rows, parse_float, require_dir, require_file
from .triplets import LabeledTriplet

BAPPS_FOLDERS = ("ref", "p0", "p1", "judge")


def _is_bapps_subset(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in BAPPS_FOLDERS)


def _folders(folder: Path) -> list[Path]:
    return [d for d in sorted(folder.iterdir()) if d.is_dir()]


def _files_by_stem(folder: Path, suffixes: set[str]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in suffixes}


def _read_judge(path: Path) -> float:
    try:
        value = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy judge file ({exc})") from None
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise DataError(f"{path}: judge file must hold one number, got shape {value.shape} dtype {value.dtype}")
    judge = float(value.reshape(-1)[0])
    if not 0.0 <= judge <= 1.0:  # also rejects NaN
        raise DataError(f"{path}: judge (fraction preferring p1) must be in [0, 1], got {judge}")
    return judge


def _read_bapps_subset(folder: Path) -> list[LabeledTriplet]:
    ref, p0, p1 = (_files_by_stem(folder / name, IMAGE_SUFFIXES) for name in BAPPS_FOLDERS[:3])
    judge = _files_by_stem(folder / "judge", {".npy"})
    stems = sorted(ref)
    for name, files in (("p0", p0), ("p1", p1), ("judge", judge)):
        if set(files) != set(ref):
            missing = sorted(set(ref) - set(files))
            extra = sorted(set(files) - set(ref))
            what = f"no {name} file for ref/{missing[0]}" if missing else f"{name}/{extra[0]} has no ref image"
            raise DataError(f"{folder}: {what} (ref/p0/p1/judge files are paired by name)")
    if not stems:
        raise DataError(f"{folder}: BAPPS folder has no images in ref/")
    return [
        LabeledTriplet(
            str(ref[s].resolve()),
            str(p0[s].resolve()),
            str(p1[s].resolve()),
            1.0 - _read_judge(judge[s]),
            kind=folder.name,
        )
        for s in stems
    ]


def read_bapps(root: str | Path) -> list[LabeledTriplet]:
    """Read a BAPPS 2AFC folder: ``2afc/<split>/<subset>`` with ``ref/ p0/ p1/ judge/`` (or a
    ``2afc/<split>`` folder of such subsets, read in sorted order).

    Files are paired by name; A = p0, B = p1, ``p_a = 1 - judge`` (judge = fraction preferring p1),
    ``kind`` = subset folder name, ``votes`` = 1 (BAPPS stores only the fraction). Absolute paths.
    A ``2afc`` folder (splits ``train/``, ``val/``) is refused: one split at a time, never pooled.
    """
    root = require_dir(root, "BAPPS folder")
    if _is_bapps_subset(root):
        return _read_bapps_subset(root)
    subsets = [d for d in _folders(root) if _is_bapps_subset(d)]
    splits = [] if subsets else [d for d in _folders(root) if any(map(_is_bapps_subset, _folders(d)))]
    if splits:
        raise DataError(
            f"{root}: a BAPPS 2afc folder holding the splits {', '.join(d.name for d in splits)}: read one split "
            f"(e.g. {splits[0]}) or subset at a time; train and val triplets are never pooled"
        )
    if not subsets:
        raise DataError(
            f"{root}: unknown BAPPS layout: expected a 2afc/<split>/<subset> folder holding ref/, p0/, p1/ and "
            "judge/ (or a 2afc/<split> folder of such subsets)"
        )
    return [item for subset in subsets for item in _read_bapps_subset(subset)]


JND_FOLDERS = ("p0", "p1", "same")


@dataclass(frozen=True)
class JNDPair:
    """A BAPPS JND pair: two distortions ``p0``, ``p1`` of one patch and ``same`` = the fraction of humans who
    judged them the same (in [0, 1]); absolute paths."""

    p0: str
    p1: str
    same: float


def _is_jnd_subset(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in JND_FOLDERS)


def _read_jnd_subset(folder: Path) -> list[JNDPair]:
    p0, p1 = (_files_by_stem(folder / name, IMAGE_SUFFIXES) for name in JND_FOLDERS[:2])
    same = _files_by_stem(folder / "same", {".npy"})
    for name, files in (("p1", p1), ("same", same)):
        if set(files) != set(p0):
            missing, extra = sorted(set(p0) - set(files)), sorted(set(files) - set(p0))
            what = f"no {name} file for p0/{missing[0]}" if missing else f"{name}/{extra[0]} has no p0 image"
            raise DataError(f"{folder}: {what} (p0/p1/same files are paired by name)")
    if not p0:
        raise DataError(f"{folder}: BAPPS JND folder has no images in p0/")
    # a "same" file holds the fraction of judges who saw no difference: the number the 2AFC judge files hold
    return [JNDPair(str(p0[s].resolve()), str(p1[s].resolve()), _read_judge(same[s])) for s in sorted(p0)]


def read_bapps_jnd(root: str | Path) -> dict[str, list[JNDPair]]:
    """Read a BAPPS JND folder: ``jnd/val/<subset>`` with ``p0/ p1/ same/`` (files paired by name), a folder of such
    subsets (``jnd/val``) or ``jnd`` itself -> ``{subset name: pairs}`` in sorted order. :class:`DataError` (one line)
    for another layout or an unpaired file."""
    root = require_dir(root, "BAPPS JND folder")
    if _is_jnd_subset(root):
        return {root.name: _read_jnd_subset(root)}
    for depth in ("*", "*/*"):
        subsets = [d for d in sorted(root.glob(depth)) if d.is_dir() and _is_jnd_subset(d)]
        found = {d.relative_to(root).as_posix(): d for d in subsets}
        if found:
            return {name: _read_jnd_subset(folder) for name, folder in found.items()}
    raise DataError(f"{root}: unknown BAPPS JND layout: expected jnd/val/<subset> folders holding p0/, p1/ and same/")


class _PieappImages:
    """Finds PieAPP images next to a label CSV (``labels/<split>/x.csv``).

    Reference: ``reference_images/<split>/<ref>``, ``reference_images/<ref>`` or the CSV's folder.
    Distorted: ``distorted_images/<split>/<ref stem>/<name>``, ``distorted_images/<ref stem>/<name>``,
    ``<csv folder>/<ref stem>/<name>`` or ``<csv folder>/<name>``.
    """

    def __init__(self, csv_path: Path):
        self.csv_dir = csv_path.parent.resolve()
        split = self.csv_dir.name
        bases = [self.csv_dir, *list(self.csv_dir.parents)[:2]]
        self.ref_dirs = [d for b in bases for d in (b / "reference_images" / split, b / "reference_images")]
        self.dist_dirs = [d for b in bases for d in (b / "distorted_images" / split, b / "distorted_images")]
        self.cache: dict[tuple[str, str], Path | None] = {}

    def _first(self, candidates: list[Path]) -> Path | None:
        return next((c for c in candidates if c.is_file()), None)

    def find(self, ref: str, name: str | None) -> Path | None:
        key = (ref, name or "")
        if key not in self.cache:
            if name is None:
                found = self._first([*(d / ref for d in self.ref_dirs), self.csv_dir / ref])
            else:
                stem = Path(ref).stem
                candidates = [d / stem / name for d in self.dist_dirs]
                found = self._first([*candidates, self.csv_dir / stem / name, self.csv_dir / name])
            self.cache[key] = found
        return self.cache[key]


def _read_pieapp_csv(path: Path, probability: str) -> list[LabeledTriplet]:
    images = _PieappImages(path)
    items = []
    for index, (line, fields) in enumerate(csv_rows(path)):
        if index == 0 and any(c.isalpha() for c in fields[-1]) and "prob" in ",".join(fields).lower():
            continue  # header row: "ref. image, image A, image B, raw probability ..., processed ..."
        if len(fields) not in (4, 5):
            raise DataError(
                f"{path}, line {line}: expected ref,A,B,raw_prob[,processed_prob], got {len(fields)} fields"
                + (DECIMAL_COMMA_HINT if len(fields) > 5 else "")
            )
        if probability == "raw" or len(fields) == 4:
            text, column = fields[3], "raw_prob"
            if not text and probability == "raw":
                continue  # PieAPP leaves unlabelled pairs blank in the raw column
        else:
            text, column = fields[4], "processed_prob"
        p_a = parse_float(text, path, line, column)
        if not 0.0 <= p_a <= 1.0:
            raise DataError(f"{path}, line {line}: {column} must be a probability in [0, 1], got {text}")
        paths = []
        for name in (None, fields[1], fields[2]):
            found = images.find(fields[0], name)
            if found is None:
                raise DataError(f"{path}, line {line}: image {name or fields[0]!r} not found near {path.parent}")
            paths.append(str(found))
        items.append(LabeledTriplet(*paths, p_a=p_a, kind="pieapp"))
    return items


def read_pieapp(path: str | Path, probability: str = "processed") -> list[LabeledTriplet]:
    """Read PieAPP pairwise labels: one CSV or a folder searched recursively for ``*.csv``.

    Rows ``ref,A,B,raw_prob,processed_prob`` (train/val) or ``ref,A,B,prob`` (test); a header row is
    skipped. Both probabilities are P(A preferred) = fraction of people who found A closer, so ``p_a`` is
    the chosen column as is: ``probability="processed"`` (default; PieAPP's ML estimate, every row) or
    ``"raw"`` (the MTurk fraction; rows left blank are skipped). ``*per_image_score*`` files are ignored.
    """
    if probability not in ("processed", "raw"):
        raise DataError(f"probability must be 'processed' or 'raw', got {probability!r}")
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.csv") if "per_image_score" not in p.name)
        if not files:
            raise DataError(f"{path}: no PieAPP label CSV files (*.csv) in this folder")
    else:
        files = [require_file(path, "PieAPP label file")]
    return [item for file in files for item in _read_pieapp_csv(file, probability)]
