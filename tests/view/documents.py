"""View documents for the browser tests, with images made here: triplets with known decisions (and precomputed
score maps), an RD run of two codecs x three rate points whose decoded images are each one colour, a MOS run with
the project's own logistic fit; and realistic ones for the docs' screenshots (scikit-image photos coded by Pillow,
scored by prfnet's baselines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from prfnet.stats.correlation import correlations

# -- a view: the document and its files -------------------------------------------------------------------------------


@dataclass
class View:
    """What ``prfnet.view.ViewData`` holds for the page (document, image files) plus the precomputed score maps
    of a static export: ``maps[(ref id, dist id)]`` -> an RGBA PNG file, and ``map_max`` its maximum (server)."""

    document: dict
    files: dict[str, Path]
    maps: dict[tuple[str, str], Path] = field(default_factory=dict)
    map_max: dict[tuple[str, str], float] = field(default_factory=dict)


def save_images(folder: Path, images: dict[str, Image.Image]) -> dict[str, Path]:
    """Writes each image as folder/<id>.png; returns id -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for image_id, img in images.items():
        files[image_id] = folder / f"{image_id}.png"
        img.save(files[image_id])
    return files


def image_entries(images: dict[str, Image.Image], names: dict[str, str] | None = None) -> dict:
    """The document's ``images`` table: id -> {name, width, height}."""
    names = names or {}
    return {i: {"name": names.get(i, f"{i}.png"), "width": im.width, "height": im.height} for i, im in images.items()}


SIZE = (160, 120)  # width, height of the synthetic images
METRICS = [
    {"name": "prfnet", "label": "PRFNet", "higher_better": False},
    {"name": "psnr", "label": "PSNR", "higher_better": True},
    {"name": "ssim", "label": "SSIM", "higher_better": True},
]
#: distinct colours (RGB) of the decoded images of the RD document and the distorted images of the MOS document
COLOURS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
]  # fmt: skip
RED = ((230, 40, 40), (170, 20, 20))
BLUE = ((40, 60, 230), (20, 30, 170))


def checker(colours, size=SIZE) -> Image.Image:
    """A one-pixel checkerboard of two colours (nearest-neighbour zoom keeps exactly these two)."""
    w, h = size
    board = (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool)
    pixels = np.where(board[..., None], np.array(colours[1], np.uint8), np.array(colours[0], np.uint8))
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def solid(colour, size=SIZE) -> Image.Image:
    return Image.new("RGB", size, colour)


# -- triplets ---------------------------------------------------------------------------------------------------------


def triplet_row(i: int) -> dict:
    """Triplet i: reference r<g>, A a<g> (red), B b<g> (blue) with g = i % 5; the judges' majority from p_a (a tie
    every 13th); PRFNet follows the majority except every 5th triplet; PSNR always says A; SSIM says B every 3rd and
    ties every 11th."""
    g = i % 5
    votes = 4 if i % 13 == 0 else 5
    a_votes = 2 if votes == 4 else (i * 7) % 6
    p_a = a_votes / votes
    majority = "A" if p_a > 0.5 else "B" if p_a < 0.5 else "tie"
    flipped = {"A": "B", "B": "A", "tie": "A"}
    prfnet = flipped[majority] if i % 5 == 0 else (majority if majority != "tie" else "A")
    ssim = "tie" if i % 11 == 0 else "B" if i % 3 == 0 else "A"
    prfnet_p = round(0.5 + (0.45 if prfnet == "A" else -0.45) * ((i % 9) + 1) / 9, 4)
    return {
        "id": i, "ref": f"r{g}", "a": f"a{g}", "b": f"b{g}", "group": f"ref_{g}.png",
        "kind": "psnr_close" if i % 2 == 0 else "ssim_close", "p_a": p_a, "votes": votes, "majority": majority,
        "decisions": {"prfnet": prfnet, "psnr": "A", "ssim": ssim}, "prfnet_p": prfnet_p,
    }  # fmt: skip


def triplet_view(folder: Path, n: int = 250, maps: bool = False) -> View:
    """``n`` triplets over 5 references; with ``maps``, a score map per (reference, A) and (reference, B): opaque
    green (maximum 2.0 for A, 1.0 for B: the server test expects the page to ask again on one scale)."""
    images = {}
    for g in range(5):
        images[f"r{g}"] = checker(((0, 0, 0), (255, 255, 255)))
        images[f"a{g}"] = checker(RED)
        images[f"b{g}"] = checker(BLUE)
    names = {f"{s}{g}": f"{s}_{g}.png" for s in "rab" for g in range(5)}
    document = {
        "format": "prfnet-view", "version": 1, "kind": "triplets", "title": f"test triplets ({n})",
        "source": {"out": str(folder), "command": "prfnet demo --out OUT", "run_id": "test", "set": "demo"},
        "maps": {"available": maps, "how": "computed on demand with OUT/model.safetensors"}
        if maps else {"available": False, "why": "the run has no model"},
        "metrics": METRICS, "images": image_entries(images, names), "triplets": [triplet_row(i) for i in range(n)],
    }  # fmt: skip
    view = View(document, save_images(folder / "images", images))
    if maps:
        green = Image.new("RGBA", SIZE, (0, 255, 0, 255))
        green.save(folder / "map.png")
        for g in range(5):
            view.maps[f"r{g}", f"a{g}"] = view.maps[f"r{g}", f"b{g}"] = folder / "map.png"
            view.map_max[f"r{g}", f"a{g}"], view.map_max[f"r{g}", f"b{g}"] = 2.0, 1.0
    return view


# -- RD ---------------------------------------------------------------------------------------------------------------

RD_CODECS = {"jpeg": ["q10", "q50", "q90"], "webp": ["q10", "q50", "q90"]}
RD_IMAGES = ["img0", "img1"]


def rd_decoded(codec: str, rate_point: str, image: str) -> str:
    return f"d_{codec}_{rate_point}_{image}"


def rd_colour(codec: str, rate_point: str, image: str) -> tuple[int, int, int]:
    """The one colour of a decoded image."""
    k = list(RD_CODECS).index(codec) * 6 + RD_CODECS[codec].index(rate_point) * 2 + RD_IMAGES.index(image)
    return COLOURS[k]


def rd_view(folder: Path) -> View:
    images = {f"o{k}": checker(((90, 90, 90), (160, 160, 160))) for k in range(len(RD_IMAGES))}
    points = []
    for c, (codec, rates) in enumerate(RD_CODECS.items()):
        for r, rate in enumerate(rates):
            items = []
            for k, image in enumerate(RD_IMAGES):
                decoded = rd_decoded(codec, rate, image)
                images[decoded] = solid(rd_colour(codec, rate, image))
                bpp, value = 0.3 + 0.6 * r - 0.1 * c + 0.05 * k, 28.0 + 4.0 * r + 1.5 * c + 0.5 * k
                items.append({"image": image, "orig": f"o{k}", "decoded": decoded, "bpp": bpp, "value": value})
            mean = {key: float(np.mean([it[key] for it in items])) for key in ("bpp", "value")}
            points.append({"metric": "psnr-rgb", "codec": codec, "rate_point": rate, **mean, "items": items})
    metrics = [{"name": "psnr-rgb", "label": "PSNR-RGB (dB)", "higher_better": True}]
    bd = {"jpeg": {"value": 0.0, "ci95": [0.0, 0.0]}, "webp": {"value": -25.0, "ci95": [-30.1, -19.8]}}
    document = {
        "format": "prfnet-view", "version": 1, "kind": "rd", "title": "test RD: 2 codecs x 3 rate points",
        "source": {"out": str(folder), "command": "prfnet rd rd.csv --out OUT", "run_id": "test", "set": "rd"},
        "maps": {"available": False, "why": "the run has no PRFNet model"}, "metrics": metrics,
        "images": image_entries(images),
        "rd": {"anchor": "jpeg", "metrics": metrics, "codecs": list(RD_CODECS), "points": points,
               "bd_rate": {"psnr-rgb": bd}, "notes": ["a test note"]},
    }  # fmt: skip
    return View(document, save_images(folder / "images", images))


# -- MOS --------------------------------------------------------------------------------------------------------------


def mos_fit(scores, mos, same_direction: bool) -> dict:
    """The fit of ``fits[metric]`` as the project computes it (prfnet.stats.correlation), with its orientation."""
    result = correlations(scores, mos, same_direction)
    fit = result["fit"]
    return {**fit, "function": "logistic4", "plcc": result["plcc"], "srocc": result["srcc"],
            "sign": 1 if same_direction else -1}  # fmt: skip


def mos_view(folder: Path, n: int = 12) -> View:
    images = {"m_r0": checker(((60, 60, 60), (200, 200, 200))), "m_r1": checker(((80, 40, 40), (200, 160, 160)))}
    rng = np.random.default_rng(0)
    psnr = np.linspace(22.0, 42.0, n)
    mos = 1.0 + 4.0 / (1.0 + np.exp(-(psnr - 31.0) / 3.0)) + rng.normal(0.0, 0.25, n)
    distance = 1.0 / psnr + rng.normal(0.0, 0.002, n)  # lower = better, like PRFNet's distance
    points = []
    for i in range(n):
        images[f"m_d{i}"] = solid(COLOURS[i % len(COLOURS)])
        scores = {"psnr": float(psnr[i]), "prfnet": float(distance[i])}
        points.append({"id": i, "ref": f"m_r{i % 2}", "dist": f"m_d{i}", "mos": float(mos[i]), "scores": scores})
    document = {
        "format": "prfnet-view", "version": 1, "kind": "mos", "title": f"test MOS ({n} items)",
        "source": {"out": str(folder), "command": "prfnet eval mos --dataset csv", "run_id": "t", "set": "eval mos"},
        "maps": {"available": False, "why": "no model"},
        "metrics": [METRICS[1], METRICS[0]], "images": image_entries(images),
        "mos": {"points": points, "mos_label": "MOS (higher = better)", "higher_better": True,
                "fits": {"psnr": mos_fit(psnr, mos, True), "prfnet": mos_fit(distance, mos, False)}},
    }  # fmt: skip
    return View(document, save_images(folder / "images", images))


# -- realistic documents for the docs' screenshots --------------------------------------------------------------------

PHOTO_METRICS = [  # prfnet's baselines (no download), in the order of the table
    {"name": "psnr", "label": "PSNR", "higher_better": True},
    {"name": "ssim", "label": "SSIM", "higher_better": True},
    {"name": "ms_ssim", "label": "MS-SSIM", "higher_better": True},
    {"name": "gmsd", "label": "GMSD", "higher_better": False},
]


def scores(metric: str, ref: Image.Image, dists: list[Image.Image]) -> list[float]:
    """prfnet's baseline ``metric`` of (reference, distorted) for each distorted image, in one batch."""
    import torch

    from prfnet.baselines import get_metric

    def tensor(img):
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)

    batch = torch.stack([tensor(d) for d in dists])
    return [float(v) for v in get_metric(metric)(tensor(ref)[None].expand_as(batch), batch)]


def photo_triplet_view(folder: Path, photos=("astronaut", "coffee", "chelsea"), qualities=(30, 10)) -> View:
    """Triplets of scikit-image photos: A = JPEG at quality ``qualities[0]``, B at ``qualities[1]``; the decisions
    are those of prfnet's baselines on the pixels (no judges: majority and votes unknown)."""
    from prfnet.rd.example import encode, load_example_image

    images, names, rows = {}, {}, []
    for i, photo in enumerate(photos):
        ref = load_example_image(photo, max_side=512)
        images[f"r{i}"], names[f"r{i}"] = ref, f"{photo}.png"
        for slot, quality in zip("ab", qualities, strict=True):
            images[f"{slot}{i}"] = encode(ref, "jpeg", quality)[1]
            names[f"{slot}{i}"] = f"{photo}_jpeg_q{quality}.png"
        decisions = {}
        for m in PHOTO_METRICS:
            a, b = scores(m["name"], ref, [images[f"a{i}"], images[f"b{i}"]])
            better_a = a > b if m["higher_better"] else a < b
            decisions[m["name"]] = "tie" if a == b else "A" if better_a else "B"
        rows.append({"id": i, "ref": f"r{i}", "a": f"a{i}", "b": f"b{i}", "group": f"{photo}.png",
                     "kind": f"jpeg q{qualities[0]} vs q{qualities[1]}", "p_a": None, "votes": None,
                     "majority": None, "decisions": decisions, "prfnet_p": None})  # fmt: skip
    document = {
        "format": "prfnet-view", "version": 1, "kind": "triplets",
        "title": f"scikit-image photos, JPEG q{qualities[0]} (A) against q{qualities[1]} (B)",
        "source": {"out": str(folder), "command": "prfnet view OUT", "run_id": "docs", "set": "eval clic"},
        "maps": {"available": False, "why": "no model in this example"},
        "metrics": PHOTO_METRICS, "images": image_entries(images, names), "triplets": rows,
    }  # fmt: skip
    return View(document, save_images(folder / "images", images))


def photo_rd_view(folder: Path, codecs=("jpeg", "webp", "jpeg2000", "avif"), photos=None) -> View:
    """The RD example of ``prfnet rd --example`` (prfnet.rd.example: its 4 photos, or ``photos``, at 384 px, 5 rate
    points per codec) scored with PSNR-RGB and MS-SSIM-RGB, with BD-rate against JPEG and its bootstrap interval."""
    from prfnet.rd.bdrate import bd_rate_table
    from prfnet.rd.curves import RDCurves
    from prfnet.rd.example import EXAMPLE_CODECS, EXAMPLE_IMAGES, encode, load_example_image, rate_label

    metrics = {"psnr-rgb": ("psnr", "PSNR-RGB (dB)"), "ms-ssim-rgb": ("ms_ssim_rgb", "MS-SSIM-RGB")}
    photos = {name: load_example_image(name) for name in photos or EXAMPLE_IMAGES}
    images = {f"o_{name}": img for name, img in photos.items()}
    rates = {c: [rate_label(c, s) for s in EXAMPLE_CODECS[c]] for c in codecs}
    bpp = {c: np.zeros((len(photos), len(rates[c]))) for c in codecs}
    values = {m: {c: np.zeros_like(bpp[c]) for c in codecs} for m in metrics}
    items: dict = {}
    for k, (name, img) in enumerate(photos.items()):
        decoded = {}
        for c in codecs:
            for r, setting in enumerate(EXAMPLE_CODECS[c]):
                data, decoded[c, r] = encode(img, c, setting)
                images[f"d_{c}_{rates[c][r]}_{name}"] = decoded[c, r]
                bpp[c][k, r] = 8 * len(data) / (img.width * img.height)
        for m, (baseline, _) in metrics.items():
            for (c, r), value in zip(decoded, scores(baseline, img, list(decoded.values())), strict=True):
                values[m][c][k, r] = value
                items.setdefault((m, c, r), []).append(
                    {"image": name, "orig": f"o_{name}", "decoded": f"d_{c}_{rates[c][r]}_{name}",
                     "bpp": bpp[c][k, r], "value": value})  # fmt: skip
    curves = RDCurves(list(codecs), list(photos), rates, bpp, values, {m: True for m in metrics})
    table = bd_rate_table(curves, "jpeg", bootstrap=200)
    points = [
        {"metric": m, "codec": c, "rate_point": rates[c][r], "bpp": float(bpp[c][:, r].mean()),
         "value": float(values[m][c][:, r].mean()), "items": items[m, c, r]}
        for m in metrics for c in codecs for r in range(len(rates[c]))
    ]  # fmt: skip
    bd = {
        m: {c: {"value": table["bd_rate"][m][c], "ci95": table["bd_rate_ci95"][m][c]} for c in codecs} for m in metrics
    }
    info = [{"name": m, "label": label, "higher_better": True} for m, (_, label) in metrics.items()]
    document = {
        "format": "prfnet-view", "version": 1, "kind": "rd",
        "title": f"RD example: {len(photos)} scikit-image photos, {', '.join(codecs)}",
        "source": {"out": str(folder), "command": "prfnet rd --example --out OUT", "run_id": "docs", "set": "rd"},
        "maps": {"available": False, "why": "no model in this example"}, "metrics": info,
        "images": image_entries(images),
        "rd": {"anchor": "jpeg", "metrics": info, "codecs": list(codecs), "points": points, "bd_rate": bd,
               "notes": [f"BD-rate by the {table['method']} method over {table['n_images']} images; 95 % interval "
                         f"from {table['bootstrap']} bootstrap resamples of the images"]},
    }  # fmt: skip
    return View(document, save_images(folder / "images", images))
