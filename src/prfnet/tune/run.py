"""``prfnet tune``: per image, the cheapest setting of each codec whose distance meets a target, as one output set.

Target: an absolute value of the metric (``Target(value=2.5)``) or, per image, the distance of one fixed encoding of
that image (``Target(match=parse_encoding("jpeg420:q85"))``: "at least as good as JPEG q85"). The metric sees every
encode of an image against the same reference: PRFNet encodes that reference once per image
(:meth:`prfnet.scoring.metrics.PRFNetMetric.score_reference`) for the match encoding and every codec's search.

Outputs (``OUT``, one set with ``manifest.json``): ``files/<codec>/<image><ext>`` (the chosen bitstreams),
``files/match/<image><ext>`` (the ``--match`` encoding's bitstreams), ``files/original/<image>.png`` (the inputs of
``--example``, which are no files of their own: so that ``prfnet view`` can show every encode against them),
``tune.csv`` (one row per image and codec), ``tune.json`` (the summary: per image, per codec, and the totals with
95 % bootstrap intervals over images) and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data._files import IMAGE_SUFFIXES
from ..errors import ConfigError, InputError
from ..images import image_size, load_image
from ..ioutil import atomic_write
from ..outputs import OutputSet
from ..stats.bootstrap import bootstrap_ci
from ..synth.codecs import get_codec
from ..synth.photos import load_photo
from .report import write_report
from .search import MAX_ENCODES, Encoding, Trial, encode_once, setting_label, tune_image

log = logging.getLogger(__name__)

TUNE_OUTPUTS = ("tune.json", "tune.csv", "files", "report.html")
CSV_COLUMNS = ("image", "codec", "status", "setting", "bpp", "bytes", "distance", "target", "encodes", "converged",
               "violations", "match_bpp", "saved_percent", "file")  # fmt: skip
#: the default codecs of ``prfnet tune`` (those usable here are used)
DEFAULT_TUNE_CODECS = ("jpeg420", "webp", "avif", "jpegxl")
#: scikit-image photos of ``prfnet tune --example`` (gray ones converted to RGB), scaled to 384 px on the long side
EXAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "camera")  # fmt: skip


@dataclass(frozen=True)
class Target:
    """Exactly one of ``value`` (the metric's raw value to meet) and ``match`` (an encoding whose distance, per
    image, is the target)."""

    value: float | None = None
    match: Encoding | None = None

    def __post_init__(self):
        if (self.value is None) == (self.match is None):
            raise ConfigError("give exactly one target: --target VALUE or --match CODEC:SETTING (e.g. jpeg420:q85)")
        if self.value is not None and not np.isfinite(self.value):
            raise ConfigError(f"--target must be a finite number, got {self.value}")

    def as_dict(self) -> dict:
        if self.match is not None:
            return {"kind": "match", "encoding": self.match.label}
        return {"kind": "value", "value": float(self.value)}


@dataclass(frozen=True)
class TuneImage:
    """An input: its unique ``name`` (the stem of its output files), a loader of its uint8 (H, W, 3) pixels and its
    ``file`` (``None`` for an image made in memory, such as the example photos)."""

    name: str
    source: str
    size: tuple[int, int]  # (width, height)
    load: Callable[[], np.ndarray]
    file: Path | None = None


def _pixels_of(path: Path, max_pixels: int | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        x = load_image(path, max_pixels=max_pixels, keep_8bit=True)[0].permute(1, 2, 0).numpy()
        if x.dtype != np.uint8:  # 16-bit or float samples: the codecs code 8 bits
            log.warning("%s: quantised to 8 bits for the codecs", path)
            x = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.ascontiguousarray(x)

    return load


def file_images(paths: Sequence[str | Path], max_pixels: int | None = None) -> list[TuneImage]:
    """The image files among ``paths`` (a folder: its image files, sorted, not recursive), each checked from its
    header (:class:`~prfnet.errors.ImageReadError` for a missing or unreadable one); names made unique in order."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += found
        else:
            files.append(path)
    if not files:
        raise ConfigError("no images: give image files or folders, or --example")
    images, used = [], set()
    for path in files:
        size = image_size(path)  # missing or not an image: one line, before any work
        if max_pixels and size[0] * size[1] > max_pixels:
            raise InputError(f"{path}: {size[0]}x{size[1]} pixels is above the limit of {max_pixels} (--max-pixels)")
        name, n = path.stem, 1
        while name in used:
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name)
        images.append(TuneImage(name, str(path), size, _pixels_of(path, max_pixels), path.resolve()))
    return images


def example_images(names: Sequence[str] = EXAMPLE_PHOTOS, max_side: int = 384) -> list[TuneImage]:
    """The scikit-image photos of ``prfnet tune --example`` (loaded when the run reaches them)."""
    images = []
    for name in names:
        img = load_photo(name, max_side)
        pixels = np.asarray(img, dtype=np.uint8)
        images.append(TuneImage(name, f"skimage.data.{name}()", img.size, lambda p=pixels: p))
    return images


def check_images(images: Sequence[TuneImage], codecs: Sequence[str], min_side: int) -> None:
    """:class:`InputError` (one line) for an image a codec cannot store or the metric cannot score, before any work."""
    for image in images:
        width, height = image.size
        if min(width, height) < min_side:
            raise InputError(f"{image.source}: {width}x{height} is below the metric's minimum side of {min_side} px")
        for name in codecs:
            codec = get_codec(name)
            if codec.max_side and max(width, height) > codec.max_side:
                raise InputError(f"{image.source}: {width}x{height} is larger than {name} stores "
                                 f"({codec.max_side} px per side); leave {name} out (--codecs)")  # fmt: skip


def _write_original(outputs: OutputSet, image: TuneImage, pixels: np.ndarray) -> str:
    """The input's path as the set names it: its own file (absolute), or ``files/original/<name>.png`` written
    losslessly for an image made in memory."""
    if image.file is not None:
        return str(image.file)
    file = f"files/original/{image.name}.png"
    with atomic_write(outputs.path(file), "wb") as f:
        Image.fromarray(pixels).save(f, format="PNG")
    return file


def _distance_of(metric, key: str, reference: np.ndarray) -> Callable[[np.ndarray], float]:
    """``distance(decoded uint8 (H, W, 3))`` -> the metric's raw value against ``reference``; PRFNet keeps the
    reference's features between calls (:meth:`~prfnet.scoring.metrics.PRFNetMetric.score_reference`)."""
    import torch

    def tensor(pixels: np.ndarray) -> torch.Tensor:
        pixels = np.ascontiguousarray(pixels)
        return torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy()).permute(2, 0, 1).unsqueeze(0)

    ref = tensor(reference)
    score_reference = getattr(metric, "score_reference", None)
    if score_reference is not None:
        return lambda decoded: float(score_reference(key, ref, tensor(decoded))[0])
    return lambda decoded: float(metric(ref, tensor(decoded))[0])


def _trial_fields(trial: Trial) -> dict:
    return {"setting": trial.setting, "bpp": trial.bpp, "bytes": trial.bytes, "distance": trial.distance}


def _over_images(per_image: list[np.ndarray], statistic, n_boot: int) -> dict | None:
    """``statistic`` of the images' rows (one array per image) with its 95 % bootstrap interval resampling images
    (``low``/``high`` None with ``n_boot`` 0; ``None`` without images)."""
    if not per_image:
        return None
    if n_boot < 1:
        return {"estimate": float(statistic(np.concatenate(per_image))), "low": None, "high": None,
                "n_images": len(per_image)}  # fmt: skip
    ci = bootstrap_ci(per_image, statistic, n_boot=n_boot, seed=0)
    return {"estimate": ci.estimate, "low": ci.low, "high": ci.high, "level": ci.level, "n_images": ci.n_groups,
            "n_boot": ci.n_boot}  # fmt: skip


def _saved(codec_bytes: np.ndarray, match_bytes: np.ndarray, n_boot: int) -> dict | None:
    """% of the match encoding's bytes saved over the images, 100 (1 - sum(codec) / sum(match)), with its interval."""

    def saved(x: np.ndarray) -> float:
        return 100.0 * (1.0 - x[:, 0].sum() / x[:, 1].sum())

    pairs = [np.array([[c, m]], dtype=np.float64) for c, m in zip(codec_bytes, match_bytes, strict=True)]
    return _over_images(pairs, saved, n_boot)


def _mean_bpp(bpp: np.ndarray, n_boot: int) -> dict | None:
    return _over_images([np.array([b]) for b in bpp], np.mean, n_boot)


def totals(rows: list[dict], codecs: Sequence[str], matched: bool, n_boot: int) -> dict:
    """Per codec: images that met the target, the mean encodes, the violations seen, the mean bpp of the met ones,
    and (``--match``) the bits saved against the match encoding over the images where the codec met the target."""
    out = {}
    for codec in codecs:
        mine = [r for r in rows if r["codec"] == codec]
        met = [r for r in mine if r["status"] == "met"]
        entry = {
            "n_images": len(mine),
            "n_met": len(met),
            "n_unreachable": len(mine) - len(met),
            "mean_encodes": float(np.mean([r["encodes"] for r in mine])) if mine else None,
            "violations": int(sum(r["violations"] for r in mine)),
            "mean_bpp": _mean_bpp(np.array([r["bpp"] for r in met]), n_boot),
        }
        if matched:
            entry["bits_saved_percent"] = _saved(
                np.array([r["bytes"] for r in met]), np.array([r["match_bytes"] for r in met]), n_boot
            )
        out[codec] = entry
    return out


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r["image"], r["codec"], r["status"], r["label"], f"{r['bpp']:.6f}", r["bytes"],
                         f"{r['distance']:.8g}", f"{r['target']:.8g}", r["encodes"], int(r["converged"]),
                         r["violations"], "" if r.get("match_bpp") is None else f"{r['match_bpp']:.6f}",
                         "" if r.get("saved_percent") is None else f"{r['saved_percent']:.3f}", r["file"]])  # fmt: skip
    return buf.getvalue()


def run_tune(
    images: Sequence[TuneImage],
    codecs: Sequence[str],
    metric,
    target: Target,
    outputs: OutputSet,
    max_encodes: int = MAX_ENCODES,
    bootstrap: int = 1000,
    inputs: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Tune every image with every codec; write the set into ``outputs`` (checked already); return the summary.

    ``metric``: a metric object (``name``, ``higher_better``, ``metric(ref, dist)``; PRFNet's has
    ``score_reference``). Raises before writing anything on an unusable codec or image; an encode the codec refuses
    mid-run is an :class:`InputError` and the folder keeps its previous set.
    """
    codecs = list(dict.fromkeys(codecs))
    for name in codecs:
        get_codec(name)  # CodecUnavailable (one line) before any work
    check_images(images, codecs, int(getattr(metric, "min_side", 1) or 1))
    higher_better = bool(metric.higher_better)
    rows, per_image = [], []
    with outputs:
        for i, image in enumerate(images, 1):
            pixels = image.load()
            distance = _distance_of(metric, f"{i}:{image.name}", pixels)
            match, match_data = encode_once(pixels, target.match, distance) if target.match else (None, b"")
            value = match.distance if match is not None else float(target.value)
            entry = {"image": image.name, "source": image.source, "width": image.size[0], "height": image.size[1],
                     "original": _write_original(outputs, image, pixels), "target": value,
                     "match": None, "codecs": {}}  # fmt: skip
            if match is not None:
                file = f"files/match/{image.name}{get_codec(target.match.codec).extension}"
                with atomic_write(outputs.path(file), "wb") as f:
                    f.write(match_data)
                entry["match"] = _trial_fields(match) | {"file": file}
            for name in codecs:
                result = tune_image(pixels, name, distance, value, higher_better, max_encodes)
                file = f"files/{name}/{image.name}{get_codec(name).extension}"
                with atomic_write(outputs.path(file), "wb") as f:
                    f.write(result.data)
                row = {"image": image.name, "codec": name, "status": result.status,
                       "label": setting_label(get_codec(name), result.chosen.setting), **_trial_fields(result.chosen),
                       "target": value, "encodes": result.encodes, "converged": result.converged,
                       "violations": result.violations, "file": file,
                       "tried": [_trial_fields(t) for t in result.trials]}  # fmt: skip
                if match is not None:
                    row.update(match_bpp=match.bpp, match_bytes=match.bytes,
                               saved_percent=100.0 * (1.0 - result.chosen.bytes / match.bytes))  # fmt: skip
                rows.append(row)
                entry["codecs"][name] = {k: v for k, v in row.items() if k not in ("image", "codec")}
                if progress is not None:
                    progress(f"{image.name} {name}: {row['label']} {row['bpp']:.3f} bpp ({result.status}, "
                             f"{result.encodes} encodes)")  # fmt: skip
            per_image.append(entry)
            getattr(metric, "forget_reference", lambda: None)()
        summary = {
            "metric": {"name": metric.name, "higher_better": higher_better, "about": getattr(metric, "about", "")},
            "target": target.as_dict(),
            "codecs": codecs,
            "max_encodes": max_encodes,
            "n_images": len(images),
            "inputs": inputs or {},
            "totals": totals(rows, codecs, target.match is not None, bootstrap),
            "images": per_image,
            "outputs": {k: str(outputs.final(k)) for k in ("tune.json", "tune.csv", "report.html")}
            | {"files": str(outputs.final("files"))},
        }
        with atomic_write(outputs.path("tune.csv"), encoding="utf-8") as f:
            f.write(_csv_text(rows))
        write_report(summary, outputs.path("report.html"))
        with atomic_write(outputs.path("tune.json"), encoding="utf-8") as f:
            json.dump(summary, f, indent=1, allow_nan=False)
            f.write("\n")
    return summary
