/* prfnet view, the compare viewer: a triplet (R, A, B) or a pair (original, decoded) on canvases that share one
   transform (screen = image * scale + offset, in CSS pixels; 1:1 = one image pixel per device pixel), wheel zoom
   around the cursor, drag pan, nearest-neighbour above 1:1, flicker (r / a / b, space alternates every 500 ms)
   and PRFNet's score map drawn over A and B with an opacity slider. */
"use strict";

(function (V) {
  const C = (V.compare = { section: "compare-view" });
  const FLICKER_MS = 500;
  const MIN_SCALE = 1 / 64;
  const MAX_SCALE = 64;
  const CACHE_SIZE = 48;
  const LETTER = { ref: "R", a: "A", b: "B" };

  const cv = {
    slots: [], // ["ref", "a", "b"] (triplet) or ["ref", "a"] (pair)
    ids: {}, // slot -> image id
    urls: {}, // slot -> the URL its image was loaded from
    images: {}, // slot -> decoded image (HTMLImageElement)
    maps: {}, // slot -> score map image (ImageBitmap or HTMLImageElement) over that slot
    captions: {}, // slot -> caption text
    alternate: ["a", "b"], // what space alternates
    shown: "a", // the image of the flicker panel
    layout: "side", // "side" (a panel per image) or "flicker" (one big panel)
    t: { scale: 1, x: 0, y: 0 },
    size: null, // [width, height] of the reference the transform was set for
    mapOn: false,
    mapState: "off", // off | loading | shown | unavailable | error
    timer: null,
    seq: 0, // the load in progress: older ones are dropped
    hash: null, // the location of the item on screen
    loaded: false,
    nav: null, // {next(), prev()} of the item on screen
  };
  let canvases = {}; // ref, a, b, flicker -> canvas

  // ---- images, with a small cache so that flicker and next / previous do not reload ------------------------------

  const cache = new Map();

  function remember(key, promise) {
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
    while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value);
    return promise;
  }

  /** The decoded image at `url` (the image `id`: its name goes into an error). */
  function loadImage(url, id) {
    if (!url) return Promise.reject(new Error(V.imageName(id) + " is not in this export" + skipped(id)));
    if (cache.has(url)) return cache.get(url);
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    return remember(url, img.decode().then(() => img, () => failure(url, id)));
  }

  const skipped = (id) => {
    const why = V.doc.static && V.doc.static.skipped && V.doc.static.skipped[id];
    return why ? " (" + why + ")" : "";
  };

  /** Why an image did not load: the server's answer (status and its short error), or the file's absence. */
  async function failure(url, id) {
    let detail = "";
    if (!V.isStatic) {
      try {
        const response = await fetch(url);
        const json = (response.headers.get("Content-Type") || "").includes("json");
        const body = json ? (await response.json()).error : (await response.text()).replace(/<[^>]*>/g, " ");
        detail = " (HTTP " + response.status + ": " + String(body).replace(/\s+/g, " ").trim().slice(0, 200) + ")";
      } catch (err) {
        detail = " (the server does not answer)";
      }
    }
    throw new Error("cannot show " + V.imageName(id) + detail);
  }

  /** A score map from the server: the image, and the maximum its colours were scaled to (header X-Map-Max). */
  function fetchMap(url) {
    const key = "map:" + url;
    if (cache.has(key)) return cache.get(key);
    const done = fetch(url).then(async (response) => {
      if (!response.ok) {
        let message = "HTTP " + response.status;
        try {
          message = (await response.json()).error || message;
        } catch (err) {
          // not JSON: keep the status
        }
        throw new Error(message);
      }
      const max = parseFloat(response.headers.get("X-Map-Max"));
      return { image: await createImageBitmap(await response.blob()), max };
    });
    return remember(key, done);
  }

  // ---- drawing ----------------------------------------------------------------------------------------------------

  const ratio = () => window.devicePixelRatio || 1;

  function drawCanvas(canvas, slot) {
    const dpr = ratio();
    const width = Math.round(canvas.clientWidth * dpr);
    const height = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const img = cv.images[slot];
    canvas.dataset.image = cv.ids[slot] || "";
    canvas.dataset.state = img ? "drawn" : "empty";
    if (!img) return;
    const t = cv.t;
    ctx.setTransform(dpr * t.scale, 0, 0, dpr * t.scale, dpr * t.x, dpr * t.y);
    ctx.imageSmoothingEnabled = t.scale * dpr < 1; // pixels are pixels from 1:1 up
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(img, 0, 0);
    const map = cv.mapOn ? cv.maps[slot] : null;
    canvas.dataset.map = map ? "shown" : "hidden";
    if (map) {
      ctx.globalAlpha = Number(V.$("#map-opacity").value) / 100;
      ctx.imageSmoothingEnabled = true; // a map coarser than the image is drawn smoothly over it
      ctx.drawImage(map, 0, 0, img.naturalWidth, img.naturalHeight);
      ctx.globalAlpha = 1;
    }
  }

  function redraw() {
    if (cv.layout === "flicker") drawCanvas(canvases.flicker, cv.shown);
    else for (const slot of cv.slots) drawCanvas(canvases[slot], slot);
    V.$("#zoom-info").textContent = Math.round(cv.t.scale * ratio() * 100) + " %";
  }

  // ---- the shared transform: zoom around a point, pan, 1:1, fit ---------------------------------------------------

  /** The canvas whose size the transform is set for: the flicker panel, or the reference's panel. */
  const activeCanvas = () => (cv.layout === "flicker" ? canvases.flicker : canvases.ref);

  /** Zooms by `factor` keeping the image point under (cx, cy) (CSS pixels in the panel) where it is. */
  function zoomAt(cx, cy, factor) {
    const t = cv.t;
    let scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, t.scale * factor));
    if (Math.abs(scale * ratio() - 1) < 0.03) scale = 1 / ratio(); // snap to 1:1
    const k = scale / t.scale;
    cv.t = { scale, x: cx - (cx - t.x) * k, y: cy - (cy - t.y) * k };
    redraw();
  }

  function zoomCentre(factor) {
    const canvas = activeCanvas();
    zoomAt(canvas.clientWidth / 2, canvas.clientHeight / 2, factor);
  }

  /** The image centred in the active panel at `scale` (offsets rounded: at 1:1 every pixel lands on one pixel). */
  function centreAt(scale) {
    const canvas = activeCanvas();
    const img = cv.images.ref || cv.images.a;
    if (!img) return;
    const x = Math.round(((canvas.clientWidth - img.naturalWidth * scale) / 2) * ratio()) / ratio();
    const y = Math.round(((canvas.clientHeight - img.naturalHeight * scale) / 2) * ratio()) / ratio();
    cv.t = { scale, x, y };
    redraw();
  }

  const oneToOne = () => centreAt(1 / ratio());

  function fit() {
    const canvas = activeCanvas();
    const img = cv.images.ref || cv.images.a;
    if (img) centreAt(Math.min(canvas.clientWidth / img.naturalWidth, canvas.clientHeight / img.naturalHeight));
  }

  function attachPointer(canvas) {
    canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = canvas.getBoundingClientRect();
        const step = e.deltaMode === 1 ? 0.05 : 0.0015; // lines or pixels
        zoomAt(e.clientX - rect.left, e.clientY - rect.top, Math.exp(-e.deltaY * step));
      },
      { passive: false }
    );
    let drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY };
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add("dragging");
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      cv.t = { scale: cv.t.scale, x: cv.t.x + e.clientX - drag.x, y: cv.t.y + e.clientY - drag.y };
      drag = { x: e.clientX, y: e.clientY };
      redraw();
    });
    const stop = () => {
      drag = null;
      canvas.classList.remove("dragging");
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
  }

  // ---- layout and flicker -----------------------------------------------------------------------------------------

  function setLayout(layout) {
    if (layout === cv.layout) return;
    const before = { width: activeCanvas().clientWidth, height: activeCanvas().clientHeight };
    cv.layout = layout;
    V.$("#panels").hidden = layout === "flicker";
    V.$("#flicker-view").hidden = layout !== "flicker";
    V.$("#flicker").setAttribute("aria-pressed", String(layout === "flicker"));
    const after = activeCanvas();
    // the image point at the centre of the old panel stays at the centre of the new one
    const dx = Math.round(after.clientWidth - before.width) / 2;
    const dy = Math.round(after.clientHeight - before.height) / 2;
    cv.t = { scale: cv.t.scale, x: cv.t.x + dx, y: cv.t.y + dy };
    if (layout === "side") stopAlternate();
    showCaption();
    redraw();
  }

  function showCaption() {
    const slot = cv.shown;
    V.$("#flicker-caption").replaceChildren(V.el("b", {}, LETTER[slot]), " ", cv.captions[slot] || "");
    V.$("#flicker-caption").dataset.slot = slot;
  }

  function setShown(slot) {
    if (!cv.slots.includes(slot)) return;
    cv.shown = slot;
    setLayout("flicker");
    showCaption();
    redraw();
  }

  function stopAlternate() {
    if (cv.timer) clearInterval(cv.timer);
    cv.timer = null;
  }

  function toggleAlternate() {
    if (cv.timer) return stopAlternate();
    const [first, second] = cv.alternate;
    const flip = () => setShown(cv.shown === first ? second : first);
    flip();
    cv.timer = setInterval(flip, FLICKER_MS);
  }

  // ---- score maps -------------------------------------------------------------------------------------------------

  /** The slots that get a map: A and B of a triplet, the decoded image of a pair (never the reference). */
  const mapSlots = () => cv.slots.filter((slot) => slot !== "ref");

  function mapStatus(state, text) {
    cv.mapState = state;
    V.$("#map-info").textContent = text;
    V.$("#map-info").title = text;
    V.$("#map-info").classList.toggle("error", state === "error");
  }

  async function loadMaps() {
    const info = V.mapsInfo();
    if (!info.ok) return mapStatus("unavailable", info.text);
    const seq = cv.seq;
    const doing = V.isStatic ? "loading the score maps\u2026" : "computing the score maps\u2026 (" + info.text + ")";
    mapStatus("loading", doing);
    try {
      const maps = V.isStatic ? await staticMaps() : await serverMaps();
      if (seq !== cv.seq) return;
      cv.maps = maps;
      const which = mapSlots().map((s) => LETTER[s]).join(" and ");
      mapStatus("shown", "PRFNet's score maps of " + which + ", one colour scale; " + info.text);
    } catch (err) {
      if (seq !== cv.seq) return;
      cv.maps = {};
      mapStatus("error", "score map: " + err.message);
    }
    redraw();
  }

  async function staticMaps() {
    const maps = {};
    for (const slot of mapSlots()) {
      const url = V.mapUrl(cv.ids.ref, cv.ids[slot]);
      if (!url) throw new Error("no precomputed map for " + V.imageName(cv.ids[slot]) + " in this export");
      maps[slot] = await loadImage(url, cv.ids[slot]);
    }
    return maps;
  }

  /** The maps of A and B on one colour scale: when the server says each map's maximum and they differ, the maps
   *  are fetched again with `scale` = the larger one. */
  async function serverMaps() {
    const slots = mapSlots();
    const first = await Promise.all(slots.map((slot) => fetchMap(V.mapUrl(cv.ids.ref, cv.ids[slot]))));
    const maxima = first.map((m) => m.max);
    const shared = Math.max(...maxima);
    const rescale = slots.length > 1 && maxima.every(Number.isFinite) && maxima.some((m) => m !== shared);
    const again = (slot, k) => (maxima[k] === shared ? first[k] : fetchMap(V.mapUrl(cv.ids.ref, cv.ids[slot], shared)));
    const final = rescale ? await Promise.all(slots.map(again)) : first;
    return Object.fromEntries(slots.map((slot, k) => [slot, final[k].image]));
  }

  function setMap(on) {
    const info = V.mapsInfo();
    cv.mapOn = on && info.ok;
    V.$("#map-toggle").checked = cv.mapOn;
    if (!cv.mapOn) {
      mapStatus(info.ok ? "off" : "unavailable", info.text);
      redraw();
    } else loadMaps();
  }

  // ---- opening an item --------------------------------------------------------------------------------------------

  /** Shows `item`: {slots: {slot: image id}, captions, alternate, title, facts (a node), nav, pairItems}. */
  async function open(item) {
    V.show(C);
    stopAlternate();
    const seq = ++cv.seq;
    cv.hash = location.hash;
    cv.slots = Object.keys(item.slots);
    cv.ids = item.slots;
    cv.captions = item.captions;
    cv.alternate = item.alternate;
    V.$("#help-alternate").textContent = item.alternate.map((slot) => LETTER[slot]).join("/");
    cv.nav = item.nav;
    cv.images = {};
    cv.maps = {};
    cv.loaded = false;
    if (!cv.slots.includes(cv.shown)) cv.shown = "a";
    document.querySelector('.panel[data-slot="b"]').hidden = !cv.slots.includes("b");
    for (const slot of cv.slots) {
      const caption = document.querySelector(`.panel[data-slot="${slot}"] figcaption`);
      caption.textContent = LETTER[slot] + " \u00b7 " + cv.captions[slot];
    }
    V.$("#item-title").textContent = item.title;
    V.$("#facts").replaceChildren(item.facts);
    V.$("#pair-item-label").hidden = !item.pairItems;
    if (item.pairItems) fillPairItems(item.pairItems);
    V.$("#prev-item").disabled = !item.nav.prev;
    V.$("#next-item").disabled = !item.nav.next;
    showCaption();
    cv.urls = Object.fromEntries(cv.slots.map((slot) => [slot, V.imageUrl(cv.ids[slot])]));
    const loads = await Promise.allSettled(cv.slots.map((slot) => loadImage(cv.urls[slot], cv.ids[slot])));
    if (seq !== cv.seq) return;
    const errors = [];
    loads.forEach((load, k) => {
      if (load.status === "fulfilled") cv.images[cv.slots[k]] = load.value;
      else errors.push(load.reason.message);
    });
    V.status(errors.join(" \u00b7 "), errors.length > 0);
    placeImages();
    cv.loaded = true;
    if (cv.mapOn) loadMaps();
    else setMap(false);
    if (item.prefetch) item.prefetch.forEach((id) => loadImage(V.imageUrl(id), id).catch(() => {}));
  }

  /** Keeps the zoom and pan when the new reference has the size of the last one (next / previous within a set),
   *  else starts at 1:1, centred. */
  function placeImages() {
    const img = cv.images.ref || cv.images.a;
    const size = img ? [img.naturalWidth, img.naturalHeight] : null;
    if (size && (!cv.size || size[0] !== cv.size[0] || size[1] !== cv.size[1])) {
      cv.size = size;
      oneToOne();
    } else redraw();
  }

  function fillPairItems({ items, selected, href }) {
    const select = V.$("#pair-item");
    select.replaceChildren(...items.map((text, k) => V.el("option", { value: k }, text)));
    select.value = String(selected);
    select.onchange = () => V.go(href(Number(select.value)));
  }

  C.openTriplet = function (id) {
    const row = V.table.row(id);
    if (!row) {
      V.status("no triplet " + id, true);
      return V.table.enter();
    }
    V.table.lastId = row.id;
    const next = V.table.neighbour(row.id, 1);
    const prev = V.table.neighbour(row.id, -1);
    const go = (other) => (other == null ? null : () => V.go("#/t/" + encodeURIComponent(other)));
    const upcoming = next == null ? [] : [V.table.row(next).a, V.table.row(next).b, V.table.row(next).ref];
    return open({
      slots: { ref: row.ref, a: row.a, b: row.b },
      captions: { ref: V.imageName(row.ref), a: V.imageName(row.a), b: V.imageName(row.b) },
      alternate: ["a", "b"],
      title: "triplet " + row.id + " \u00b7 " + V.table.where(row.id),
      facts: V.facts.triplet(row),
      nav: { next: go(next), prev: go(prev) },
      prefetch: upcoming,
    });
  };

  C.openRd = function (metric, codec, ratePoint, index) {
    const point = V.doc.rd.points.find((p) => p.metric === metric && p.codec === codec && p.rate_point === ratePoint);
    const k = Number(index);
    const item = point && point.items[k];
    if (!item) {
      V.status("no such RD point: " + [metric, codec, ratePoint, index].join(" / "), true);
      return V.rd.enter();
    }
    const href = (j) => "#/rd/" + [metric, codec, ratePoint, j].map((s) => encodeURIComponent(s)).join("/");
    const go = (j) => (j >= 0 && j < point.items.length ? () => V.go(href(j)) : null);
    return open({
      slots: { ref: item.orig, a: item.decoded },
      captions: {
        ref: "original \u00b7 " + V.imageName(item.orig),
        a: codec + " " + ratePoint + " \u00b7 " + V.imageName(item.decoded),
      },
      alternate: ["ref", "a"],
      title: codec + " \u00b7 " + ratePoint + " \u00b7 " + (item.image || V.imageName(item.orig)),
      facts: V.facts.rd(point, item),
      nav: { next: go(k + 1), prev: go(k - 1) },
      pairItems: { items: point.items.map((it) => it.image || V.imageName(it.orig)), selected: k, href },
    });
  };

  C.openMos = function (id) {
    const points = V.doc.mos.points;
    const k = points.findIndex((p) => String(p.id) === String(id));
    if (k < 0) {
      V.status("no MOS item " + id, true);
      return V.mos.enter();
    }
    const point = points[k];
    const go = (j) => (j >= 0 && j < points.length ? () => V.go("#/m/" + encodeURIComponent(points[j].id)) : null);
    return open({
      slots: { ref: point.ref, a: point.dist },
      captions: { ref: "reference \u00b7 " + V.imageName(point.ref), a: "distorted \u00b7 " + V.imageName(point.dist) },
      alternate: ["ref", "a"],
      title: "item " + point.id + " \u00b7 " + V.imageName(point.dist),
      facts: V.facts.mos(point),
      nav: { next: go(k + 1), prev: go(k - 1) },
    });
  };

  C.openTune = function (codec, index) {
    const item = V.tune.item(codec, index);
    if (!item) {
      V.status("no such tune item: " + codec + " / " + index, true);
      return V.tune.enter();
    }
    return open(item);
  };

  // ---- keys -------------------------------------------------------------------------------------------------------

  C.onKey = function (event) {
    const key = event.key;
    const actions = {
      r: () => setShown("ref"),
      a: () => setShown("a"),
      b: () => setShown("b"),
      " ": toggleAlternate,
      f: () => setLayout(cv.layout === "flicker" ? "side" : "flicker"),
      m: () => setMap(!cv.mapOn),
      1: oneToOne,
      0: fit,
      "+": () => zoomCentre(1.25),
      "=": () => zoomCentre(1.25),
      "-": () => zoomCentre(0.8),
      n: () => cv.nav.next && cv.nav.next(),
      ArrowRight: () => cv.nav.next && cv.nav.next(),
      p: () => cv.nav.prev && cv.nav.prev(),
      ArrowLeft: () => cv.nav.prev && cv.nav.prev(),
      Escape: V.back,
    };
    const action = actions[key.length === 1 ? key.toLowerCase() : key];
    if (!action) return false;
    action();
    return true;
  };

  C.leave = function () {
    stopAlternate();
    cv.seq++;
  };

  // ---- hooks for tests and scripts (window.prfnetView) ------------------------------------------------------------

  C.transform = () => ({ ...cv.t });
  C.shown = () => cv.shown;
  C.layout = () => cv.layout;
  C.imageId = (slot) => cv.ids[slot] || null;
  C.imageUrl = (slot) => cv.urls[slot] || null;
  /** Whether the item of the current location is on screen, its images drawn. */
  C.ready = () => cv.loaded && cv.hash === location.hash && cv.slots.every((slot) => cv.images[slot]);
  C.mapState = () => cv.mapState;

  /** Image coordinates [x, y] under the client point (clientX, clientY) in the panel `panelId`. */
  C.imageCoordAt = function (panelId, clientX, clientY) {
    const rect = document.getElementById(panelId).getBoundingClientRect();
    return [(clientX - rect.left - cv.t.x) / cv.t.scale, (clientY - rect.top - cv.t.y) / cv.t.scale];
  };

  C.init = function () {
    canvases = {
      ref: V.$("#panel-ref"),
      a: V.$("#panel-a"),
      b: V.$("#panel-b"),
      flicker: V.$("#panel-flicker"),
    };
    const resized = new ResizeObserver(() => V.current === C && redraw());
    for (const canvas of Object.values(canvases)) {
      attachPointer(canvas);
      resized.observe(canvas);
    }
    V.$("#back").addEventListener("click", V.back);
    V.$("#next-item").addEventListener("click", () => cv.nav.next && cv.nav.next());
    V.$("#prev-item").addEventListener("click", () => cv.nav.prev && cv.nav.prev());
    V.$("#flicker").addEventListener("click", () => setLayout(cv.layout === "flicker" ? "side" : "flicker"));
    V.$("#zoom-1").addEventListener("click", oneToOne);
    V.$("#zoom-fit").addEventListener("click", fit);
    V.$("#map-toggle").addEventListener("change", (e) => setMap(e.target.checked));
    V.$("#map-opacity").addEventListener("input", redraw);
    const info = V.mapsInfo();
    V.$("#map-toggle").disabled = !info.ok;
    mapStatus(info.ok ? "off" : "unavailable", info.text);
  };
})((window.PrfnetViewer = window.PrfnetViewer || {}));
