"""What the viewer sends for an image: the file itself when a browser shows it as it is, otherwise a PNG decoded with
prfnet's own reader; thumbnails; PRFNet's score maps as heat maps. Made lazily and kept in a bounded cache of the
viewer's own (``<prfnet cache>/view/``, never in the output set).

Every file is re-resolved (:func:`resolve_under`) and must lie under one of the declared roots; an image that cannot
be read answers a :class:`Refused` (its HTTP status and one line), never an exception that ends the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image

from ..cache import cache_dir
from ..errors import ImageReadError, PRFNetError
from ..images import DEFAULT_MAX_PIXELS, image_size, load_image
from ..ioutil import atomic_write

if TYPE_CHECKING:
    import torch

CHUNK = 1 << 20  # bytes read and sent at a time
THUMB_SIDE = 160  # longest side of a thumbnail, pixels
CACHE_BYTES = 256 * 1024 * 1024  # the cache folder's bound; least recently used files go first
PRODUCT_VERSION = "1"  # part of every cache key: bump it when a product is made differently
#: the formats a browser shows as they are (by their first bytes), with their Content-Type and file suffix
BROWSER_FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "GIF": ("image/gif", "gif"),
                   "WEBP": ("image/webp", "webp")}  # fmt: skip
_CACHE_FILE = re.compile(r"^(image|thumb|mapv|map)-[0-9a-f]{40}\.(png|npy)$")  # what this cache writes
WORKERS = max(2, min(8, os.cpu_count() or 2))  # decodes at a time (each holds a whole image in memory)


_UNKNOWN = object()


class Refused(Exception):
    """A request the viewer answers with an error status (404, 413, 422) and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_under(path: str | Path, roots: Iterable[Path]) -> Path:
    """``path`` resolved (links followed; it must exist) when it is a file below one of ``roots`` (resolved);
    :class:`Refused` 404 otherwise: a missing file, a folder, or a link that leads out of the roots."""
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise Refused(404, "no such image") from None
    if not any(real == root or real.is_relative_to(root) for root in roots) or not real.is_file():
        raise Refused(404, "no such image")
    return real


def _magic(path: Path) -> str | None:
    """The browser format of a file by its first bytes (PNG, JPEG, GIF, WEBP), or ``None``."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        # IHDR bit depth 16: browsers show it, but canvases read 8 bits; sent as an 8-bit PNG like TIFF or PPM
        return "PNG" if head[12:16] == b"IHDR" and head[24] <= 8 else None
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def browser_format(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str | None:
    """PNG, JPEG, GIF or WEBP when the file is one (by its bytes, not its name; Pillow reads its header and, for PNG,
    checks its chunks), ``None`` for a file to convert; :class:`Refused` 413 for more pixels than ``max_pixels``,
    422 for a file Pillow cannot read."""
    width, height = _size(path)
    if max_pixels is not None and width * height > max_pixels:
        raise Refused(413, f"image of {width}x{height} pixels, more than the viewer's limit of {max_pixels:,}")
    try:
        fmt = _magic(path)
        if fmt == "PNG":
            with Image.open(path, formats=["PNG"]) as img:
                img.verify()  # every chunk's CRC, up to IEND: a truncated or damaged file shows here
    except FileNotFoundError:
        raise Refused(404, "no such image") from None
    except Image.DecompressionBombError as exc:
        raise Refused(413, f"image too large: {_tail(exc)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Refused(422, f"cannot read the image: {_tail(exc)}") from None
    return fmt


def _size(path: Path) -> tuple[int, int]:
    try:
        return image_size(path)
    except ImageReadError as exc:
        status = 404 if "not found" in str(exc) else 422
        raise Refused(status, f"cannot read the image: {_tail(exc)}") from None


def _tail(exc: BaseException) -> str:
    """An error message without the file's path (the page shows it; the path is the server's business)."""
    text = " ".join(str(exc).split())
    return text.split(": ", 1)[1] if ": " in text else text


def _load(path: Path, max_pixels: int | None) -> torch.Tensor:
    """(1, 3, H, W) of ``path`` (uint8 for 8-bit files): :class:`Refused` 413 above ``max_pixels``, 422 if corrupt."""
    width, height = _size(path)
    if max_pixels is not None and width * height > max_pixels:
        raise Refused(413, f"image of {width}x{height} pixels, more than the viewer's limit of {max_pixels:,}")
    try:
        return load_image(path, max_pixels=max_pixels, keep_8bit=True)
    except ImageReadError as exc:
        raise Refused(422, f"cannot read the image: {_tail(exc)}") from None


def _rgb8(x: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 of a (1, 3, H, W) tensor (uint8, or float in [0, 1])."""
    import torch  # here and below: the viewer starts without torch, which only decoding and maps need

    if x.dtype != torch.uint8:
        x = (x.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return x[0].permute(1, 2, 0).contiguous().numpy()


def png_bytes(array: np.ndarray) -> bytes:
    """A PNG file of an (H, W, 3) or (H, W, 4) uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def heat_map(values: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a score map (H, W) >= 0: matplotlib's perceptual ``inferno`` ramp from 0 to ``scale``
    (> 0; values above it take the full colour), alpha rising with the value (0 where the map is 0)."""
    from matplotlib import colormaps  # a heavy package that only maps need

    t = np.clip(np.nan_to_num(values.astype(np.float32), nan=0.0) / np.float32(scale), 0.0, 1.0)
    lut = (colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
    index = (t * 255 + 0.5).astype(np.uint8)
    rgba = np.empty((*t.shape, 4), dtype=np.uint8)
    rgba[..., :3] = lut[index]
    rgba[..., 3] = index
    return rgba


def map_scale(values: np.ndarray) -> float:
    """The default full-colour value of a map: its 99th percentile (its maximum when that is 0; 1 for an all-zero
    map), so that a few extreme pixels do not wash out the rest."""
    p99 = float(np.percentile(values, 99)) if values.size else 0.0
    top = float(values.max()) if values.size else 0.0
    return p99 if p99 > 0 else (top if top > 0 else 1.0)


class ViewCache:
    """Files the viewer made (PNG conversions, thumbnails, score maps), in ``folder`` (default
    ``<prfnet cache>/view``), named by a hash of what they were made from; at most ``max_bytes`` in all, the least
    recently used removed first. Only the folder's files of the viewer's own naming are ever counted or removed."""

    def __init__(self, folder: str | Path | None = None, max_bytes: int = CACHE_BYTES):
        self.folder = Path(folder) if folder is not None else cache_dir("view")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._files: OrderedDict[str, int] = OrderedDict()  # name -> size, least recently used first
        entries = []
        for entry in os.scandir(self.folder):
            if _CACHE_FILE.match(entry.name) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime_ns, entry.name, info.st_size))
        for _, name, size in sorted(entries):
            self._files[name] = size
        self._total = sum(self._files.values())

    @staticmethod
    def key(kind: str, *parts: object) -> str:
        """The file name of a product of ``kind`` (image, thumb, mapv, map) made from ``parts``."""
        digest = hashlib.sha256("\0".join([PRODUCT_VERSION, kind, *map(str, parts)]).encode()).hexdigest()[:40]
        return f"{kind}-{digest}.{'npy' if kind == 'mapv' else 'png'}"

    def open(self, name: str) -> BinaryIO | None:
        """The cached file ``name`` opened for reading (and marked as just used), or ``None``."""
        with self._lock:
            if name not in self._files:
                return None
            self._files.move_to_end(name)
        path = self.folder / name
        try:
            f = open(path, "rb")  # noqa: SIM115 (the caller closes it; it stays readable if the bound removes it)
        except FileNotFoundError:  # another viewer's bound removed it
            with self._lock:
                self._total -= self._files.pop(name, 0)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # the order of use survives a restart (the scan sorts by modification time)
        return f

    def put(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name`` (atomically), then remove least recently used files above the bound."""
        with atomic_write(self.folder / name, "wb") as f:
            f.write(data)
        with self._lock:
            self._total += len(data) - self._files.pop(name, 0)
            self._files[name] = len(data)
            while self._total > self.max_bytes and len(self._files) > 1:
                old, size = self._files.popitem(last=False)
                self._total -= size
                (self.folder / old).unlink(missing_ok=True)

    @property
    def total(self) -> int:
        """Bytes of the cached files this cache knows."""
        return self._total


def stamp(path: Path) -> tuple[str, int, int]:
    """What a product of ``path`` depends on: the resolved path, size and modification time."""
    info = path.stat()
    return str(path), info.st_size, info.st_mtime_ns


class Products:
    """Browser-ready images, thumbnails and score-map heat maps of resolved files, made once and cached. Thread-safe:
    one product is made once however many requests ask for it, at most a few decodes run at a time, and one score map
    at a time (the model is loaded once, on the first map, from ``model``; ``None``: no maps)."""

    def __init__(self, cache: ViewCache, model: Path | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS):
        self.cache = cache
        self.model_path = model
        self.max_pixels = max_pixels
        self._decodes = threading.BoundedSemaphore(WORKERS)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._map_lock = threading.Lock()
        self._formats: dict[tuple, str | Refused | None] = {}  # stamp -> browser format (None: convert) or refusal
        self._model = None
        self._model_error: str | None = None

    def _made(self, name: str, make) -> BinaryIO:
        """The cached file ``name`` open for reading, made by ``make()`` (bytes) if missing; one maker per name at a
        time (the others wait for it and read its file)."""
        found = self.cache.open(name)
        if found is not None:
            return found
        with self._locks_lock:
            lock = self._locks.setdefault(name, threading.Lock())
        try:
            with lock:
                found = self.cache.open(name)
                if found is not None:
                    return found
                data = make()
                self.cache.put(name, data)
                return io.BytesIO(data)
        finally:
            with self._locks_lock:
                self._locks.pop(name, None)

    def image(self, path: Path) -> tuple[BinaryIO, str]:
        """(open file to send, Content-Type): ``path`` itself for a browser format, else a cached PNG of it."""
        fmt = self._format(path)
        if fmt is not None:
            try:
                return open(path, "rb"), BROWSER_FORMATS[fmt][0]
            except FileNotFoundError:
                raise Refused(404, "no such image") from None
        return self._made(ViewCache.key("image", *stamp(path)), lambda: self._converted(path)), "image/png"

    def _format(self, path: Path) -> str | None:
        """:func:`browser_format`, its answer (or refusal) kept for this version of the file: a PNG's chunks are read
        once, not on every request."""
        try:
            key = stamp(path)
        except OSError:
            raise Refused(404, "no such image") from None
        known = self._formats.get(key, _UNKNOWN)
        if known is _UNKNOWN:
            try:
                known = browser_format(path, self.max_pixels)
            except Refused as exc:
                known = exc
            with self._locks_lock:
                self._formats[key] = known
        if isinstance(known, Refused):
            raise Refused(known.status, known.message)
        return known

    def _converted(self, path: Path) -> bytes:
        with self._decodes:
            return png_bytes(_rgb8(_load(path, self.max_pixels)))

    def thumbnail(self, path: Path) -> BinaryIO:
        """An open, cached PNG of ``path`` whose longest side is at most :data:`THUMB_SIDE`."""
        return self._made(ViewCache.key("thumb", THUMB_SIDE, *stamp(path)), lambda: self._thumb(path))

    def _thumb(self, path: Path) -> bytes:
        with self._decodes:
            picture = Image.fromarray(_rgb8(_load(path, self.max_pixels)))
            picture.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
            buf = io.BytesIO()
            picture.save(buf, format="PNG", optimize=False)
            return buf.getvalue()

    def copy_image(self, path: Path, target_stem: Path) -> Path:
        """``path`` as a browser-ready file ``target_stem.<png|jpg|gif|webp>`` (the static export); returns it."""
        source, content_type = self.image(path)
        suffix = next(s for t, s in BROWSER_FORMATS.values() if t == content_type)
        target = target_stem.with_name(f"{target_stem.name}.{suffix}")
        with source, atomic_write(target, "wb") as f:
            while chunk := source.read(CHUNK):
                f.write(chunk)
        return target

    # -- score maps ---------------------------------------------------------------------------------------------
    def map_values(self, ref: Path, dist: Path) -> np.ndarray:
        """PRFNet's score map (H, W) float32 >= 0 of ``dist`` against ``ref`` (cached); :class:`Refused` 404 when no
        model is available, 422 for images it cannot compare."""
        if self.model_path is None:
            raise Refused(404, "score maps are not available: this output set has no model")
        name = ViewCache.key("mapv", *stamp(ref), *stamp(dist), *stamp(self.model_path))
        with self._made(name, lambda: self._computed(ref, dist)) as f:
            try:
                return np.load(f, allow_pickle=False)
            except (OSError, ValueError):  # damaged: made again
                pass
        data = self._computed(ref, dist)
        self.cache.put(name, data)
        return np.load(io.BytesIO(data), allow_pickle=False)

    def _computed(self, ref: Path, dist: Path) -> bytes:
        with self._map_lock:  # one map at a time: a model's forward pass uses every core already
            model = self._loaded()
            x, y = _load(ref, self.max_pixels), _load(dist, self.max_pixels)
            if x.shape != y.shape:
                raise Refused(422, f"the images differ in size ({x.shape[-1]}x{x.shape[-2]} and "
                                   f"{y.shape[-1]}x{y.shape[-2]}): no score map")  # fmt: skip
            import torch

            try:
                with torch.inference_mode():
                    values = model.score_map(x, y)[0, 0].float().cpu().numpy()
            except PRFNetError as exc:
                raise Refused(422, f"no score map: {_tail(exc)}") from None
        buf = io.BytesIO()
        np.save(buf, values.astype(np.float32), allow_pickle=False)
        return buf.getvalue()

    def _loaded(self):
        if self._model is None and self._model_error is None:
            from ..model.loading import load_model  # the model room, and torch, at the first score map

            try:
                self._model = load_model(self.model_path, device="cpu")
            except PRFNetError as exc:
                self._model_error = f"score maps are not available: {' '.join(str(exc).split())[:300]}"
        if self._model is None:
            raise Refused(404, self._model_error or "score maps are not available")
        return self._model

    def heat_map_png(self, ref: Path, dist: Path, scale: float | None) -> tuple[bytes, dict[str, float]]:
        """(RGBA PNG of the map, {scale, p99, max, mean}); ``scale``: the value of full colour (default: the map's
        99th percentile)."""
        values = self.map_values(ref, dist)
        p99 = map_scale(values)
        used = p99 if scale is None else scale
        info = {"scale": used, "p99": p99, "max": float(values.max()), "mean": float(values.mean())}
        name = ViewCache.key("map", *stamp(ref), *stamp(dist), *stamp(self.model_path), repr(used))
        with self._made(name, lambda: png_bytes(heat_map(values, used))) as f:
            return f.read(), info
