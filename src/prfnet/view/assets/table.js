/* prfnet view, the triplets table: filters and sorts index arrays over every triplet (20,000 rows stay instant)
   and renders only the current page of 100 rows. Also the order that n / p follow on the triplet page. */
"use strict";

(function (V) {
  const PAGE = 100;
  const PRFNET = "prfnet";
  const T = (V.table = { section: "list-view" });

  let rows = null; // doc.triplets
  let position = null; // triplet id (string) -> index in rows
  let against = null; // Int32Array: metrics whose decision is not the majority's (A or B majorities only)
  let gap = null; // Float64Array: |prfnet_p - p_a|, -1 when either is unknown
  let order = null; // Int32Array: indices of the rows of the current filter, in the current sort
  const state = { filter: "all", kind: "", group: "", sort: "id", page: 0, thumbs: true };
  T.lastId = null; // the triplet last opened: its page is shown on return, its row marked

  // ---- verdicts -----------------------------------------------------------------------------------------------

  const hasMajority = (row) => row.majority === "A" || row.majority === "B";

  /** "agree", "disagree", "tie" (the metric cannot tell) or "na" (no decision, or no A/B majority). */
  T.verdict = function (row, metric) {
    const decision = row.decisions ? row.decisions[metric] : null;
    if (decision == null || !hasMajority(row)) return "na";
    if (decision === row.majority) return "agree";
    return decision === "tie" ? "tie" : "disagree";
  };

  /** Whether a metric's decision goes against the judges' A/B majority (a tie counts as against). */
  T.against = (row, metric) => ["disagree", "tie"].includes(T.verdict(row, metric));

  function precompute() {
    rows = V.doc.triplets || [];
    position = new Map();
    against = new Int32Array(rows.length);
    gap = new Float64Array(rows.length);
    const metrics = V.doc.metrics.map((m) => m.name);
    rows.forEach((row, i) => {
      position.set(String(row.id), i);
      let n = 0;
      for (const m of metrics) if (T.against(row, m)) n += 1;
      against[i] = n;
      gap[i] = row.prfnet_p != null && row.p_a != null ? Math.abs(row.prfnet_p - row.p_a) : -1;
    });
  }

  // ---- filter and sort ----------------------------------------------------------------------------------------

  /** A predicate on a row for a filter value: all, prfnet-wrong, disagree:<metric>, wrong:<metric>. */
  function predicate(filter) {
    const [what, metric] = filter.split(/:(.*)/s);
    if (what === "prfnet-wrong") return (row) => T.against(row, PRFNET);
    if (what === "wrong") return (row) => T.against(row, metric);
    if (what === "disagree") {
      return (row) => {
        const d = row.decisions || {};
        return d[PRFNET] != null && d[metric] != null && d[PRFNET] !== d[metric];
      };
    }
    return () => true;
  }

  function computeOrder() {
    const keep = predicate(state.filter);
    const picked = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (state.kind && String(row.kind) !== state.kind) continue;
      if (state.group && row.group !== state.group) continue;
      if (keep(row)) picked.push(i);
    }
    const byId = (i, j) => (rows[i].id < rows[j].id ? -1 : rows[i].id > rows[j].id ? 1 : 0);
    if (state.sort === "confidence-gap") picked.sort((i, j) => gap[j] - gap[i] || byId(i, j));
    else if (state.sort === "disagreement") picked.sort((i, j) => against[j] - against[i] || byId(i, j));
    else picked.sort(byId);
    order = Int32Array.from(picked);
  }

  /** The id of the triplet `step` places after `id` in the current filter and sort (all triplets if it is not in
   *  it), or null at either end. */
  T.neighbour = function (id, step) {
    ensure();
    const index = position.get(String(id));
    if (index == null) return null;
    let list = order;
    let at = list.indexOf(index);
    if (at < 0) {
      list = Int32Array.from(rows.keys());
      at = index;
    }
    const next = at + step;
    return next >= 0 && next < list.length ? rows[list[next]].id : null;
  };

  T.row = (id) => {
    ensure();
    const index = position.get(String(id));
    return index == null ? null : rows[index];
  };

  /** "3 of 52 (PRFNet against the majority)": where a triplet sits in the current filter. */
  T.where = function (id) {
    const at = order.indexOf(position.get(String(id)));
    const label = V.$("#filter").selectedOptions[0];
    const filter = state.filter === "all" ? "" : " (" + (label ? label.textContent : state.filter) + ")";
    return at < 0 ? "not in the current filter" : at + 1 + " of " + order.length + filter;
  };

  // ---- controls -----------------------------------------------------------------------------------------------

  function fillSelect(select, options) {
    select.replaceChildren(...options.map(([value, text]) => V.el("option", { value }, text)));
  }

  function distinct(field) {
    const values = new Set();
    for (const row of rows) if (row[field] != null) values.add(String(row[field]));
    return [...values].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  }

  function buildControls() {
    const metrics = V.doc.metrics;
    const hasPrfnet = metrics.some((m) => m.name === PRFNET);
    const filters = [["all", "all triplets"]];
    if (hasPrfnet) filters.push(["prfnet-wrong", "PRFNet against the majority"]);
    const others = metrics.filter((m) => m.name !== PRFNET);
    if (hasPrfnet) for (const m of others) filters.push(["disagree:" + m.name, "PRFNet and " + m.label + " disagree"]);
    for (const m of others) filters.push(["wrong:" + m.name, m.label + " against the majority"]);
    fillSelect(V.$("#filter"), filters);
    const kinds = distinct("kind");
    fillSelect(V.$("#kind"), [["", "all"], ...kinds.map((k) => [k, k])]);
    V.$("#kind-label").hidden = kinds.length === 0;
    const groups = distinct("group");
    fillSelect(V.$("#group"), [["", "all (" + groups.length + ")"], ...groups.map((g) => [g, g])]);
    V.$("#group-label").hidden = groups.length === 0;
    for (const [id, key] of [["#filter", "filter"], ["#kind", "kind"], ["#group", "group"], ["#sort", "sort"]]) {
      V.$(id).addEventListener("change", (e) => {
        state[key] = e.target.value;
        state.page = 0;
        computeOrder();
        render();
      });
    }
    V.$("#thumbs").addEventListener("change", (e) => {
      state.thumbs = e.target.checked;
      render();
    });
    V.$("#prev-page").addEventListener("click", () => turn(-1));
    V.$("#next-page").addEventListener("click", () => turn(1));
    V.$("#table tbody").addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-id]");
      if (tr && !e.target.closest("a")) V.go("#/t/" + encodeURIComponent(tr.dataset.id));
    });
  }

  function turn(step) {
    const pages = Math.max(1, Math.ceil(order.length / PAGE));
    const page = Math.min(pages - 1, Math.max(0, state.page + step));
    if (page !== state.page) {
      state.page = page;
      render();
    }
  }

  // ---- rendering ----------------------------------------------------------------------------------------------

  function summary() {
    const decided = rows.filter(hasMajority);
    if (!decided.length) return "no triplet has an A/B majority of judges: the decisions are shown without agreement";
    const parts = V.doc.metrics.map((m) => {
      const agree = decided.filter((row) => T.verdict(row, m.name) === "agree").length;
      return m.label + " " + ((100 * agree) / decided.length).toFixed(1) + " %";
    });
    const with_ = " (" + decided.length + " triplets with one): ";
    return "agreement with the majority of judges" + with_ + parts.join(" \u00b7 ");
  }

  function columns() {
    const anyKind = rows.some((r) => r.kind != null);
    const anyP = rows.some((r) => r.prfnet_p != null);
    const cols = [["#", "num"], [state.thumbs ? "R \u00b7 A \u00b7 B" : "R / A / B", "images"], ["reference", "group"]];
    if (anyKind) cols.push(["kind", "kind"]);
    cols.push(["votes", "num"], ["A chosen", "num"], ["majority", "center"]);
    if (anyP) cols.push(["PRFNet P(A)", "num"]);
    for (const m of V.doc.metrics) cols.push([m.label, "decision"]);
    return { cols, anyKind, anyP };
  }

  function imagesCell(row) {
    const ids = [row.ref, row.a, row.b];
    if (!state.thumbs) return V.el("td", { class: "names" }, ids.map((id) => V.el("div", {}, V.imageName(id))));
    const thumbs = ids.map((id, k) =>
      V.el("img", { src: V.thumbUrl(id), loading: "lazy", alt: "RAB"[k], title: "RAB"[k] + ": " + V.imageName(id) })
    );
    return V.el("td", { class: "thumbs" }, thumbs);
  }

  function decisionCell(row, metric) {
    const decision = row.decisions ? row.decisions[metric] : null;
    const verdict = T.verdict(row, metric);
    const text = decision == null ? "\u2014" : decision === "tie" ? "=" : decision;
    const title = { agree: "agrees with the majority", disagree: "against the majority", tie: "cannot tell (tie)" };
    return V.el("td", { class: "decision " + verdict, title: title[verdict] || "" }, text);
  }

  function rowElement(row, shape) {
    const href = "#/t/" + encodeURIComponent(row.id);
    const cells = [V.el("td", { class: "num" }, V.el("a", { href }, String(row.id))), imagesCell(row)];
    cells.push(V.el("td", { class: "group", title: row.group || "" }, row.group || "\u2014"));
    if (shape.anyKind) cells.push(V.el("td", { class: "kind" }, row.kind == null ? "\u2014" : row.kind));
    cells.push(V.el("td", { class: "num" }, row.votes == null ? "\u2014" : String(row.votes)));
    cells.push(V.el("td", { class: "num" }, V.num(row.p_a)));
    cells.push(V.el("td", { class: "center" }, row.majority || "\u2014"));
    if (shape.anyP) cells.push(V.el("td", { class: "num" }, V.num(row.prfnet_p)));
    for (const m of V.doc.metrics) cells.push(decisionCell(row, m.name));
    const mark = String(row.id) === String(T.lastId) ? "last" : null;
    return V.el("tr", { dataset: { id: String(row.id) }, class: mark }, cells);
  }

  function render() {
    const shape = columns();
    const head = V.el("tr", {}, shape.cols.map(([text, cls]) => V.el("th", { class: cls }, text)));
    V.$("#table thead").replaceChildren(head);
    const first = state.page * PAGE;
    const last = Math.min(order.length, first + PAGE);
    const body = [];
    for (let k = first; k < last; k++) body.push(rowElement(rows[order[k]], shape));
    V.$("#table tbody").replaceChildren(...body);
    V.$("#count").textContent = String(order.length);
    V.$("#page-info").textContent = order.length ? first + 1 + "\u2013" + last + " of " + order.length : "0 of 0";
    V.$("#prev-page").disabled = state.page === 0;
    V.$("#next-page").disabled = last >= order.length;
  }

  // ---- the view -----------------------------------------------------------------------------------------------

  function ensure() {
    if (rows) return;
    precompute();
    buildControls();
    computeOrder();
    V.$("#summary").textContent = summary();
  }

  T.enter = function () {
    ensure();
    V.show(T);
    if (T.lastId != null) {
      const at = order.indexOf(position.get(String(T.lastId)));
      if (at >= 0) state.page = Math.floor(at / PAGE);
    }
    render();
    const marked = V.$("#table tr.last");
    if (marked) marked.scrollIntoView({ block: "nearest" });
  };

  T.onKey = function (event) {
    if (event.key === "ArrowRight" || event.key === "n") turn(1);
    else if (event.key === "ArrowLeft" || event.key === "p") turn(-1);
    else return false;
    return true;
  };
})((window.PrfnetViewer = window.PrfnetViewer || {}));
