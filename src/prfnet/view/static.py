"""``prfnet view OUT --static DIR``: the viewer as a folder that opens from disk, without a server.

DIR gets the page (``index.html``, ``viewer.js``, ``viewer.css``), ``view.js`` (``window.PRFNET_VIEW = <document>;``:
browsers block ``fetch()`` of ``file://``), ``images/<id>.<png|jpg|gif|webp>`` (browser-ready copies: PNG, JPEG,
GIF and WebP files as they are, anything else converted to PNG), ``thumbs/<id>.png`` and, with ``maps=True``,
``maps/<ref id>-<dist id>.png``: PRFNet's score map of every pair the document names, one colour scale per reference
(the largest 99th percentile of its maps), so that A and B of a triplet, or the rate points of an RD image, compare.
The document gains ``"static": {"images": {id: path}, "thumbs": {...}, "maps": {"<ref>/<dist>": path},
"map_scales": {ref id: value}, "skipped": {id: why}}``.

DIR is one :class:`prfnet.outputs.OutputSet` (staged, published with ``manifest.json`` last): checked before any work
(writable, outside the output set, not one of the folders of its images, no file of those names that prfnet did not
write), and a second export into DIR replaces only what the first one wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..images import DEFAULT_MAX_PIXELS
from ..ioutil import atomic_write
from ..outputs import OutputSet
from .catalog import ViewData
from .images import WORKERS, Products, Refused, ViewCache, heat_map, map_scale, png_bytes, resolve_under
from .server import ASSET_TYPES, ASSETS

#: the top-level names a static export writes (and may replace in DIR)
STATIC_OUTPUTS = (*ASSET_TYPES, "view.js", "images", "thumbs", "maps")
NO_SERVER_MAPS = "score maps need `prfnet view OUT` (a server)"


def map_pairs(document: dict) -> list[tuple[str, str]]:
    """The (reference id, distorted id) pairs whose score maps the page shows, in document order, once each."""
    pairs: list[tuple[str, str]] = []
    for t in document.get("triplets") or []:
        pairs += [(t["ref"], t["a"]), (t["ref"], t["b"])]
    for point in (document.get("rd") or {}).get("points") or []:
        pairs += [(item["orig"], item["decoded"]) for item in point.get("items") or []]
    for point in (document.get("mos") or {}).get("points") or []:
        pairs.append((point["ref"], point["dist"]))
    return list(dict.fromkeys(pairs))


def _check(data: ViewData, dest: Path, maps: bool, assets: Path) -> OutputSet:
    """The export's folder and inputs, checked before any work (one-line errors)."""
    target = dest.resolve()
    out = (data.document.get("source") or {}).get("out")
    inside = [Path(out).resolve()] if out else []  # the output set itself, and below it
    for root in [*inside, *(Path(r).resolve() for r in data.roots)]:
        if target == root or root in inside and target.is_relative_to(root):
            raise OutputError(
                f"static folder {dest} lies inside {root}, which the view reads (the output set or a folder of its "
                "images): choose a folder outside it"
            )
    if maps and data.model is None:
        why = (data.document.get("maps") or {}).get("why") or "this output set has no model"
        raise ConfigError(f"--maps: no score maps can be computed for this output set ({why})")
    missing = [name for name in ASSET_TYPES if not (assets / name).is_file()]
    if missing:
        raise OutputError(f"the viewer's page is missing from this installation: {', '.join(missing)} in {assets}")
    return OutputSet(dest, STATIC_OUTPUTS).check("static folder")


def export_static(data: ViewData, dest: str | Path, *, maps: bool = False, assets: str | Path | None = None,
                  cache: ViewCache | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  progress: Callable[[str], None] | None = None) -> dict:  # fmt: skip
    """Write the viewer of ``data`` into ``dest`` (see the module doc); ``maps``: precompute every score map (needs
    ``data.model``). Returns a summary: the folder, its ``index.html``, the counts written and the ids skipped (an
    image that cannot be read is left out with its reason; the page shows it as missing)."""
    dest = Path(dest)
    assets = Path(assets) if assets is not None else ASSETS
    outputs = _check(data, dest, maps, assets)
    say = progress or (lambda message: None)
    products = Products(cache if cache is not None else ViewCache(), data.model, max_pixels)
    roots = [Path(r).resolve() for r in data.roots]
    static: dict = {"images": {}, "thumbs": {}, "maps": {}, "map_scales": {}, "skipped": {}}
    with outputs as sink:
        say(f"copying {len(data.files)} images and making their thumbnails ...")

        def one(image_id: str) -> tuple[str, str, str] | tuple[str, None, str]:
            try:
                source = resolve_under(data.files[image_id], roots)
                copied = products.copy_image(source, sink.path(f"images/{image_id}"))
                with products.thumbnail(source) as f, atomic_write(sink.path(f"thumbs/{image_id}.png"), "wb") as t:
                    t.write(f.read())
            except Refused as exc:
                return image_id, None, exc.message
            return image_id, f"images/{copied.name}", f"thumbs/{image_id}.png"

        with ThreadPoolExecutor(WORKERS) as pool:
            for image_id, image, thumb in pool.map(one, sorted(data.files)):
                if image is None:
                    static["skipped"][image_id] = thumb
                else:
                    static["images"][image_id], static["thumbs"][image_id] = image, thumb
        if maps:
            _write_maps(data, products, roots, sink, static, say)
        document = dict(data.document)
        document["maps"] = (
            {"available": True, "how": f"precomputed with {data.model} (prfnet view --static --maps)"}
            if static["maps"]
            else {"available": False, "why": NO_SERVER_MAPS}
        )
        document["static"] = static
        text = json.dumps(document, allow_nan=False, separators=(",", ":"))
        with atomic_write(sink.path("view.js"), encoding="utf-8") as f:
            f.write(f"window.PRFNET_VIEW = {text};\n")
        for name in ASSET_TYPES:
            with atomic_write(sink.path(name), "wb") as f:
                f.write((assets / name).read_bytes())
    return {
        "static": str(dest),
        "index": str(dest / "index.html"),
        "images": len(static["images"]),
        "thumbs": len(static["thumbs"]),
        "maps": len(static["maps"]),
        "skipped": static["skipped"],
    }


def _write_maps(data: ViewData, products: Products, roots: list[Path], sink: OutputSet, static: dict, say) -> None:
    """Every pair's score map, coloured on one scale per reference: the largest 99th percentile of its maps."""
    pairs = [(r, d) for r, d in map_pairs(data.document) if r in static["images"] and d in static["images"]]
    say(f"computing {len(pairs)} score maps with {data.model} ...")
    values = {}
    for ref, dist in pairs:
        try:
            values[ref, dist] = products.map_values(
                resolve_under(data.files[ref], roots), resolve_under(data.files[dist], roots)
            )
        except Refused as exc:
            static["skipped"][f"{ref}/{dist}"] = exc.message
    for (ref, _), v in values.items():
        static["map_scales"][ref] = max(static["map_scales"].get(ref, 0.0), map_scale(v))
    for (ref, dist), v in values.items():
        name = f"maps/{ref}-{dist}.png"
        with atomic_write(sink.path(name), "wb") as f:
            f.write(png_bytes(heat_map(v, static["map_scales"][ref])))
        static["maps"][f"{ref}/{dist}"] = name
