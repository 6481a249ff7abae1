/* The trial table: one row per candidate, sorted, filtered, drawn in one go and then
 * updated row by row. */

import { $, cssVar, el } from "./search_dom.js";
import { esc, fmtG, fmtInt, fmtK, fmtMs, fmtPsnr, fmtSeconds, fmtSsim } from "./search_format.js";
import {
  FRESH_MS, RUNGS, belowReference, historyText, multiRung, promoting, referenceLabel, rungOf,
  scoredTrial, state, stateLabel, stepsOfRung,
} from "./search_state.js";

export const rows = new Map(); // number -> <tr>
export const tbody = $("sp-rows");

function sortValue(t, key) {
  if (key === "rung") return scoredTrial(t) ? rungOf(t) : null;
  const v = t[key];
  if (v == null || (typeof v === "number" && !isFinite(v))) return null;
  return v;
}

function visibleTrials() {
  const { test, bad } = compiledFilter();
  renderFilterHint(bad);
  const { key, dir } = state.sort;
  return [...state.trials.values()]
    .filter((t) => !state.frontOnly || state.front.has(t.number))
    .filter((t) => !test || test(t))
    .sort((a, b) => {
      const va = sortValue(a, key), vb = sortValue(b, key);
      if (va === null && vb === null) return b.number - a.number;
      if (va === null) return 1; // missing values last, whatever the direction
      if (vb === null) return -1;
      const c = typeof va === "string" ? va.localeCompare(vb) : va - vb;
      return c ? c * dir : b.number - a.number;
    });
}

// What a row shows, kept here rather than in the DOM: a row is refilled when it changes.
const rowSigs = new Map(); // number -> signature
function rowSignature(t) {
  return t.seq + "|" + t.state + "|" + t.psnr + "|" + state.front.has(t.number) + "|" +
    rungOf(t) + "|" + promoting(t) + "|" + belowReference(t) + "|" + RUNGS.length;
}

function rowClasses(t) {
  return {
    "sp-on-front": state.front.has(t.number),
    "sp-muted-row": ["rejected", "duplicate"].includes(t.state),
    "sp-below-ref": t.state === "complete" && belowReference(t),
    "sp-promoting": promoting(t) != null,
  };
}

// A row's cells as HTML: the first draw of a big table is one innerHTML, not 10,000 nodes
// made one by one, and a changed row is refilled the same way. Columns 1 and 4-10 are
// numbers: search.css aligns them by position (a class on each of 10,000 cells is markup
// the first draw would parse for nothing). Formatted numbers need no escaping; strings from
// the server do.
function cellsHTML(t) {
  const onFront = state.front.has(t.number);
  const td = (text, title) => '<td role="cell"' + (title ? ' title="' + esc(title) + '"' : "") +
    ">" + text + "</td>";
  const st = esc(t.state);
  const up = promoting(t);
  const below = t.state === "complete" && belowReference(t);
  let chipClass = "sp-chip-" + st;
  let chipTitle = t.reason || "";
  if (up != null) {
    chipClass = "sp-chip-promoting";
    chipTitle = "training on to " + stepsOfRung(up) + "; its " + stepsOfRung(rungOf(t)) +
      " result stands until then";
  } else if (below) {
    chipClass = "sp-chip-below";
    chipTitle = "complete, but its PSNR is not above " + referenceLabel() +
      ": never on the front or in a verdict";
  }
  // Rung: a ladder of the rungs (filled up to the one reached), then "2/3 · 1,200".
  let rung = "—", rungTitle = "";
  if (scoredTrial(t)) {
    const k = rungOf(t);
    const pips = RUNGS.map((_, i) => '<i class="' + (i <= k ? "on" : i === up ? "next" : "") +
      '"></i>').join("");
    rung = '<span class="sp-ladder" aria-hidden="true">' + pips + "</span>" + (k + 1) + "/" +
      RUNGS.length + " · " + fmtInt(t.steps != null ? t.steps : RUNGS[k]);
    rungTitle = "PSNR by rung: " + historyText(t);
  }
  const latencyTitle = t.latency_ms == null && multiRung() ? "measured at the top rung" : "";
  return '<td role="cell">' +
    (onFront ? '<i class="sp-front-dot" title="on the Pareto front"></i>' : "") +
    "#" + t.number + "</td>" +
    '<td role="cell"><span class="sp-chip ' + chipClass + '"' +
    (chipTitle ? ' title="' + esc(chipTitle) + '"' : "") + ">" + esc(stateLabel(t)) +
    "</span></td>" +
    '<td class="sp-mono sp-arch" role="cell"' + (t.arch ? ' title="' + esc(t.arch) + '"' : "") +
    ">" + esc(t.arch || "—") + "</td>" +
    td(rung, rungTitle) + td(fmtPsnr(t.psnr), rungTitle) + td(fmtSsim(t.ssim)) +
    td(fmtG(t.macs)) + td(fmtK(t.params)) + td(fmtMs(t.latency_ms), latencyTitle) +
    td(fmtSeconds(t.train_seconds));
}

function fillRow(tr, t) {
  tr.innerHTML = cellsHTML(t);
  tr.dataset.state = t.state;
  for (const [name, on] of Object.entries(rowClasses(t))) tr.classList.toggle(name, on);
}

function rowHTML(t) {
  const selected = state.selected === t.number;
  const classes = rowClasses(t);
  classes["sp-selected"] = selected;
  const cls = Object.keys(classes).filter((name) => classes[name]).join(" ");
  return '<tr tabindex="0" role="row" data-trial="' + t.number + '" data-state="' +
    esc(t.state) + '"' + (cls ? ' class="' + cls + '"' : "") + ' aria-selected="' + selected +
    '">' + cellsHTML(t) + "</tr>";
}

const MANY_ROWS = 150; // about four screens of rows
export function renderTable() {
  // Long tables skip rendering of rows out of view (see search.css); short ones render
  // whole, so a full-page screenshot, a print and innerText show every row.
  const many = state.trials.size > MANY_ROWS;
  // The Rung column is hidden in a single-fidelity search (nothing to say there).
  const table = $("sp-table");
  if (table.classList.contains("sp-single-rung") === multiRung()) {
    table.classList.toggle("sp-single-rung");
  }
  if (tbody.classList.contains("sp-rows-many") !== many) tbody.classList.toggle("sp-rows-many");
  const list = visibleTrials();
  if (!rows.size && !tbody.firstElementChild && list.length) {
    // The first draw: every row is new, sorted and up to date, so nothing is left to diff.
    tbody.innerHTML = list.map(rowHTML).join("");
    const trs = tbody.children; // in the order of `list`
    list.forEach((t, i) => {
      rows.set(t.number, trs[i]);
      rowSigs.set(t.number, rowSignature(t));
    });
  } else {
    updateRows(list);
  }
  $("sp-table-empty").hidden = list.length > 0;
  $("sp-table-empty").textContent = state.trials.size ? "No trial matches." : "No trials yet.";
  $("sp-count").textContent = list.length === state.trials.size
    ? String(state.trials.size) : list.length + " of " + state.trials.size;
  for (const th of document.querySelectorAll("#sp-table th[data-key]")) {
    const on = th.dataset.key === state.sort.key;
    th.setAttribute("aria-sort", on ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
  }
}

/** Brings the rows in the table to `list`: changed rows refilled, order fixed in place. */
function updateRows(list) {
  const wanted = new Set(list.map((t) => t.number));
  for (const [number, tr] of rows) {
    if (state.trials.has(number)) continue;
    tr.remove();
    rows.delete(number);
    rowSigs.delete(number);
  }
  const now = Date.now();
  // An emptied table (a filter that matched nothing) is refilled off the document at once.
  const batch = tbody.firstElementChild ? null : document.createDocumentFragment();
  list.forEach((t, i) => {
    let tr = rows.get(t.number);
    const signature = rowSignature(t);
    if (!tr) {
      tr = el("tr", { tabindex: "0", role: "row", "data-trial": t.number });
      rows.set(t.number, tr);
    }
    if (rowSigs.get(t.number) !== signature) {
      fillRow(tr, t);
      rowSigs.set(t.number, signature);
    }
    const at = state.fresh.get(t.number);
    if (at && now - at < FRESH_MS && tr.dataset.flashed !== String(at)) {
      tr.dataset.flashed = String(at);
      tr.animate([{ backgroundColor: cssVar("--sp-flash", "rgba(14, 165, 164, 0.2)") },
                  { backgroundColor: "transparent" }],
                 { duration: 2600, easing: "ease-out" });
    }
    // Only rows whose selection changed are written: a write to each of 1,000 rows costs.
    const selected = String(state.selected === t.number);
    if (tr.getAttribute("aria-selected") !== selected) {
      tr.setAttribute("aria-selected", selected);
      tr.classList.toggle("sp-selected", selected === "true");
    }
    if (batch) { batch.append(tr); return; }
    // Move only what is out of place, so untouched rows keep their flash animation.
    const current = tbody.children[i];
    if (current !== tr) tbody.insertBefore(tr, current || null);
  });
  if (batch) tbody.append(batch);
  for (const [number, tr] of rows) {
    if (!wanted.has(number) && tr.parentNode) tr.remove();
  }
  while (tbody.children.length > list.length) tbody.lastElementChild.remove();
}

export function onHeaderClick(event) {
  const th = event.target.closest("th[data-key]");
  if (!th) return;
  const key = th.dataset.key;
  if (state.sort.key === key) state.sort.dir = -state.sort.dir;
  else state.sort = { key, dir: ["arch", "state"].includes(key) ? 1 : -1 };
  renderTable();
}

// The filter's words, all of which a row must match (AND): `psnr>31`, `macs<2G`, `rung=3`,
// `state:complete`, `op:dwsep`, or plain text (architecture, state). A bare number reads
// in its column's unit (`macs<2` is 2 G, `params<20` 20 K); k, M and G suffixes are
// absolute.
const FILTER_FIELDS = {
  psnr: { value: (t) => t.psnr, unit: 1 },
  ssim: { value: (t) => t.ssim, unit: 1 },
  macs: { value: (t) => t.macs, unit: 1e9 },
  params: { value: (t) => t.params, unit: 1e3 },
  latency: { value: (t) => t.latency_ms, unit: 1 },
  train: { value: (t) => t.train_seconds, unit: 1 },
  steps: { value: (t) => t.steps, unit: 1 },
  rung: { value: (t) => (scoredTrial(t) ? rungOf(t) + 1 : null), unit: 1 }, // as shown: 1-based
  width: { value: (t) => { const m = /^w(\d+)/.exec(t.arch || ""); return m ? Number(m[1]) : null; },
           unit: 1 },
  number: { value: (t) => t.number, unit: 1 },
};
const FILTER_ALIASES = { "#": "number", trial: "number", lat: "latency", latency_ms: "latency",
                         w: "width", time: "train", train_seconds: "train" };
const FILTER_TEXT = {
  state: (t) => [t.state || "", stateLabel(t)],
  arch: (t) => [t.arch || ""],
  op: (t) => [t.arch || ""],
};
const SUFFIX = { k: 1e3, m: 1e6, g: 1e9 };
const COMPARE = {
  ">": (a, b) => a > b, "<": (a, b) => a < b, ">=": (a, b) => a >= b,
  "<=": (a, b) => a <= b, "=": (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)),
  ":": (a, b) => COMPARE["="](a, b), "!=": (a, b) => !COMPARE["="](a, b),
};

/** One word of the filter as a test of a row, or null where it is not understood. */
function filterTerm(word) {
  const m = /^([a-z_#]+)(>=|<=|!=|>|<|=|:)(.*)$/i.exec(word);
  if (!m) return (t) => textOf(t).includes(word); // plain text
  const name = m[1].toLowerCase();
  const field = FILTER_ALIASES[name] || name;
  const op = m[2], raw = m[3];
  if (FILTER_TEXT[field]) {
    if (!raw || ![":", "=", "!="].includes(op)) return null;
    const has = (t) => FILTER_TEXT[field](t).some((v) => v.toLowerCase().includes(raw));
    return op === "!=" ? (t) => !has(t) : has;
  }
  const spec = FILTER_FIELDS[field];
  const n = /^(-?\d*\.?\d+)([kmg])?$/i.exec(raw);
  if (!spec || !n) return null;
  const bound = Number(n[1]) * (n[2] ? SUFFIX[n[2].toLowerCase()] : spec.unit);
  return (t) => {
    const v = spec.value(t);
    return v != null && isFinite(v) && COMPARE[op](v, bound);
  };
}
function textOf(t) {
  return ((t.arch || "") + " " + (t.state || "") + " " + stateLabel(t)).toLowerCase();
}

let filterCache = { text: null, test: null, bad: [] };
/** The filter as one test (null: no filter) and the words it did not understand. */
function compiledFilter() {
  const text = state.filter;
  if (filterCache.text === text) return filterCache;
  // "psnr > 31" is one word: spaces around an operator are dropped first.
  const words = text.trim().toLowerCase().replace(/\s*(>=|<=|!=|>|<|=|:)\s*/g, "$1")
    .split(/\s+/).filter(Boolean);
  const tests = [], bad = [];
  for (const word of words) {
    const test = filterTerm(word);
    if (test) tests.push(test); else bad.push(word);
  }
  filterCache = { text, bad, test: tests.length ? (t) => tests.every((f) => f(t)) : null };
  return filterCache;
}
let filterSyntax = null; // the template's hint: the syntax, said once
function renderFilterHint(bad) {
  const hint = $("sp-filter-hint");
  if (filterSyntax == null) filterSyntax = hint.textContent;
  const text = bad.length ? "not understood: " + bad.join(", ") + " (try " +
    "psnr>31, macs<2G, state:complete)" : filterSyntax;
  if (hint.textContent !== text) hint.textContent = text;
  hint.classList.toggle("sp-filter-bad", bad.length > 0);
  $("sp-filter").setAttribute("aria-invalid", String(bad.length > 0));
}

/** Scrolls the table's own box to show a row, never the page: a point clicked in the chart
 * keeps the chart and the trial's detail (its actions) in view. */
export function revealRow(tr) {
  const wrap = tr.closest(".sp-table-wrap");
  if (!wrap) return;
  const box = wrap.getBoundingClientRect(), r = tr.getBoundingClientRect();
  const top = box.top + wrap.querySelector("thead").offsetHeight; // under the sticky head
  if (r.top < top) wrap.scrollTop -= top - r.top;
  else if (r.bottom > box.bottom) wrap.scrollTop += r.bottom - box.bottom;
}
