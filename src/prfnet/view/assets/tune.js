/* prfnet view, tune sets (`prfnet tune`): each codec's totals (images that met the target, mean bpp and bits saved
   with their 95 % intervals) and one row per image with the --match encode and each codec's chosen setting; a cell
   opens the original, the match encode (A) and that codec's choice (B) in the compare viewer, so that "as close
   as JPEG q85 in this metric" can be flickered. */
"use strict";

(function (V) {
  const T = (V.tune = { section: "tune-view" });
  let built = false;

  T.pct = (x) => (x == null ? "\u2014" : (x < 0 ? "\u2212" : "+") + Math.abs(x).toFixed(1) + " %");
  const interval = (e, digits, unit = "") =>
    e && e.low != null ? " [" + V.num(e.low, digits) + unit + ", " + V.num(e.high, digits) + unit + "]" : "";

  /** Bits saved against the match encode, as the CLI's table counts them ("saves 38.8 %", "costs 4.0 % more"). */
  const savedText = (x) => (x >= 0 ? "saves " + x.toFixed(1) + " %" : "costs " + (-x).toFixed(1) + " % more");

  /** The target in words: "as close as jpeg420:q85" or ">= 35" in the metric's direction. */
  T.aim = function () {
    const tune = V.doc.tune;
    if (tune.target.kind === "match") return "as close as " + tune.target.encoding;
    return (tune.metric.higher_better ? "\u2265 " : "\u2264 ") + tune.target.value;
  };

  function totalsTable() {
    const tune = V.doc.tune;
    const matched = tune.target.kind === "match";
    const names = ["codec", "met", "mean bpp [95 %]", matched && "bits saved [95 %]"].filter(Boolean);
    const head = V.el("tr", {}, names.map((t) => V.el("th", {}, t)));
    const rows = tune.codecs.map((codec) => {
      const t = tune.totals[codec] || {};
      const bpp = t.mean_bpp || {};
      const saved = t.bits_saved_percent;
      return V.el(
        "tr",
        { dataset: { codec } },
        V.el("th", {}, codec),
        V.el("td", { class: "num" }, (t.n_met ?? "\u2014") + "/" + (t.n_images ?? "\u2014")),
        V.el("td", { class: "num" }, V.num(bpp.estimate, 3), V.el("small", {}, interval(bpp, 3))),
        matched &&
          V.el(
            "td",
            { class: "num" + (saved && saved.estimate > 0 ? " better" : "") },
            saved ? T.pct(saved.estimate) : "\u2014",
            V.el("small", {}, saved ? interval(saved, 1) : "")
          )
      );
    });
    V.$("#tune-totals").replaceChildren(V.el("thead", {}, head), V.el("tbody", {}, rows));
  }

  function cell(row, codec, k) {
    const c = row.cells[codec];
    if (!c) return V.el("td", { class: "num undefined" }, "\u2014");
    const href = "#/tune/" + encodeURIComponent(codec) + "/" + k;
    const saved = c.status === "unreachable" ? " \u00b7 not met" : c.saved_percent == null ? "" : " \u00b7 " +
      savedText(c.saved_percent);
    const title = V.metricLabel(V.doc.tune.metric.name) + " " + V.num(c.distance, 4) + " \u00b7 " + c.encodes +
      (c.encodes === 1 ? " encode" : " encodes") + " \u00b7 " + c.status;
    return V.el(
      "td",
      { class: "tune-cell " + c.status, title, dataset: { codec, row: k } },
      V.el("a", { href }, c.label + " \u00b7 " + V.num(c.bpp, 3) + " bpp", V.el("small", {}, saved))
    );
  }

  function imagesTable() {
    const tune = V.doc.tune;
    const matched = tune.target.kind === "match";
    const head = V.el(
      "tr",
      {},
      V.el("th", {}, "image"),
      V.el("th", { class: "num" }, "target"),
      matched && V.el("th", {}, tune.target.encoding),
      tune.codecs.map((codec) => V.el("th", {}, codec))
    );
    const rows = tune.rows.map((row, k) =>
      V.el(
        "tr",
        { dataset: { row: k } },
        V.el("th", {}, V.el("img", { class: "thumb", loading: "lazy", alt: "", src: V.thumbUrl(row.ref) }), row.image),
        V.el("td", { class: "num" }, V.num(row.target, 3)),
        matched && V.el("td", { class: "num" }, row.match ? V.num(row.match.bpp, 3) + " bpp" : "\u2014"),
        tune.codecs.map((codec) => cell(row, codec, k))
      )
    );
    V.$("#tune-table").replaceChildren(V.el("thead", {}, head), V.el("tbody", {}, rows));
  }

  T.enter = function () {
    if (!built) {
      built = true;
      const tune = V.doc.tune;
      const matched = tune.target.kind === "match";
      V.$("#tune-caption").textContent =
        "per image, each codec's setting with the fewest bits whose " + V.metricLabel(tune.metric.name) + " is " +
        T.aim() + (matched ? " (bits saved against the match encode; " : " (") + "totals with 95 % intervals " +
        "over images; \u201cnot met\u201d: the codec's closest encode)";
      V.$("#tune-help").textContent = matched
        ? "click a setting to compare the original (R), the match encode (A) and that codec's choice (B)"
        : "click a setting to compare the original (R) and that codec's choice (A)";
      totalsTable();
      imagesTable();
      V.$("#tune-notes").replaceChildren(...(V.doc.notes || []).map((n) => V.el("li", {}, n)));
    }
    V.show(T);
  };

  /** The compare item of one cell: the original (R), the match encode (A, when the target is one) and the codec's
   *  choice (B; A when there is no match encode). */
  T.item = function (codec, index) {
    const tune = V.doc.tune;
    const k = Number(index);
    const row = tune.rows[k];
    const c = row && row.cells[codec];
    if (!c) return null;
    const href = (j) => "#/tune/" + encodeURIComponent(codec) + "/" + j;
    const go = (j) => (j >= 0 && j < tune.rows.length && tune.rows[j].cells[codec] ? () => V.go(href(j)) : null);
    const chosen = codec + " " + c.label + " \u00b7 " + V.num(c.bpp, 3) + " bpp";
    const slots = row.match ? { ref: row.ref, a: row.match.file, b: c.file } : { ref: row.ref, a: c.file };
    const captions = { ref: "original \u00b7 " + row.image };
    if (row.match) {
      captions.a = "match " + row.match.label + " \u00b7 " + V.num(row.match.bpp, 3) + " bpp";
      captions.b = chosen;
    } else captions.a = chosen;
    return {
      slots,
      captions,
      alternate: row.match ? ["a", "b"] : ["ref", "a"],
      title: codec + " \u00b7 " + row.image,
      facts: V.facts.tune(row, codec),
      nav: { next: go(k + 1), prev: go(k - 1) },
      pairItems: { items: tune.rows.map((r) => r.image), selected: k, href },
    };
  };
})((window.PrfnetViewer = window.PrfnetViewer || {}));
