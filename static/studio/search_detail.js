/* The selected trial: its detail panel, its actions (forms), its loss curve, and the address
 * (?trial=N) that links to it. */

import { chart } from "./search_chart.js";
import { $, el, readJSON } from "./search_dom.js";
import {
  NBSP, baselineName, fmtG, fmtInt, fmtMs, fmtParams, fmtPsnr, fmtSeconds, fmtSsim, signed,
} from "./search_format.js";
import {
  RUNGS, atTop, belowReference, completeTrials, cost, dataUrl, isActive, learnedBaselines,
  multiRung, pretrainedBaselines, promoting, referenceBaseline, referenceLabel, rungHistory,
  rungLabel, rungOf, scoredTrial, state, stateLabel, stepsOfRung, topSteps,
} from "./search_state.js";
import { renderTable, revealRow, rows } from "./search_table.js";

// Each trial's training loss as its progress events came, kept after it ends while the
// page is open (the server keeps no per-step losses): shown in the trial's detail.
const CURVE_MAX = 600; // points a curve keeps: beyond, every other one is dropped

export function keepCurve(ev, run) {
  if (ev.loss == null || !isFinite(ev.loss)) return;
  let curve = state.curves.get(ev.number);
  if (!curve) { curve = []; state.curves.set(ev.number, curve); }
  curve.push({ rung: run.rung || 0, step: ev.step, loss: ev.loss });
  if (curve.length > CURVE_MAX) state.curves.set(ev.number, curve.filter((_, i) => i % 2 === 0));
}

/** A trial's loss against step, one line per rung, as a small SVG with its range in words. */
function lossCurve(curve) {
  const NS = "http://www.w3.org/2000/svg";
  const w = 300, h = 84, pad = 3;
  const maxStep = Math.max(...curve.map((p) => p.step), 1);
  const lo = Math.min(...curve.map((p) => p.loss)), hi = Math.max(...curve.map((p) => p.loss));
  const span = hi - lo || 1;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "sp-curve");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "training loss against step");
  const rungs = [...new Set(curve.map((p) => p.rung))].sort((a, b) => a - b);
  for (const rung of rungs) {
    const points = curve.filter((p) => p.rung === rung);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", points.map((p) => ((p.step / maxStep) * (w - 2 * pad) + pad)
      .toFixed(1) + "," + (h - pad - ((p.loss - lo) / span) * (h - 2 * pad)).toFixed(1)).join(" "));
    line.setAttribute("data-rung", rung);
    if (rung !== rungs[rungs.length - 1]) line.setAttribute("class", "sp-curve-earlier");
    svg.append(line);
  }
  const first = curve[0], lastPoint = curve[curve.length - 1];
  return [svg, el("p", { class: "sp-muted sp-curve-note",
    text: "loss " + first.loss.toPrecision(3) + " → " + lastPoint.loss.toPrecision(3) +
      " over " + fmtInt(maxStep) + " steps" + (rungs.length > 1 ? " (" + rungs.length +
      " rungs; earlier ones lighter)" : "") + " · seen on this page since it opened" })];
}

export function select(number, scrollRow) {
  state.selected = state.selected === number && !scrollRow ? null : number;
  linkSelection();
  renderTable();
  renderDetail();
  if (chart) chart.draw();
  const tr = rows.get(number);
  if (scrollRow && tr && tr.parentNode) revealRow(tr);
}

// The selected trial is in the address (?trial=N), so a link or a reload opens it again;
// replaceState: selecting trials adds no history entries to go back through.
export function linkSelection() {
  const url = new URL(location.href);
  if (state.selected == null) url.searchParams.delete("trial");
  else url.searchParams.set("trial", String(state.selected));
  if (/^#trial-\d+$/.test(url.hash)) url.hash = ""; // the spelling, read on load
  if (url.href !== location.href) window.history.replaceState(window.history.state, "", url.href);
}
/** The trial a link names: ?trial=N, or #trial-N. */
export function linkedTrial() {
  const query = new URLSearchParams(location.search).get("trial");
  const hash = /^#trial-(\d+)$/.exec(location.hash);
  const value = query != null && /^\d+$/.test(query) ? query : hash ? hash[1] : null;
  return value == null ? null : Number(value);
}

function detailItem(label, value) {
  return [el("dt", { text: label }), el("dd", { text: value })];
}

export function renderDetail() {
  const box = $("sp-detail");
  const t = state.selected != null ? state.trials.get(state.selected) : null;
  const head = el("div", { class: "sp-panel-head" }, el("h2", { text: "Trial" }));
  if (!t) {
    const field = cost().field;
    const front = completeTrials().filter((x) => state.front.has(x.number))
      .sort((x, y) => x[field] - y[field]);
    const signature = "front:" + RUNGS.length + ":" + front.map((x) => x.number + "/" + x.seq).join(",");
    if (box.dataset.trial === "" && box.dataset.sig === signature) return;
    box.dataset.trial = "";
    box.dataset.sig = signature;
    head.firstChild.textContent = "Pareto front";
    const parts = [head];
    if (front.length) {
      parts.push(el("p", { class: "sp-muted sp-detail-lead",
        text: (isActive() ? "The best trade-offs so far" : "The best trade-offs found") +
          (multiRung() ? " at " + fmtInt(topSteps()) + " steps (the top rung)" : "") +
          ", cheapest first." }));
      parts.push(el("ol", { class: "sp-front-list" }, ...front.map((x) => {
        const item = el("button", { type: "button", "data-trial": x.number },
          el("span", { class: "sp-fl-num", text: "#" + x.number }),
          el("span", { class: "sp-fl-psnr", text: fmtPsnr(x.psnr) + NBSP + "dB" }),
          el("span", { class: "sp-fl-cost", text: cost().fmt(x[field]) }));
        item.addEventListener("click", () => select(x.number, true));
        return el("li", null, item);
      })));
    }
    parts.push(el("p", { class: "sp-muted sp-detail-empty",
      text: front.length ? "Click a point or a row to inspect a trial."
        : multiRung() ? "The best trade-offs appear here as candidates reach the top rung (" +
          fmtInt(topSteps()) + " steps)."
        : "The best trade-offs appear here as trials are trained." }));
    box.replaceChildren(...parts);
    return;
  }
  const below = t.state === "complete" && belowReference(t);
  const curve = state.curves.get(t.number);
  // A running trial's curve grows with each progress event (it has no forms to keep).
  const detailSig = t.seq + "/" + (t.genome === undefined ? "-" : "g") + "/" + below + "/" +
    promoting(t) + "/" + RUNGS.length + "/" + (curve ? (t.state === "running" ? curve.length : "c") : "");
  if (box.dataset.trial === String(t.number) && box.dataset.sig === detailSig &&
      box.dataset.front === String(state.front.has(t.number))) return;
  box.dataset.trial = t.number;
  box.dataset.sig = detailSig;
  box.dataset.front = state.front.has(t.number);
  const close = el("button", { type: "button", class: "btn btn-ghost btn-small sp-close",
                               "aria-label": "Clear selection", text: "×" });
  close.addEventListener("click", () => select(null, false));
  head.append(close);

  const multi = multiRung();
  const up = promoting(t);
  const scored = scoredTrial(t);
  const title = el("p", { class: "sp-detail-title" },
    el("strong", { text: "#" + t.number }), " ",
    el("span", { class: "sp-chip sp-chip-" + (up != null ? "promoting" : below ? "below" : t.state),
                 text: stateLabel(t) }),
    multi && scored ? el("span", { class: "sp-chip sp-chip-rung", text: rungLabel(rungOf(t)) })
      : null,
    state.front.has(t.number) ? el("span", { class: "sp-chip sp-chip-front", text: "Pareto front" }) : null);
  const arch = el("p", { class: "sp-mono sp-detail-arch", text: t.arch || "—" });
  // The actions first, under the title: never below a fold (issue 11 item 4). They need no
  // genome, so they show before it is read.
  let actions = null;
  if (t.state === "complete") {
    actions = el("div", { class: "sp-detail-actions", "data-testid": "trial-actions" },
      previewForm("trial-" + t.number, false), fullTrainForm(t.number),
      el("a", { class: "btn btn-ghost btn-small sp-download",
                href: location.pathname + "models/trial-" + t.number + ".zip",
                title: "A zip of ONNX, TorchScript and a model card",
                text: "Download model" }));
  }

  const metrics = el("dl", { class: "sp-metrics" },
    ...detailItem("PSNR", t.psnr == null ? "—" : fmtPsnr(t.psnr) + " dB" +
      (multi && scored ? " at " + stepsOfRung(rungOf(t)) : "")),
    ...detailItem("SSIM", fmtSsim(t.ssim)),
    ...detailItem("MACs", t.macs == null ? "—" : fmtG(t.macs) + " G"),
    ...detailItem("Params", fmtParams(t.params)),
    ...detailItem("Latency", t.latency_ms != null ? fmtMs(t.latency_ms) + " ms"
      : multi ? "— (measured at the top rung)" : "—"),
    ...detailItem("Training", t.train_seconds == null ? "—"
      : fmtSeconds(t.train_seconds) + " s" + (t.steps ? " · " + fmtInt(t.steps) + " steps" : "")));
  const parts = [head, title, arch, actions, metrics];

  // Rung history: the PSNR it reached at each rung, and the one under way.
  if (multi && (scored || up != null)) {
    const history = rungHistory(t);
    const items = history.map((r) => el("li", { "data-rung": r.rung },
      el("span", { class: "sp-rh-rung", text: "Rung " + (r.rung + 1) }),
      el("span", { class: "sp-rh-steps",
                   text: fmtInt(r.steps != null ? r.steps : RUNGS[r.rung]) + " steps" }),
      el("span", { class: "sp-rh-psnr", text: r.failed != null || r.psnr == null ? "failed"
        : fmtPsnr(r.psnr) + NBSP + "dB" }),
      el("span", { class: "sp-rh-time",
                   text: r.train_seconds != null ? fmtSeconds(r.train_seconds) + NBSP + "s" : "" })));
    if (up != null) {
      const run = state.training.get(t.number);
      items.push(el("li", { class: "sp-rh-next", "data-rung": up },
        el("span", { class: "sp-rh-rung", text: "Rung " + (up + 1) }),
        el("span", { class: "sp-rh-steps", text: fmtInt(RUNGS[up]) + " steps" }),
        el("span", { class: "sp-rh-psnr", text: "training…" }),
        el("span", { class: "sp-rh-time", text: run && run.step && run.steps
          ? Math.floor((100 * run.step) / run.steps) + "%" : "" })));
    }
    parts.push(el("h3", { class: "sp-subhead", text: "PSNR by rung" }));
    parts.push(el("ol", { class: "sp-rung-history", "aria-label": "PSNR at each rung" }, ...items));
    if (scored && !atTop(t)) {
      parts.push(el("p", { class: "sp-muted sp-rung-note",
        text: "Scored at " + stepsOfRung(rungOf(t)) + " (" + rungLabel(rungOf(t)) + "): the " +
          "front and the verdicts are read at " + fmtInt(topSteps()) + " steps only." }));
    }
  }
  if (below) {
    const ref = referenceBaseline();
    parts.push(el("p", { class: "sp-reason sp-below-note",
      text: "Its PSNR is not above " + referenceLabel() +
        (ref && ref.psnr != null ? " (" + fmtPsnr(ref.psnr) + " dB)" : "") +
        ": it is never on the front or in a verdict." }));
  }

  const ref = referenceBaseline();
  const compare = [];
  if (t.psnr != null && ref) compare.push(signed(t.psnr - ref.psnr) + " dB over " + baselineName(ref.name));
  const lowerSteps = multi && scored && !atTop(t) ? fmtInt(t.steps || RUNGS[rungOf(t)]) : null;
  for (const b of learnedBaselines().concat(pretrainedBaselines())) {
    if (t.psnr == null || !t.macs || !b.macs || b.psnr == null) continue;
    const ratio = b.macs / t.macs;
    const macs = Math.abs(Math.log(ratio)) < Math.log(1.05) ? "the same MACs"
      : ratio > 1 ? ratio.toFixed(1) + "× fewer MACs" : (1 / ratio).toFixed(1) + "× the MACs";
    const name = baselineName(b.name) + (b.pretrained ? " (pretrained)" : "");
    compare.push("vs " + name + ": " + signed(t.psnr - b.psnr) + " dB at " + macs +
      (b.pretrained || !lowerSteps ? "" : " (at " + lowerSteps + " steps against its " +
        fmtInt(topSteps()) + ")"));
  }
  if (compare.length) {
    parts.push(el("ul", { class: "sp-compare" }, ...compare.map((c) => el("li", { text: c }))));
  }
  if (t.reason) parts.push(el("p", { class: "sp-reason", text: t.reason }));
  if (curve && curve.length > 1) {
    parts.push(el("h3", { class: "sp-subhead", text: "Training loss" }));
    parts.push(...lossCurve(curve));
  }

  const g = t.genome;
  if (g === undefined) { // a slim row: its genome is read now
    parts.push(el("h3", { class: "sp-subhead", text: "Genome" }));
    parts.push(el("p", { class: "sp-muted sp-genome-loading", text: "loading…" }));
    loadGenome(t.number);
  }
  if (g) {
    const blocks = (g.ops || []).slice(0, g.depth).map((op, i) =>
      el("li", { class: "sp-block" }, el("span", { text: op }),
         el("small", { text: g.kernels[i] + "×" + g.kernels[i] })));
    parts.push(el("h3", { class: "sp-subhead", text: "Genome" }));
    parts.push(el("dl", { class: "sp-metrics sp-genome" },
      ...detailItem("Width", g.width + " channels"),
      ...detailItem("Depth", g.depth + (g.depth === 1 ? " block" : " blocks")),
      ...detailItem("Activation", g.activation),
      ...detailItem("Global residual", g.global_residual ? "yes" : "no")));
    parts.push(el("ol", { class: "sp-blocks", "aria-label": "body blocks" }, ...blocks));
    const copy = el("button", { type: "button", class: "btn btn-ghost btn-small",
                                text: "Copy genome as JSON" });
    copy.addEventListener("click", async () => {
      const text = JSON.stringify(g, null, 2);
      try {
        await navigator.clipboard.writeText(text);
        copy.textContent = "Copied";
      } catch (error) {
        copy.textContent = "Copy failed";
      }
      setTimeout(() => { copy.textContent = "Copy genome as JSON"; }, 1600);
    });
    parts.push(el("p", { class: "sp-genome-copy" }, copy));
  }
  box.replaceChildren(...parts.filter(Boolean));
}

// Slim rows carry no genome: read the trial in full when its detail opens.
const genomeLoads = new Set(); // trial numbers being read
async function loadGenome(number) {
  if (genomeLoads.has(number)) return;
  genomeLoads.add(number);
  try {
    const response = await fetch(dataUrl + "/trials/" + encodeURIComponent(number),
                                 { headers: { Accept: "application/json" },
                                   credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const t = state.trials.get(number);
    if (t && t.genome === undefined) {
      t.genome = data.trial.genome;
      if (state.selected === number) renderDetail();
    }
  } catch (error) {
    // Offline: the next time the detail opens tries again.
  } finally {
    genomeLoads.delete(number);
  }
}

/** A POST form for `candidate` to the URL the page embeds as JSON in `urlId`, with the
 * page's CSRF token (the cancel form's) and the given controls. */
function postForm(urlId, cls, candidate, ...controls) {
  const token = document.querySelector("#sp-cancel input[name=csrfmiddlewaretoken]");
  return el("form", { method: "post", action: readJSON(urlId), class: cls },
    el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token ? token.value : "" }),
    el("input", { type: "hidden", name: "candidate", value: candidate }), ...controls);
}

// A POST form that renders a candidate's before/after preview on the clip.
export function previewForm(candidate, compact) {
  const form = postForm("sp-preview-url", compact ? "sp-inline-form" : "sp-preview-form",
    candidate,
    el("button", { type: "submit", name: "mode", value: "measured",
                   class: compact ? "btn btn-ghost btn-small" : "btn btn-primary btn-small",
                   text: compact ? "preview" : "Preview on the clip",
                   title: "Degrade the clip, restore it, score every frame" }));
  if (!compact) {
    form.append(el("button", { type: "submit", name: "mode", value: "apply",
                               class: "btn btn-ghost btn-small", text: "Apply to the clip",
                               title: "Enhance the clip as it is (no reference, visual only)" }));
  }
  return form;
}

// A POST form that cancels the running full training of this trial (it can be resumed).
export function fullCancelForm(candidate) {
  return postForm("sp-full-cancel-url", "sp-inline-form sp-full-cancel-form", candidate,
    el("button", { type: "submit", class: "btn btn-ghost btn-small", text: "Cancel" }));
}

// A POST form that full-trains this trial (a longer, resumable budget) on a worker.
function fullTrainForm(number) {
  return postForm("sp-full-train-url", "sp-preview-form sp-full-train-form", "trial-" + number,
    el("label", { class: "sp-muted" }, "steps ",
       // Full training goes on from the top rung's saved state: 4x its steps by default.
       el("input", { type: "number", name: "steps", min: "100", max: "200000",
                     value: String(Math.max(5000, 4 * (topSteps() || 0))),
                     step: "100", class: "sp-steps" })),
    el("button", { type: "submit", class: "btn btn-ghost btn-small", text: "Full-train" }));
}
