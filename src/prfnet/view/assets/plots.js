/* prfnet view, the plots: RD curves per metric (one colour per codec, a line through its rate points) with the
   BD-rate table, and the MOS scatter of a metric with its fitted logistic. Inline SVG; a click on a point opens
   its images in the compare viewer. */
"use strict";

(function (V) {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#5fb4ea", "#f0a53a", "#3cc095", "#e4d95a", "#d58bbd", "#e8734a", "#7d8fe8", "#b0b0b0"];
  const MARGIN = { left: 74, right: 24, top: 18, bottom: 56 };
  const HEIGHT = 460;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text != null) node.textContent = text;
    return node;
  }

  // ---- tooltip ----------------------------------------------------------------------------------------------------

  V.showTooltip = function (event, lines) {
    const tip = V.$("#tooltip");
    tip.replaceChildren(...lines.map((line) => V.el("div", {}, line)));
    tip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  };

  V.hideTooltip = () => {
    V.$("#tooltip").hidden = true;
  };

  // ---- axes -------------------------------------------------------------------------------------------------------

  /** Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi], about `count` of them. */
  function ticks(lo, hi, count = 6) {
    const raw = (hi - lo) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => (hi - lo) / s <= count) || 10 * power;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(12)));
    return { values: out, digits: Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) };
  }

  /** [lo, hi] of the values with 5 % room on each side (a single value gets +-1 or +-10 %). */
  function domain(values) {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    if (!(hi > lo)) return [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  /** Draws grid, ticks and labels into `root`; returns the scales {x(v), y(v)} and the plot box. */
  function axes(root, plotWidth, xDomain, yDomain, xLabel, yLabel) {
    const box = { left: MARGIN.left, right: plotWidth - MARGIN.right, top: MARGIN.top, bottom: HEIGHT - MARGIN.bottom };
    const x = (v) => box.left + ((v - xDomain[0]) / (xDomain[1] - xDomain[0])) * (box.right - box.left);
    const y = (v) => box.bottom - ((v - yDomain[0]) / (yDomain[1] - yDomain[0])) * (box.bottom - box.top);
    const grid = svg("g", { class: "axes" });
    const xt = ticks(xDomain[0], xDomain[1], Math.max(3, Math.floor((box.right - box.left) / 90)));
    for (const v of xt.values) {
      const label = { class: "tick", x: x(v), y: box.bottom + 18, "text-anchor": "middle" };
      grid.append(svg("line", { class: "grid", x1: x(v), x2: x(v), y1: box.top, y2: box.bottom }));
      grid.append(svg("text", label, v.toFixed(xt.digits)));
    }
    const yt = ticks(yDomain[0], yDomain[1], 6);
    for (const v of yt.values) {
      const label = { class: "tick", x: box.left - 8, y: y(v) + 4, "text-anchor": "end" };
      grid.append(svg("line", { class: "grid", x1: box.left, x2: box.right, y1: y(v), y2: y(v) }));
      grid.append(svg("text", label, v.toFixed(yt.digits)));
    }
    const [width, height] = [box.right - box.left, box.bottom - box.top];
    grid.append(svg("rect", { class: "frame", x: box.left, y: box.top, width, height }));
    const centre = (box.left + box.right) / 2;
    grid.append(svg("text", { class: "label", x: centre, y: HEIGHT - 14, "text-anchor": "middle" }, xLabel));
    const mid = (box.top + box.bottom) / 2;
    const turned = { class: "label", x: 18, y: mid, "text-anchor": "middle", transform: `rotate(-90 18 ${mid})` };
    grid.append(svg("text", turned, yLabel));
    root.append(grid);
    return { x, y, box };
  }

  function prepare(plot) {
    const width = Math.max(480, plot.parentNode.clientWidth);
    plot.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    plot.setAttribute("width", width);
    plot.setAttribute("height", HEIGHT);
    plot.replaceChildren();
    return width;
  }

  const direction = (m) => (m && m.higher_better === false ? " (lower = better)" : m ? " (higher = better)" : "");

  function fillSelect(select, metrics) {
    select.replaceChildren(...metrics.map((m) => V.el("option", { value: m.name }, m.label || m.name)));
  }

  // ---- RD -----------------------------------------------------------------------------------------------------

  const R = (V.rd = { section: "rd-view" });
  let rdBuilt = false;

  R.enter = function () {
    const rd = V.doc.rd;
    if (!rdBuilt) {
      rdBuilt = true;
      const shown = rd.metrics.filter((m) => rd.points.some((p) => p.metric === m.name));
      fillSelect(V.$("#rd-metric"), shown);
      V.$("#rd-metric").addEventListener("change", R.render);
      bdTable();
      V.$("#rd-notes").replaceChildren(...(rd.notes || []).map((n) => V.el("li", {}, n)));
    }
    V.show(R);
    R.render();
  };

  const colourOf = (codec) => PALETTE[Math.max(0, V.doc.rd.codecs.indexOf(codec)) % PALETTE.length];

  /** A codec's colour swatch and name ("jpeg (anchor)"). */
  const codecLabel = (codec) => [
    V.el("i", { class: "swatch", style: "background:" + colourOf(codec) }),
    codec + (codec === V.doc.rd.anchor ? " (anchor)" : ""),
  ];

  R.render = function () {
    const rd = V.doc.rd;
    const metric = V.$("#rd-metric").value;
    const plot = V.$("#rd-plot");
    const width = prepare(plot);
    const points = rd.points.filter((p) => p.metric === metric && Number.isFinite(p.bpp) && Number.isFinite(p.value));
    if (!points.length) return;
    const info = rd.metrics.find((m) => m.name === metric);
    const xDomain = domain(points.map((p) => p.bpp));
    const yDomain = domain(points.map((p) => p.value));
    const yLabel = V.metricLabel(metric) + direction(info);
    const scale = axes(plot, width, xDomain, yDomain, "bits per pixel (mean over images)", yLabel);
    for (const codec of rd.codecs) {
      const curve = points.filter((p) => p.codec === codec).sort((p, q) => p.bpp - q.bpp);
      const line = curve.map((p) => scale.x(p.bpp).toFixed(1) + "," + scale.y(p.value).toFixed(1)).join(" ");
      plot.append(svg("polyline", { class: "rd-line", points: line, stroke: colourOf(codec), "data-codec": codec }));
      for (const p of curve) plot.append(rdPoint(p, scale));
    }
    V.$("#rd-legend").replaceChildren(...rd.codecs.map((codec) => V.el("span", { class: "key" }, codecLabel(codec))));
  };

  function rdPoint(p, scale) {
    const attrs = { class: "rd-point", cx: scale.x(p.bpp), cy: scale.y(p.value), r: 5.5, fill: colourOf(p.codec) };
    const dot = svg("circle", attrs);
    Object.assign(dot.dataset, { metric: p.metric, codec: p.codec, ratePoint: p.rate_point });
    const lines = [
      p.codec + " \u00b7 " + p.rate_point,
      V.num(p.bpp, 4) + " bpp",
      V.metricLabel(p.metric) + " " + V.num(p.value, 4),
      "mean of " + p.items.length + " image" + (p.items.length === 1 ? "" : "s") + " \u00b7 click to compare",
    ];
    dot.addEventListener("mouseenter", (e) => V.showTooltip(e, lines));
    dot.addEventListener("mousemove", (e) => V.showTooltip(e, lines));
    dot.addEventListener("mouseleave", V.hideTooltip);
    dot.addEventListener("click", () => {
      V.hideTooltip();
      V.go("#/rd/" + [p.metric, p.codec, p.rate_point, 0].map((s) => encodeURIComponent(s)).join("/"));
    });
    return dot;
  }

  function bdCell(entry) {
    const value = entry != null && typeof entry === "object" ? entry.value : entry;
    const ci = entry && entry.ci95;
    const note = (entry && entry.note) || "";
    if (value == null) return V.el("td", { class: "num undefined", title: note }, "\u2014");
    const sign = value < 0 ? "\u2212" : value > 0 ? "+" : "";
    const text = sign + Math.abs(value).toFixed(1) + " %";
    const interval = ci ? " [" + ci.map((v) => (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(1)).join(", ") + "]" : "";
    const cls = value < 0 ? "num better" : value > 0 ? "num worse" : "num";
    return V.el("td", { class: cls, title: note }, text, V.el("small", {}, interval));
  }

  function bdTable() {
    const rd = V.doc.rd;
    const table = V.$("#bd-table");
    const metrics = rd.metrics.filter((m) => rd.bd_rate && rd.bd_rate[m.name]);
    if (!metrics.length) {
      V.$("#bd-caption").textContent = "no BD-rate in this run";
      return;
    }
    V.$("#bd-caption").textContent =
      "against " + rd.anchor + ": the change of bitrate at equal quality (negative = fewer bits), " +
      "with its 95 % interval over images";
    const names = metrics.map((m) => V.el("th", { class: "num" }, m.label || m.name));
    const head = V.el("tr", {}, V.el("th", {}, "codec"), names);
    const rows = rd.codecs.map((codec) =>
      V.el(
        "tr",
        { dataset: { codec } },
        V.el("th", {}, codecLabel(codec)),
        metrics.map((m) => bdCell(rd.bd_rate[m.name][codec]))
      )
    );
    table.replaceChildren(V.el("thead", {}, head), V.el("tbody", {}, rows));
  }

  // ---- MOS ----------------------------------------------------------------------------------------------------

  const M = (V.mos = { section: "mos-view" });
  let mosBuilt = false;

  M.enter = function () {
    const mos = V.doc.mos;
    if (!mosBuilt) {
      mosBuilt = true;
      const shown = V.doc.metrics.filter((m) => mos.points.some((p) => p.scores && p.scores[m.name] != null));
      fillSelect(V.$("#mos-metric"), shown);
      V.$("#mos-metric").addEventListener("change", M.render);
    }
    V.show(M);
    M.render();
  };

  /** +1 when the fit used the raw scores, -1 when it used them negated (a distance against MOS: docs/evaluation). */
  function orientation(metric, fit) {
    if (typeof fit.sign === "number") return fit.sign < 0 ? -1 : 1;
    if (typeof fit.same_direction === "boolean") return fit.same_direction ? 1 : -1;
    const info = V.doc.metrics.find((m) => m.name === metric);
    const mosHigher = V.doc.mos.higher_better;
    if (!info || typeof info.higher_better !== "boolean" || typeof mosHigher !== "boolean") return 1;
    return info.higher_better === mosHigher ? 1 : -1;
  }

  /** The fitted subjective score of raw metric score x, as prfnet.stats.correlation computes it: the scores are
   *  oriented, standardised ((x - mean) / std) and mapped by the VQEG logistic4 (b1 - b2) / (1 + exp(-(x - b3) /
   *  |b4|)) + b2 (or logistic5 b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5); null without a fit. */
  M.fitAt = function (metric, x) {
    const fit = V.doc.mos.fits && V.doc.mos.fits[metric];
    if (!fit || !fit.params || fit.converged === false || fit.params.some((p) => p == null)) return null;
    let z = orientation(metric, fit) * x;
    if (fit.mean != null) z = (z - fit.mean) / (fit.std || 1);
    const b = fit.params;
    if (fit.function === "logistic5") return b[0] * (0.5 - 1 / (1 + Math.exp(b[1] * (z - b[2])))) + b[3] * z + b[4];
    const e = Math.min(500, Math.max(-500, -(z - b[2]) / Math.max(Math.abs(b[3]), 1e-12)));
    return (b[0] - b[1]) / (1 + Math.exp(e)) + b[1];
  };

  M.render = function () {
    const mos = V.doc.mos;
    const metric = V.$("#mos-metric").value;
    const plot = V.$("#mos-plot");
    const width = prepare(plot);
    const points = mos.points.filter((p) => p.scores && Number.isFinite(p.scores[metric]) && Number.isFinite(p.mos));
    if (!points.length) return;
    const info = V.doc.metrics.find((m) => m.name === metric);
    const xDomain = domain(points.map((p) => p.scores[metric]));
    const yDomain = domain(points.map((p) => p.mos));
    const xLabel = V.metricLabel(metric) + direction(info);
    const scale = axes(plot, width, xDomain, yDomain, xLabel, mos.mos_label || "MOS");
    curve(plot, metric, xDomain, yDomain, scale); // under the points, which take the clicks
    for (const p of points) plot.append(mosPoint(p, metric, scale));
    const fit = (mos.fits || {})[metric];
    const srcc = fit && (fit.srocc != null ? fit.srocc : fit.srcc);
    const kind = fit && (fit.function || "logistic4");
    const text = fit && fit.summary
      ? fit.summary
      : fit
      ? "PLCC " + V.num(fit.plcc, 3) + " \u00b7 SRCC " + V.num(srcc, 3) + " \u00b7 " + kind + " fit"
      : "no logistic fit for this metric";
    V.$("#mos-fit-info").textContent = text + " \u00b7 " + points.length + " items";
  };

  function curve(plot, metric, xDomain, yDomain, scale) {
    const steps = 200;
    const path = [];
    for (let k = 0; k <= steps; k++) {
      const x = xDomain[0] + ((xDomain[1] - xDomain[0]) * k) / steps;
      const y = M.fitAt(metric, x);
      if (y == null || !Number.isFinite(y)) return;
      const clamped = Math.min(yDomain[1], Math.max(yDomain[0], y));
      path.push((k ? "L" : "M") + scale.x(x).toFixed(1) + "," + scale.y(clamped).toFixed(1));
    }
    plot.append(svg("path", { class: "fit", d: path.join("") }));
  }

  function mosPoint(p, metric, scale) {
    const dot = svg("circle", { class: "mos-point", cx: scale.x(p.scores[metric]), cy: scale.y(p.mos), r: 4.5 });
    dot.dataset.id = String(p.id);
    const lines = [
      "item " + p.id + " \u00b7 " + V.imageName(p.dist),
      "reference " + V.imageName(p.ref),
      "MOS " + V.num(p.mos, 3) + " \u00b7 " + V.metricLabel(metric) + " " + V.num(p.scores[metric], 4),
    ];
    dot.addEventListener("mouseenter", (e) => V.showTooltip(e, lines));
    dot.addEventListener("mouseleave", V.hideTooltip);
    dot.addEventListener("click", () => {
      V.hideTooltip();
      V.go("#/m/" + encodeURIComponent(p.id));
    });
    return dot;
  }

  // the plot on screen follows the width of the window
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (V.current === R) R.render();
      if (V.current === M) M.render();
    });
  });
})((window.PrfnetViewer = window.PrfnetViewer || {}));
