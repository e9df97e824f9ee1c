"""Line-numbered reading of delimited text files and case-insensitive image lookup (internal helpers)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError

#: added to "too many fields" errors of files with numbers: the likeliest cause
DECIMAL_COMMA_HINT = "; a decimal comma (0,75) splits a number in two: write 0.75, or quote the field"
IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def require_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path; :class:`DataError` naming it if it is not an existing file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a {what}")
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    return path


def require_dir(path: str | Path, what: str = "folder") -> Path:
    """``path`` as a Path; :class:`DataError` naming it if it is not an existing folder."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: {what} not found (or not a folder)")
    return path


def read_lines(path: Path) -> list[str]:
    """The text lines of ``path`` (UTF-8, a leading BOM dropped); :class:`DataError` if unreadable."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each non-blank row, fields stripped of surrounding whitespace.

    Line numbers are 1-based physical lines, so error messages can point at them.
    """
    lines = read_lines(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))
        except csv.Error as exc:
            raise DataError(f"{path}, line {number}: cannot parse CSV ({exc})") from None
        yield number, [field.strip() for field in fields]


def check_field_count(path: Path, line: int, fields: list[str], header: list[str], header_line: int = 1) -> None:
    """:class:`DataError` naming file, line and both counts when a row has more or fewer fields than its header (a
    number written with a decimal comma, ``0,75``, splits into two fields and would otherwise be read wrong)."""
    if len(fields) == len(header):
        return
    hint = (
        "; a decimal comma (0,75) splits a number in two: write 0.75, or quote the field"
        if len(fields) > len(header)
        else ""
    )
    raise DataError(
        f"{path}, line {line}: {len(fields)} fields, but the header (line {header_line}) has {len(header)}: "
        f"{','.join(header)}{hint}"
    )


def parse_float(text: str, path: Path, line: int, column: str) -> float:
    """``float(text)``, or a :class:`DataError` naming file, line and column."""
    try:
        value = float(text)
    except ValueError:
        comma = "; write 0.75, not 0,75 (a decimal comma)" if "," in text else ""
        raise DataError(f"{path}, line {line}: {column} must be a number, got {text!r}{comma}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DataError(f"{path}, line {line}: {column} must be finite, got {text!r}")
    return value


class CaseInsensitiveFolder:
    """Lower-cased file name -> actual file name, for the files directly inside ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names = {p.name.lower(): p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}

    def find(self, name: str) -> Path | None:
        """The file called ``name`` (any case) in the folder, or None."""
        actual = self.names.get(name.lower())
        return None if actual is None else self.folder / actual
