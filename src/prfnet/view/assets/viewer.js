/* prfnet view, the core: loads the document, builds every URL, routes the location hash to a view and hands the
   keys to the view on screen. The views live in table.js (triplets), compare.js (the zoom / flicker / map viewer)
   plots.js (RD curves, MOS scatter) and tune.js (tune sets); index.html loads them before this file, all on the namespace below. */
"use strict";

(function (V) {
  // ---- DOM helpers --------------------------------------------------------------------------------------------

  V.$ = (selector) => document.querySelector(selector);

  /** An element with attributes (`class`, `dataset`, `on<event>` and plain ones) and children (nodes or text). */
  V.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  };

  /** A number with `digits` decimals, or a dash when unknown. */
  V.num = (x, digits = 2) => (x == null || !Number.isFinite(Number(x)) ? "\u2014" : Number(x).toFixed(digits));

  V.status = function (message, isError = false) {
    const box = V.$("#status");
    box.textContent = message || "";
    box.classList.toggle("error", Boolean(isError));
  };

  // ---- the document and its URLs ------------------------------------------------------------------------------

  V.doc = null;
  V.token = new URLSearchParams(location.search).get("token");
  V.isStatic = false;

  /** `url` with the server's token appended (server mode); unchanged in a static export. */
  V.withToken = function (url) {
    if (!V.token) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(V.token);
  };

  const staticPart = (name) => (V.doc.static && V.doc.static[name]) || {};

  V.imageUrl = (id) => (V.isStatic ? staticPart("images")[id] : V.withToken("image/" + encodeURIComponent(id)));

  V.thumbUrl = (id) =>
    V.isStatic
      ? staticPart("thumbs")[id] || staticPart("images")[id]
      : V.withToken("thumb/" + encodeURIComponent(id));

  /** The score map of (ref, dist): the server's map route (optionally on a given colour scale), the precomputed
   *  file of a static export (`static.maps["<ref>/<dist>"]`), or null. */
  V.mapUrl = function (ref, dist, scale) {
    if (V.isStatic) return staticPart("maps")[ref + "/" + dist] || null;
    const query = scale == null ? "" : "?scale=" + encodeURIComponent(scale);
    return V.withToken("map/" + encodeURIComponent(ref) + "/" + encodeURIComponent(dist) + query);
  };

  /** {ok, text}: whether score maps can be shown here, and how they are made (or why not). */
  V.mapsInfo = function () {
    const maps = V.doc.maps || {};
    if (V.isStatic) {
      const some = Object.keys(staticPart("maps")).length > 0;
      if (!some) return { ok: false, text: maps.why || "score maps need `prfnet view OUT` (a server)" };
      return { ok: true, text: maps.how || "precomputed in this export" };
    }
    if (maps.available) return { ok: true, text: maps.how || "computed on demand by the server" };
    return { ok: false, text: maps.why || maps.how || maps.reason || "score maps are not available for this run" };
  };

  V.metricLabel = function (name) {
    const all = (V.doc.metrics || []).concat((V.doc.rd && V.doc.rd.metrics) || []);
    const found = all.find((m) => m.name === name);
    return found ? found.label || found.name : name;
  };

  V.imageName = (id) => (V.doc.images[id] && V.doc.images[id].name) || id;

  async function loadDocument() {
    if (window.PRFNET_VIEW) {
      V.isStatic = true;
      return window.PRFNET_VIEW;
    }
    let response;
    try {
      response = await fetch(V.withToken("view.json"), { cache: "no-store" });
    } catch (err) {
      throw new Error(
        "no document: view.js is missing next to index.html (static export), and view.json cannot be fetched " +
          "(open the URL `prfnet view` printed, with its ?token=...)"
      );
    }
    if (!response.ok) throw new Error("view.json: HTTP " + response.status + " (is the token of the URL right?)");
    return response.json();
  }

  // ---- the facts line of an item on the compare page ----------------------------------------------------------

  const fact = (name, ...value) => V.el("span", { class: "fact" }, V.el("b", {}, name), " ", ...value);

  V.facts = {
    triplet(row) {
      const judges = row.votes == null ? "" : row.votes + " judgments \u00b7 ";
      const chips = V.doc.metrics.map((m) => {
        const decision = row.decisions ? row.decisions[m.name] : null;
        const verdict = V.table.verdict(row, m.name);
        const mark = { agree: " \u2713", disagree: " \u2717", tie: " ?" }[verdict] || "";
        const text = m.label + " " + (decision || "\u2014") + mark;
        return V.el("span", { class: "chip " + verdict, dataset: { metric: m.name } }, text);
      });
      return V.el(
        "div",
        { class: "facts" },
        fact("reference", row.group || V.imageName(row.ref)),
        row.kind != null && fact("kind", row.kind),
        row.p_a == null && row.votes == null && row.majority == null
          ? fact("judges", "none in this set")
          : fact("judges", judges + "A chosen " + V.num(row.p_a) + " \u00b7 majority " + (row.majority || "\u2014")),
        row.prfnet_p != null && fact("PRFNet", "P(A closer) " + V.num(row.prfnet_p)),
        V.el("span", { class: "chips" }, chips)
      );
    },

    rd(point, item) {
      const others = V.doc.rd.points.filter((p) => p.codec === point.codec && p.rate_point === point.rate_point);
      const values = others.map((p) => {
        const same = p.items.find((it) => it.image === item.image && it.decoded === item.decoded);
        return same ? V.metricLabel(p.metric) + " " + V.num(same.value, 4) : null;
      });
      return V.el(
        "div",
        { class: "facts" },
        fact("codec", point.codec + " " + point.rate_point),
        fact("image", item.image || V.imageName(item.orig)),
        fact("bpp", V.num(item.bpp, 4)),
        fact("this image", values.filter(Boolean).join(" \u00b7 ")),
        fact("curve point", "mean of " + point.items.length + " images: " + V.num(point.bpp, 4) + " bpp, " +
          V.num(point.value, 4))
      );
    },

    tune(row, codec) {
      const metric = V.metricLabel(V.doc.tune.metric.name);
      const c = row.cells[codec];
      const saved = c.saved_percent == null ? "" : " \u00b7 bits saved " + V.tune.pct(c.saved_percent);
      return V.el(
        "div",
        { class: "facts" },
        fact("target", metric + " " + V.tune.aim() + ": " + V.num(row.target, 4)),
        row.match && fact("match " + row.match.label, metric + " " + V.num(row.match.distance, 4)),
        fact(codec + " " + c.label, metric + " " + V.num(c.distance, 4) + " \u00b7 " + c.status + " \u00b7 " +
          c.encodes + (c.encodes === 1 ? " encode" : " encodes") + saved)
      );
    },

    mos(point) {
      const scores = Object.entries(point.scores || {}).map(([m, v]) => V.metricLabel(m) + " " + V.num(v, 4));
      return V.el(
        "div",
        { class: "facts" },
        fact(V.doc.mos.mos_label || "MOS", V.num(point.mos, 3)),
        fact("scores", scores.join(" \u00b7 "))
      );
    },
  };

  // ---- routes: #/ (overview), #/t/<id>, #/rd/<metric>/<codec>/<rate point>/<item>, #/m/<id>, #/tune/<codec>/<row> --

  V.current = null; // the view on screen: an object with `section`, and optionally `leave()` and `onKey(event)`

  V.show = function (view) {
    if (V.current && V.current !== view && V.current.leave) V.current.leave();
    V.current = view;
    for (const id of ["list-view", "rd-view", "mos-view", "tune-view", "compare-view"]) V.$("#" + id).hidden = id !== view.section;
  };

  V.go = (hash) => {
    location.hash = hash;
  };

  function overview() {
    return { triplets: V.table, rd: V.rd, mos: V.mos, tune: V.tune }[V.doc.kind];
  }

  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
    V.hideTooltip();
    V.status("");
    if (parts[0] === "t" && V.doc.kind === "triplets" && parts.length === 2) return V.compare.openTriplet(parts[1]);
    if (parts[0] === "rd" && V.doc.kind === "rd" && parts.length === 5) return V.compare.openRd(...parts.slice(1));
    if (parts[0] === "m" && V.doc.kind === "mos" && parts.length === 2) return V.compare.openMos(parts[1]);
    if (parts[0] === "tune" && V.doc.kind === "tune" && parts.length === 3) return V.compare.openTune(...parts.slice(1));
    return overview().enter();
  }

  V.back = () => V.go("#/");

  // ---- keys: the view on screen handles them, unless the user types in a field --------------------------------

  function onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = target.tagName;
    const control = tag === "INPUT" ? target.type : "";
    const field = tag === "INPUT" && control !== "checkbox" && control !== "range";
    const typing = tag === "TEXTAREA" || tag === "SELECT" || field;
    if (typing && event.key !== "Escape") return;
    if (control === "range" && event.key.length > 1 && event.key !== "Escape") return; // arrows, Home, End: slider
    if (V.current && V.current.onKey && V.current.onKey(event)) event.preventDefault();
  }

  // A clicked button or checkbox gives the focus back, so that space and the letters reach the viewer.
  function releaseFocus(event) {
    const control = event.target.closest && event.target.closest("button, input[type=checkbox]");
    if (control) control.blur();
  }

  // ---- the test and scripting hooks ---------------------------------------------------------------------------

  window.prfnetView = {
    transform: () => V.compare.transform(),
    shown: () => V.compare.shown(),
    imageCoordAt: (panelId, clientX, clientY) => V.compare.imageCoordAt(panelId, clientX, clientY),
    layout: () => V.compare.layout(),
    imageId: (slot) => V.compare.imageId(slot),
    imageUrl: (slot) => V.compare.imageUrl(slot),
    ready: () => V.compare.ready(),
    mapState: () => V.compare.mapState(),
    fitAt: (metric, x) => V.mos.fitAt(metric, x),
    view: () => (V.current ? V.current.section : null),
  };

  // ---- start --------------------------------------------------------------------------------------------------

  function header() {
    const doc = V.doc;
    document.title = "prfnet view: " + (doc.title || doc.kind);
    V.$("#title").textContent = doc.title || "";
    V.$("#source").textContent = (doc.source && doc.source.command) || "";
    V.$("#mode-badge").textContent = V.isStatic ? "static export" : "server";
  }

  async function start() {
    try {
      V.doc = await loadDocument();
    } catch (err) {
      V.status(err.message, true);
      return;
    }
    if (V.doc.format !== "prfnet-view" || !overview()) {
      V.status("this is not a prfnet view document of a known kind (format " + V.doc.format + ")", true);
      return;
    }
    header();
    V.compare.init();
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", onKeyDown);
    document.addEventListener("click", releaseFocus);
    document.addEventListener("change", releaseFocus);
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})((window.PrfnetViewer = window.PrfnetViewer || {}));
