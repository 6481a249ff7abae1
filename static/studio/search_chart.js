/* The Pareto scatter (Chart.js): created once and updated in place, so zoom, pan and
 * selection survive. */

import { select } from "./search_detail.js";
import { $, cssVar, el } from "./search_dom.js";
import {
  baselineName, describeBaseline, describeTrial, fmtInt, fmtPsnr, fmtSsim, signed,
} from "./search_format.js";
import {
  FRESH_MS, RUNGS, atTop, belowReference, cost, costBudget, costKey, historyText,
  learnedBaselines, multiRung, pretrainedBaselines, promoting, referenceBaseline, referenceLabel,
  rungHistory, rungLabel, rungOf, scoredTrial, state, stepsOfRung, topSteps,
} from "./search_state.js";

// FRONT and DOMINATED hold top-rung results (solid), LOWER the lower rungs' (hollow).
const DS = { FRONT_LINE: 0, FRONT: 1, DOMINATED: 2, BASELINES: 3, LOWER: 4, PRETRAINED: 5 };
export const HOLLOW = "rgba(255, 255, 255, 0)";
export let chart = null;
let ringTimer = null;
export let chartSignature = null;
const BIG_CHANGE = 50; // points added or removed at once above which no animation runs

export const colors = {
  front: cssVar("--sp-front", "#4f46e5"),
  frontFill: cssVar("--sp-front-fill", "rgba(79, 70, 229, 0.07)"),
  dominated: cssVar("--sp-dominated", "rgba(112, 124, 148, 0.5)"),
  baseline: cssVar("--sp-baseline", "#e08a1e"),
  lower: cssVar("--sp-lower", "rgba(112, 124, 148, 0.8)"),
  pretrained: cssVar("--sp-pretrained", "#be185d"),
  reference: cssVar("--sp-reference", "#8d94a8"),
  budget: cssVar("--sp-budget", "#c2410c"),
  fresh: cssVar("--sp-fresh", "#0ea5a4"),
  selected: cssVar("--sp-selected", "#1c2033"),
  grid: cssVar("--sp-grid", "rgba(28, 32, 51, 0.08)"),
  gridMinor: cssVar("--sp-grid-minor", "rgba(28, 32, 51, 0.03)"),
  text: cssVar("--sp-muted", "#5d647b"),
};
// Read once, like the colours: a read in every draw restyles the page when it is dirty.
const FONT = getComputedStyle(document.body).fontFamily || "system-ui, sans-serif";

// Log-axis labels at 1-2-5 of each decade (only at 1 and 5 on a narrow chart).
function logTick(value, width) {
  const exp = Math.floor(Math.log10(value) + 1e-9);
  const lead = Math.round(value / 10 ** exp);
  const narrow = width < 560;
  const labelled = narrow ? [1, 5] : [1, 2, 5];
  if (!labelled.includes(lead) || Math.abs(value / 10 ** exp - lead) > 1e-6) return "";
  return cost().axis(value);
}

// Bicubic/identity as a dashed line, labels beside the learned baselines, rings around
// new points, and the selected point.
const overlay = {
  id: "spOverlay",
  afterDatasetsDraw(c) {
    const { ctx, chartArea: area, scales } = c;
    const x = scales.x, y = scales.y;
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.clip();
    const ref = referenceBaseline();
    if (ref && ref.psnr != null) {
      const py = y.getPixelForValue(ref.psnr);
      if (py >= area.top && py <= area.bottom) {
        ctx.strokeStyle = colors.reference;
        ctx.setLineDash([5, 4]);
        ctx.lineWidth = 1.25;
        ctx.beginPath(); ctx.moveTo(area.left, py); ctx.lineTo(area.right, py); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = colors.text;
        ctx.font = "12px " + FONT;
        ctx.textAlign = "right";
        ctx.textBaseline = "bottom";
        ctx.fillText(baselineName(ref.name) + " " + fmtPsnr(ref.psnr) + " dB", area.right - 6, py - 3);
      }
    }
    const budget = costBudget();
    if (budget) {
      const px = x.getPixelForValue(budget);
      if (px >= area.left && px <= area.right) {
        ctx.strokeStyle = colors.budget;
        ctx.setLineDash([3, 4]);
        ctx.lineWidth = 1.25;
        ctx.beginPath(); ctx.moveTo(px, area.top); ctx.lineTo(px, area.bottom); ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = colors.budget;
        ctx.font = "12px " + FONT;
        ctx.textAlign = "right";
        ctx.textBaseline = "top";
        ctx.fillText("budget " + cost().axis(budget), px - 5, area.top + 4);
      }
    }
    const field = cost().field;
    ctx.font = "600 11px " + FONT;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const b of learnedBaselines()) {
      if (!(b[field] > 0)) continue;
      const px = x.getPixelForValue(b[field]), py = y.getPixelForValue(b.psnr);
      if (px < area.left || px > area.right || py < area.top || py > area.bottom) continue;
      const label = baselineName(b.name);
      const room = px + 10 + ctx.measureText(label).width < area.right;
      ctx.fillStyle = colors.baseline;
      ctx.textAlign = room ? "left" : "right";
      ctx.fillText(label, room ? px + 9 : px - 9, py);
    }
    for (const b of pretrainedBaselines()) {
      if (!(b[field] > 0) || b.psnr == null) continue;
      const px = x.getPixelForValue(b[field]), py = y.getPixelForValue(b.psnr);
      if (px < area.left || px > area.right || py < area.top || py > area.bottom) continue;
      const label = baselineName(b.name) + ", pretrained";
      const room = px + 12 + ctx.measureText(label).width < area.right;
      ctx.fillStyle = colors.pretrained;
      ctx.textAlign = room ? "left" : "right";
      ctx.fillText(label, room ? px + 11 : px - 11, py);
    }
    const now = Date.now();
    for (const [number, at] of state.fresh) {
      const age = (now - at) / FRESH_MS;
      const point = age < 1 ? pointOf(number) : null;
      if (!point) continue;
      const px = point.x, py = point.y;
      ctx.strokeStyle = colors.fresh;
      ctx.globalAlpha = 1 - age;
      ctx.lineWidth = 2.5;
      ctx.beginPath(); ctx.arc(px, py, 9 + 5 * age, 0, 2 * Math.PI); ctx.stroke();
      ctx.globalAlpha = 1;
    }
    const sel = state.selected != null ? pointOf(state.selected) : null;
    if (sel) {
      const px = sel.x, py = sel.y;
      ctx.strokeStyle = colors.selected;
      ctx.lineWidth = 1;
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(px, area.bottom); ctx.lineTo(px, py + 8);
      ctx.moveTo(area.left, py); ctx.lineTo(px - 8, py);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(px, py, 8, 0, 2 * Math.PI); ctx.stroke();
    }
    ctx.restore();
  },
};

/** The drawn point of a trial (where it is now, mid-animation included), or null. */
let pointIndex = new Map(); // trial number -> [dataset, index]
function pointOf(number) {
  const where = pointIndex.get(number);
  if (!where || !chart) return null;
  const element = chart.getDatasetMeta(where[0]).data[where[1]];
  return element && isFinite(element.x) && isFinite(element.y) ? element : null;
}

/** The chart, built with its first data: one layout and one draw, not an empty one first. */
function createChart(data, range) {
  const canvas = $("sp-pareto");
  Chart.defaults.font.family = FONT;
  Chart.defaults.color = colors.text;
  chart = new Chart(canvas, {
    type: "scatter",
    data: {
      datasets: [
        { label: "front line", data: data[DS.FRONT_LINE], showLine: true, stepped: "after",
          borderColor: colors.front, borderWidth: 1.75, backgroundColor: colors.frontFill,
          fill: "start", pointRadius: 0, pointHitRadius: 0, pointHoverRadius: 0, order: 4 },
        { label: "on the front", data: data[DS.FRONT], backgroundColor: colors.front,
          borderColor: "#fff", borderWidth: 1.5, pointRadius: 6, pointHoverRadius: 8,
          order: 1 },
        { label: "dominated", data: data[DS.DOMINATED], backgroundColor: colors.dominated,
          borderColor: "rgba(255,255,255,0.9)", borderWidth: 1, pointRadius: 4.5,
          pointHoverRadius: 7, order: 2 },
        { label: "baselines", data: data[DS.BASELINES], backgroundColor: colors.baseline,
          borderColor: "#fff", borderWidth: 1.5, pointStyle: "triangle", pointRadius: 8,
          pointHoverRadius: 10, order: 0 },
        { label: "lower rung", data: data[DS.LOWER], backgroundColor: HOLLOW,
          borderColor: colors.lower, borderWidth: 1.5, pointRadius: 4.5,
          pointHoverRadius: 7, pointHoverBackgroundColor: HOLLOW, order: 3 },
        { label: "pretrained reference", data: data[DS.PRETRAINED],
          backgroundColor: colors.pretrained, borderColor: "#fff", borderWidth: 1.5,
          pointStyle: "rectRot", pointRadius: 8, pointHoverRadius: 10, order: 0 },
      ],
    },
    options: {
      animation: false, // render() turns it on after the first draw
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "nearest", intersect: true },
      layout: { padding: { top: 6, right: 8 } },
      scales: {
        x: {
          type: "logarithmic",
          suggestedMin: range.x[0],
          suggestedMax: range.x[1],
          title: { display: true, text: cost().label + " (log scale)" },
          grid: { color: (ctx) => (ctx.tick && logTick(ctx.tick.value, ctx.chart.width)
            ? colors.grid : colors.gridMinor) },
          border: { display: false },
          // `this` is the scale: the chart's width is known during its first layout too.
          ticks: { callback(value) { return logTick(value, this.chart.width); },
                   autoSkip: false, maxRotation: 0 },
        },
        y: {
          type: "linear",
          suggestedMin: range.y[0],
          suggestedMax: range.y[1],
          title: { display: true, text: "PSNR (dB)" },
          grid: { color: colors.grid },
          border: { display: false },
          ticks: { callback: (v) => Number(v).toFixed(1), maxTicksLimit: 8 },
        },
      },
      plugins: {
        // Built-in plugins this chart does not use, off: each would run its hooks (and
        // resolve its options) in every update and draw, the first, cold one included.
        legend: false,
        title: false,
        subtitle: false,
        decimation: false,
        colors: false,
        tooltip: { enabled: false, external: externalTooltip },
        zoom: {
          zoom: {
            wheel: { enabled: true, speed: 0.12 },
            pinch: { enabled: true },
            drag: { enabled: true, threshold: 6, backgroundColor: "rgba(79, 70, 229, 0.1)",
                    borderColor: "rgba(79, 70, 229, 0.5)", borderWidth: 1 },
            mode: "xy",
            onZoomComplete: onZoomChanged,
          },
          pan: { enabled: true, mode: "xy", modifierKey: "shift",
                 onPanComplete: onZoomChanged },
        },
      },
      onClick(event, elements) {
        const hit = elements.find((e) => e.datasetIndex === DS.FRONT ||
                                         e.datasetIndex === DS.DOMINATED ||
                                         e.datasetIndex === DS.LOWER);
        if (hit) {
          const point = chart.data.datasets[hit.datasetIndex].data[hit.index];
          select(point.trial, true);
        }
      },
      onHover(event, elements) {
        canvas.style.cursor = elements.some((e) => e.datasetIndex !== DS.FRONT_LINE)
          ? "pointer" : "";
      },
    },
    plugins: [overlay],
  });
  $("sp-zoom-reset").addEventListener("click", () => {
    chart.resetZoom();
    onZoomChanged();
  });
  canvas.addEventListener("mouseleave", () => { $("sp-tooltip").hidden = true; });
}

function onZoomChanged() {
  $("sp-zoom-reset").disabled = !(chart && chart.isZoomedOrPanned());
}

function externalTooltip(context) {
  const tip = $("sp-tooltip");
  const model = context.tooltip;
  const items = (model.dataPoints || []).filter((p) => p.datasetIndex !== DS.FRONT_LINE);
  if (model.opacity === 0 || !items.length) { tip.hidden = true; return; }
  const raw = items[0].raw;
  const lines = [];
  if (raw.baseline) {
    const b = (state.search.baselines || []).find((x) => x.name === raw.baseline);
    if (!b) { tip.hidden = true; return; }
    lines.push(el("strong", { text: describeBaseline(b) }));
    lines.push(el("span", { text: b.pretrained
      ? "trained elsewhere by its authors: a reference, not trained on this clip"
      : "handcrafted net, trained with the trials' " +
        (multiRung() ? "top-rung budget (" + fmtInt(topSteps()) + " steps)" : "budget") }));
  } else {
    const t = state.trials.get(raw.trial);
    if (!t) { tip.hidden = true; return; }
    lines.push(el("strong", { text: describeTrial(t) }));
    const extra = [standing(t)];
    const ref = referenceBaseline();
    if (ref) extra.push(signed(t.psnr - ref.psnr) + " dB over " + baselineName(ref.name));
    if (t.ssim != null) extra.push("SSIM " + fmtSsim(t.ssim));
    lines.push(el("span", { text: extra.join(" · ") }));
    if (multiRung() && rungHistory(t).length > 1) {
      lines.push(el("span", { text: "PSNR by rung: " + historyText(t) }));
    }
  }
  tip.replaceChildren(...lines);
  tip.hidden = false;
  const wrap = $("sp-chart-wrap");
  const x = model.caretX, y = model.caretY;
  const width = tip.offsetWidth, height = tip.offsetHeight;
  let left = x + 14, top = y - height - 12;
  if (left + width > wrap.clientWidth - 4) left = Math.max(4, x - width - 14);
  if (top < 4) top = y + 14;
  tip.style.left = left + "px";
  tip.style.top = top + "px";
}

/** Where a trial stands, in words: front, dominated, below the reference, lower rung. */
function standing(t) {
  if (state.front.has(t.number)) {
    return "on the Pareto front" + (multiRung() ? " at " + fmtInt(topSteps()) + " steps" : "");
  }
  if (belowReference(t)) return "below " + referenceLabel() + ": never on the front";
  if (!atTop(t)) {
    const up = promoting(t);
    return rungLabel(rungOf(t)) + " (" + stepsOfRung(rungOf(t)) + ")" +
      (up != null ? ", promoting to " + rungLabel(up) + "…" : ": compared at the top rung only");
  }
  return "dominated";
}

export function renderChart() {
  if (typeof Chart === "undefined") return;
  const field = cost().field;
  const plotted = [...state.trials.values()].filter((t) => scoredTrial(t) && t[field] > 0);
  const baselines = learnedBaselines().filter((b) => b[field] > 0)
    .map((b) => ({ x: b[field], y: b.psnr, baseline: b.name }));
  const pretrained = pretrainedBaselines().filter((b) => b[field] > 0 && b.psnr != null)
    .map((b) => ({ x: b[field], y: b.psnr, baseline: b.name }));
  const budget = costBudget();
  // Nothing the chart shows changed (a training_progress tick, a status event): no update,
  // so no needless animation either.
  const signature = costKey() + "|" + budget + "|" + RUNGS.join("/") + "|" +
    JSON.stringify(state.search.baselines) + "|" + plotted.map((t) => t.number + ":" + t.seq +
      (state.front.has(t.number) ? "f" : "") + (atTop(t) ? "t" : "")).join(",");
  if (signature !== chartSignature) {
    chartSignature = signature;
    updateChart(plotted, baselines, pretrained, budget);
  }
  // The legend and the empty note after the chart: creating it measures the page, which is
  // still laid out until these writes.
  const ref = referenceBaseline();
  $("sp-chart-empty").hidden = plotted.length > 0 || baselines.length > 0 || pretrained.length > 0;
  $("sp-ref-name").textContent = ref ? baselineName(ref.name) : "bicubic";
  const multi = multiRung();
  $("sp-legend-front").textContent = multi ? "on the Pareto front (top rung)" : "on the Pareto front";
  $("sp-legend-solid").hidden = !multi;
  $("sp-legend-lower").hidden = !multi;
  if (multi) {
    $("sp-legend-solid").querySelector("span").textContent =
      "solid: trained to the top rung (" + fmtInt(topSteps()) + " steps)";
    $("sp-legend-lower").querySelector("span").textContent =
      "hollow: lower rung (" + RUNGS.slice(0, -1).map(fmtInt).join(" or ") +
      " steps), not compared yet";
  }
  const imdn = pretrainedBaselines();
  $("sp-legend-pretrained").hidden = !imdn.length;
  if (imdn.length) {
    $("sp-legend-pretrained").querySelector("span").textContent =
      imdn.map((b) => baselineName(b.name)).join(", ") + ", pretrained (not trained here)";
  }
  $("sp-legend-budget").hidden = !budget;
  $("sp-legend-budget").querySelector("span").textContent =
    (costKey() === "macs" ? "MACs" : costKey()) + " budget";
  animateRings();
}

/** The chart's datasets and auto range from these trials: created the first time. */
function updateChart(plotted, baselines, pretrained, budget) {
  const field = cost().field;
  const ref = referenceBaseline();
  const front = [], dominated = [], lower = [];
  for (const t of plotted) {
    const point = { x: t[field], y: t.psnr, trial: t.number };
    // The front holds top-rung results above the reference only (computeFront).
    if (state.front.has(t.number)) front.push(point);
    else if (atTop(t)) dominated.push(point);
    else lower.push(point);
  }
  const line = front.slice().sort((a, b) => a.x - b.x).map((p) => ({ x: p.x, y: p.y }));
  pointIndex = new Map();
  front.forEach((p, i) => pointIndex.set(p.trial, [DS.FRONT, i]));
  dominated.forEach((p, i) => pointIndex.set(p.trial, [DS.DOMINATED, i]));
  lower.forEach((p, i) => pointIndex.set(p.trial, [DS.LOWER, i]));

  // Auto range with room around the points (only used while not zoomed).
  const others = baselines.concat(pretrained);
  const xs = plotted.map((t) => t[field]).concat(others.map((b) => b.x));
  const ys = plotted.map((t) => t.psnr).concat(others.map((b) => b.y));
  if (ref && ref.psnr != null) ys.push(ref.psnr);
  // Before any data: a sensible empty frame rather than Chart.js's 0..1.
  if (!xs.length) xs.push(...{ macs: [3e8, 1e10], params: [2e3, 5e4], latency: [8, 300] }[costKey()]);
  if (budget) xs.push(budget);
  const lo = ys.length ? Math.min(...ys) : 28, hi = ys.length ? Math.max(...ys) : 32;
  const pad = Math.max(ys.length > 1 ? 0.15 : 0.5, (hi - lo) * 0.08);
  const range = { x: [Math.min(...xs) / 1.6, Math.max(...xs) * 1.6], y: [lo - pad, hi + pad] };
  const data = [line, front, dominated, baselines, lower, pretrained]; // in DS order
  if (!chart) { createChart(data, range); return; }

  const before = chart.data.datasets[DS.FRONT].data.length +
    chart.data.datasets[DS.DOMINATED].data.length + chart.data.datasets[DS.LOWER].data.length;
  // Update the datasets in place: the zoom (scale min/max) and the selection are kept.
  chart.data.datasets.forEach((dataset, i) => { dataset.data = data[i]; });
  const sx = chart.options.scales.x, sy = chart.options.scales.y;
  [sx.suggestedMin, sx.suggestedMax] = range.x;
  [sy.suggestedMin, sy.suggestedMax] = range.y;
  sx.title.text = cost().label + " (log scale)";
  // Many points at once (a reconnect): drawn in place, an animation of hundreds of points
  // only delays them.
  chart.update(Math.abs(plotted.length - before) > BIG_CHANGE ? "none" : undefined);
}

// Redraw (not update) while some ring is still fading.
function animateRings() {
  if (ringTimer || !state.fresh.size) return; // no ring: the update drew the chart already
  const tick = () => {
    const now = Date.now();
    for (const [n, at] of state.fresh) if (now - at > FRESH_MS) state.fresh.delete(n);
    if (chart) chart.draw();
    ringTimer = state.fresh.size ? requestAnimationFrame(tick) : null;
  };
  ringTimer = requestAnimationFrame(tick);
}
