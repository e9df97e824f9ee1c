"""Rate-distortion inputs: which decoded image belongs to which codec, rate point and original, and its bits.

Two sources (``docs/rd.md``): a CSV (:func:`read_rd_csv`) or a folder layout (:func:`scan_rd_folders`). Both
give :class:`RDItem` rows; nothing is decoded here (the size of an original is read from its header).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..data._files import check_field_count
from ..errors import DataError, ImageReadError
from ..images import image_size

#: Decoded images stored losslessly: their file size says nothing about the bits of the codec.
LOSSLESS_EXTENSIONS = (".png", ".ppm", ".bmp", ".tif", ".tiff")
#: Decoded images that are the codec's own output file: without a bitstream beside them, their size is the bits.
COMPRESSED_EXTENSIONS = (".jpg", ".jpeg", ".webp", ".jp2", ".j2k", ".avif")
DECODED_EXTENSIONS = LOSSLESS_EXTENSIONS + COMPRESSED_EXTENSIONS
#: Bitstream extensions preferred when several files share a decoded image's stem.
BITSTREAM_EXTENSIONS = (".bin", ".bits")

REQUIRED_COLUMNS = ("codec", "image", "rate_point", "decoded_path", "original_path")
RATE_COLUMNS = ("bpp", "bitstream_path")


@dataclass(frozen=True)
class RDItem:
    """One decoded image: ``codec`` at ``rate_point`` (a label such as ``q30``) of ``image`` (the original's id),
    its file ``decoded``, the ``original`` and the bits per pixel of its bitstream (``bpp``)."""

    codec: str
    image: str
    rate_point: str
    decoded: Path
    original: Path
    bpp: float


def bits_per_pixel(bitstream: Path, original: Path) -> float:
    """8 x the size of ``bitstream`` in bytes / (width x height of ``original``, read from its header).

    Raises :class:`ImageReadError` when the original is missing or not an image, :class:`OSError` when the
    bitstream cannot be read."""
    width, height = image_size(original)
    return 8.0 * bitstream.stat().st_size / (width * height)


# ------------------------------------------------------------------------------------------------------------ CSV


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's last physical line, stripped fields) of each non-blank CSV record."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for fields in reader:
                if any(field.strip() for field in fields):
                    yield reader.line_num, [field.strip() for field in fields]
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a UTF-8 CSV file ({exc})") from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[dict[str, int], list[str], int]:
    """(column -> index, the header's fields, its line)."""
    first = next(rows, None)
    expected = f"{','.join(REQUIRED_COLUMNS)} and bpp or bitstream_path"
    if first is None:
        raise DataError(f"{path}: empty file (expected a header with the columns {expected})")
    line, fields = first
    names = [name.lower() for name in fields]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if not any(name in names for name in RATE_COLUMNS):
        missing.append("bpp or bitstream_path")
    if missing:
        raise DataError(
            f"{path}, line {line}: header must name the columns {expected}; missing {', '.join(missing)} "
            f"(got {','.join(fields)})"
        )
    return {name: names.index(name) for name in (*REQUIRED_COLUMNS, *RATE_COLUMNS) if name in names}, fields, line


def _value(fields: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return fields[index] if index is not None and index < len(fields) else ""


def _resolve(folder: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _parse_bpp(where: str, text: str) -> float:
    try:
        bpp = float(text)
    except ValueError:
        raise DataError(f"{where}: bpp must be a positive number, got {text!r}") from None
    if not math.isfinite(bpp) or bpp <= 0:
        raise DataError(f"{where}: bpp must be a positive finite number, got {text!r}")
    return bpp


def _bpp_of_bitstream(where: str, bitstream: Path, original: Path) -> float:
    if not bitstream.is_file():
        raise DataError(f"{where}: bitstream file {bitstream} not found")
    try:
        bpp = bits_per_pixel(bitstream, original)
    except ImageReadError as exc:
        raise DataError(f"{where}: cannot take the pixel count of the original for the bpp ({exc})") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read the bitstream file {bitstream} ({exc})") from None
    if bpp <= 0:
        raise DataError(f"{where}: bitstream file {bitstream} is empty (0 bits)")
    return bpp


def read_rd_csv(path: str | Path) -> list[RDItem]:
    """The rows of an RD CSV, in file order.

    Header (any column order, case-insensitive, other columns ignored): ``codec,image,rate_point,decoded_path,
    original_path`` and ``bpp`` or ``bitstream_path`` (or both: a row's ``bpp`` wins where given, else
    bpp = 8 x bitstream bytes / (width x height of the original from its header)). Every row has as many fields as
    the header. Relative paths are relative to the CSV's folder. :class:`DataError` naming the file and line (the
    header is line 1) for a missing column, a row with more or fewer fields than the header (a decimal comma), an
    empty field, a bpp that is not a positive finite number, a repeated (codec, image, rate_point) or a missing
    bitstream file. Decoded and original files are checked later (:func:`prfnet.rd.check_rd_items`).
    """
    path = Path(path)
    folder = path.parent
    rows = _rows(path)
    columns, header, header_line = _header(path, rows)
    items: list[RDItem] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, fields in rows:
        where = f"{path}, line {line}"
        check_field_count(path, line, fields, header, header_line)
        values = {name: _value(fields, columns, name) for name in columns}
        empty = [name for name in REQUIRED_COLUMNS if not values[name]]
        if not values.get("bpp") and not values.get("bitstream_path"):
            empty.append(" or ".join(name for name in RATE_COLUMNS if name in columns))
        if empty:
            raise DataError(f"{where}: empty field {', '.join(empty)}")
        key = (values["codec"], values["image"], values["rate_point"])
        if key in seen:
            raise DataError(
                f"{where}: codec {key[0]!r}, image {key[1]!r}, rate point {key[2]!r} is repeated "
                f"(first on line {seen[key]})"
            )
        seen[key] = line
        original = _resolve(folder, values["original_path"])
        if values.get("bpp"):
            bpp = _parse_bpp(where, values["bpp"])
        else:
            bpp = _bpp_of_bitstream(where, _resolve(folder, values["bitstream_path"]), original)
        items.append(RDItem(*key, _resolve(folder, values["decoded_path"]), original, bpp))
    if not items:
        raise DataError(f"{path}: no rows below the header")
    return items


# -------------------------------------------------------------------------------------------------------- folders


def _visible(entries) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith("."))


def _originals(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(f"{root}: originals folder not found")
    found: dict[str, Path] = {}
    for p in _visible(root.iterdir()):
        if p.is_file() and p.suffix.lower() in DECODED_EXTENSIONS:
            if p.stem in found:
                raise DataError(f"{p}: two originals of image {p.stem!r} ({found[p.stem].name} and {p.name})")
            found[p.stem] = p
    return found


def _bitstream(decoded: Path, others: list[Path]) -> Path | None:
    """The bitstream of ``decoded`` among the non-image files ``others`` with its stem (``.bin`` first)."""
    for ext in BITSTREAM_EXTENSIONS:
        for p in others:
            if p.suffix.lower() == ext:
                return p
    if len(others) > 1:
        names = ", ".join(p.name for p in others)
        raise DataError(f"{decoded}: several files could be its bitstream ({names}); rename it {decoded.stem}.bin")
    return others[0] if others else None


def _rate_folder(codec: str, rate: Path, originals: dict[str, Path]) -> list[RDItem]:
    files = [p for p in _visible(rate.iterdir()) if p.is_file()]
    decoded_by_stem: dict[str, list[Path]] = {}
    others_by_stem: dict[str, list[Path]] = {}
    for p in files:
        target = decoded_by_stem if p.suffix.lower() in DECODED_EXTENSIONS else others_by_stem
        target.setdefault(p.stem, []).append(p)
    items = []
    for stem, decoded in sorted(decoded_by_stem.items()):
        if len(decoded) > 1:
            names = ", ".join(p.name for p in decoded)
            raise DataError(f"{rate}: several decoded images of {stem!r} ({names}); keep one (and {stem}.bin)")
        path = decoded[0]
        if stem not in originals:
            raise DataError(f"{path}: no original {stem}.<ext> for it in the originals folder")
        bitstream = _bitstream(path, others_by_stem.get(stem, []))
        if bitstream is None and path.suffix.lower() in COMPRESSED_EXTENSIONS:
            bitstream = path  # a JPEG / WebP / JPEG 2000 / AVIF file is its own bitstream
        if bitstream is None:
            raise DataError(
                f"{path}: no bitstream for {stem!r}: put {stem}.bin beside it or use a CSV with a bpp column"
            )
        bpp = _bpp_of_bitstream(str(path), bitstream, originals[stem])
        items.append(RDItem(codec, stem, rate.name, path, originals[stem], bpp))
    return items


def scan_rd_folders(decoded_root: str | Path, originals_root: str | Path) -> list[RDItem]:
    """Items of the layout ``DECODED/<codec>/<rate_point>/<image>.<ext>`` with ``ORIGINALS/<image>.<ext>``.

    ``image`` is the file stem; decoded images are PNG, PPM, BMP, TIFF or a compressed format (JPEG, WebP,
    JPEG 2000, AVIF). The bits come from a file with the same stem beside the decoded image whose extension is
    ``.bin``, ``.bits`` or any non-image one; without one, a compressed decoded file counts its own size. Order:
    codec, rate point, image (by name). Hidden files and folders (``.name``) are skipped. :class:`DataError`
    naming the file for a decoded image without an original or without bits.
    """
    decoded_root, originals_root = Path(decoded_root), Path(originals_root)
    if not decoded_root.is_dir():
        raise DataError(f"{decoded_root}: decoded-images folder not found")
    originals = _originals(originals_root)
    items: list[RDItem] = []
    for codec in _visible(decoded_root.iterdir()):
        if codec.is_dir():
            for rate in _visible(codec.iterdir()):
                if rate.is_dir():
                    items.extend(_rate_folder(codec.name, rate, originals))
    if not items:
        raise DataError(
            f"{decoded_root}: no decoded images found (expected <codec>/<rate_point>/<image>.<ext> below it, "
            f"<ext> one of {' '.join(e[1:] for e in DECODED_EXTENSIONS)})"
        )
    return items
