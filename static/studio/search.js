/* The live search page: overview, Pareto scatter, history, trial table, all fed by one
 * WebSocket. Build-free ES modules, one concept each (search_*.js); this one renders them
 * together, once per animation frame, and starts the page. */

import { chart, renderChart } from "./search_chart.js";
import { linkSelection, linkedTrial, renderDetail, select } from "./search_detail.js";
import { $, readJSON } from "./search_dom.js";
import { renderHistory, watchHistory } from "./search_history.js";
import { startLive } from "./search_live.js";
import { renderClock, renderHeader, renderOverview } from "./search_overview.js";
import { computeFront, refreshRungs, state } from "./search_state.js";
import { onHeaderClick, renderTable, revealRow, rows, tbody } from "./search_table.js";

let renderQueued = false;
export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { if (renderQueued) render(); });
}

export let drawn = false; // the first draw shows the page as it is, without animations
function render() {
  renderQueued = false; // a queued render is no longer needed
  refreshRungs();
  computeFront();
  // The chart first: creating it measures the page, still laid out before these writes.
  renderChart();
  renderHistory();
  renderHeader();
  renderOverview();
  renderTable();
  renderDetail();
  // Later updates animate their points in.
  if (chart && chart.options.animation === false) chart.options.animation = { duration: 250 };
  drawn = true;
}

function start() {
  $("sp-table").querySelector("thead").addEventListener("click", onHeaderClick);
  $("sp-filter").addEventListener("input", (e) => { state.filter = e.target.value; renderTable(); });
  $("sp-front-only").addEventListener("change", (e) => {
    state.frontOnly = e.target.checked; renderTable();
  });
  tbody.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-trial]");
    if (tr) select(Number(tr.dataset.trial), false);
  });
  tbody.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-trial]");
    if (tr && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      select(Number(tr.dataset.trial), false);
    }
  });
  for (const form of [$("sp-cancel"), $("sp-resume"), $("sp-restart")]) {
    form.addEventListener("submit", () => { form.querySelector("button").disabled = true; });
  }
  state.selected = linkedTrial(); // drawn selected from the first render
  window.addEventListener("hashchange", () => { // a #trial-N link within the page
    const hash = /^#trial-(\d+)$/.exec(location.hash);
    if (hash) select(Number(hash[1]), true);
  });
  startLive(readJSON("sp-snapshot"));
  scheduleRender(); // the embedded snapshot, drawn at once: the socket brings only changes
  // Watched once that first render (queued before this) laid the table out: before it, the
  // history panel below the empty table sits in view, and would be made on every cold load.
  requestAnimationFrame(watchHistory);
  if (state.selected != null) {
    linkSelection();
    // After that first render (queued before this): the linked row shown in its table box.
    requestAnimationFrame(() => {
      const tr = rows.get(state.selected);
      if (tr && tr.parentNode) revealRow(tr);
    });
  }
  setInterval(renderClock, 1000);
}

start();
