/* The optimization history plot (Chart.js). */

import { HOLLOW, chartSignature, colors } from "./search_chart.js";
import { select } from "./search_detail.js";
import { $ } from "./search_dom.js";
import { baselineName, fmtPsnr } from "./search_format.js";
import {
  atTop, cost, costBudget, costKey, inVerdictPool, multiRung, referenceBaseline, scoredTrial,
  state,
} from "./search_state.js";

// Best PSNR so far and the hypervolume of the top-rung front against trial number (as
// optuna-dashboard's history plot), from the rows the page holds. The chart is made when
// its panel first comes into view: a cold page draws its scatter and table first.
const HS = { VALUES: 0, LOWER: 1, BEST: 2, HV: 3 };
let historyChart = null;
let historyWanted = false;
let historySig = null;

/** Adds (gain, log cost) to a front (cheapest first) and returns its hypervolume up to
 * `ceiling`, as engine/search/pareto.py sweeps it; null when the point is dominated. */
function addToFront(front, q, c, ceiling) {
  if (front.some((f) => f.q >= q && f.c <= c)) return null;
  for (let i = front.length - 1; i >= 0; i--) {
    if (front[i].q <= q && front[i].c >= c) front.splice(i, 1);
  }
  front.push({ q, c });
  front.sort((a, b) => a.c - b.c);
  let area = 0, best = 0;
  for (const f of front) { area += (f.q - best) * (ceiling - f.c); best = f.q; }
  return area;
}

/** The history's points: each scored trial's PSNR (top rung, lower rungs apart), the best
 * of the verdict pool so far, and its front's hypervolume over (PSNR gain over the
 * reference, log10 cost) up to the budget, else the costliest trial seen. */
function historySeries() {
  const field = cost().field;
  const ref = referenceBaseline();
  const refPsnr = ref && ref.psnr != null ? ref.psnr : null;
  const all = [...state.trials.values()];
  const ceiling = Math.log10(costBudget() ||
    all.reduce((m, t) => (t[field] > m ? t[field] : m), 1));
  const values = [], lower = [], best = [], hv = [];
  const front = [];
  let top = -Infinity, area = 0, last = null;
  for (const t of all.filter(scoredTrial).sort((a, b) => a.number - b.number)) {
    (atTop(t) ? values : lower).push({ x: t.number, y: t.psnr, trial: t.number });
    last = t.number;
    if (!inVerdictPool(t)) continue;
    top = Math.max(top, t.psnr);
    best.push({ x: t.number, y: top });
    if (refPsnr == null) continue;
    if (t[field] > 0 && Math.log10(t[field]) < ceiling) {
      const now = addToFront(front, t.psnr - refPsnr, Math.log10(t[field]), ceiling);
      if (now != null) area = now;
    }
    hv.push({ x: t.number, y: area });
  }
  // The lines run on to the last trial: the best so far holds until a better one comes.
  if (best.length && last > best[best.length - 1].x) best.push({ x: last, y: top });
  if (hv.length && last > hv[hv.length - 1].x) hv.push({ x: last, y: area });
  return { data: [values, lower, best, hv], refName: ref ? baselineName(ref.name) : null };
}

export function renderHistory() {
  if (!historyWanted || typeof Chart === "undefined") return;
  const sig = chartSignature;
  if (sig === historySig && historyChart) return;
  historySig = sig;
  const { data, refName } = historySeries();
  $("sp-history-empty").hidden = data[HS.VALUES].length + data[HS.LOWER].length > 0;
  const multi = multiRung();
  const hvLabel = "hypervolume" + (refName ? " (over " + refName + ", log " +
    (costKey() === "macs" ? "MACs" : costKey()) + ")" : "");
  if (historyChart) {
    historyChart.data.datasets.forEach((d, i) => { d.data = data[i]; });
    historyChart.data.datasets[HS.VALUES].label = multi ? "PSNR at the top rung" : "PSNR of each trial";
    historyChart.data.datasets[HS.HV].label = hvLabel;
    historyChart.update("none");
    return;
  }
  historyChart = new Chart($("sp-history"), {
    type: "scatter",
    data: {
      datasets: [
        { label: multi ? "PSNR at the top rung" : "PSNR of each trial", data: data[HS.VALUES],
          backgroundColor: colors.dominated, borderColor: "rgba(255,255,255,0.9)",
          borderWidth: 1, pointRadius: 3.5, yAxisID: "y", order: 2 },
        { label: "PSNR at a lower rung", data: data[HS.LOWER], backgroundColor: HOLLOW,
          borderColor: colors.lower, borderWidth: 1.25, pointRadius: 3.5, yAxisID: "y",
          order: 3, hidden: !multi },
        { label: "best PSNR so far", data: data[HS.BEST], showLine: true, stepped: "before",
          borderColor: colors.front, backgroundColor: colors.front, borderWidth: 2,
          pointRadius: 0, pointHitRadius: 6, yAxisID: "y", order: 1 },
        { label: hvLabel, data: data[HS.HV], showLine: true, stepped: "before",
          borderColor: colors.fresh, backgroundColor: colors.fresh, borderWidth: 2,
          borderDash: [6, 3], pointRadius: 0, pointHitRadius: 6, yAxisID: "y2", order: 0 },
      ],
    },
    options: {
      animation: false, // redrawn in place as trials arrive
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: false, axis: "x" },
      scales: {
        x: { type: "linear", title: { display: true, text: "trial number" },
             ticks: { precision: 0 }, grid: { color: colors.grid }, border: { display: false } },
        y: { title: { display: true, text: "PSNR (dB)" }, grid: { color: colors.grid },
             border: { display: false }, ticks: { callback: (v) => Number(v).toFixed(1) } },
        y2: { position: "right", beginAtZero: true, title: { display: true, text: "hypervolume" },
              grid: { display: false }, border: { display: false } },
      },
      plugins: {
        // Chart.js's stepped "before" runs across at the old value, then up at the new
        // point: a best holds until a better trial comes.
        legend: { position: "bottom", labels: { usePointStyle: true, boxHeight: 7,
                  filter: (item) => item.datasetIndex !== HS.LOWER || multiRung() } },
        title: false, subtitle: false, decimation: false, colors: false, zoom: false,
        tooltip: {
          callbacks: {
            title: (items) => (items.length ? "trial #" + items[0].parsed.x : ""),
            label: (item) => item.dataset.yAxisID === "y2"
              ? item.dataset.label + ": " + item.parsed.y.toFixed(3)
              : item.dataset.label + ": " + fmtPsnr(item.parsed.y) + " dB",
          },
        },
      },
      onClick(event, elements) {
        const hit = elements.find((e) => e.datasetIndex === HS.VALUES || e.datasetIndex === HS.LOWER);
        if (hit) select(historyChart.data.datasets[hit.datasetIndex].data[hit.index].trial, true);
      },
    },
  });
}

export function watchHistory() {
  const panel = $("sp-history-panel");
  // Made when the browser is idle: never in the frames that first show the table and scatter.
  const show = () => {
    historyWanted = true;
    if ("requestIdleCallback" in window) requestIdleCallback(renderHistory, { timeout: 500 });
    else renderHistory();
  };
  if (!("IntersectionObserver" in window)) { show(); return; }
  const seen = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) { seen.disconnect(); show(); }
  });
  seen.observe(panel);
}
