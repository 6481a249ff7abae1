/* The search page's header and overview cards: progress and ETA, best PSNR, baselines,
 * what trains now. */

import { drawn } from "./search.js";
import { previewForm, select } from "./search_detail.js";
import { $, el, sparkline } from "./search_dom.js";
import { FINISHING_MS, estimateEta, evaluations } from "./search_eta.js";
import {
  NBSP, STRATEGY_NAMES, baselineName, fmtClock, fmtCount, fmtDuration, fmtG, fmtInt, fmtMs,
  fmtParams, fmtPsnr, fmtSsim, signed, taskLabel,
} from "./search_format.js";
import { catchUp } from "./search_live.js";
import {
  RUNGS, atTop, belowReference, completeTrials, cost, countState, inVerdictPool, isActive,
  learnedBaselines, multiRung, promoting, referenceBaseline, referenceLabel, rungLabel, rungOf,
  state, stepsOfRung, topSteps,
} from "./search_state.js";

export function renderHeader() {
  const s = state.search;
  const page = $("search-page");
  page.dataset.status = s.status;
  const badge = $("sp-status");
  const label = s.status === "running" && s.cancel_requested ? "cancelling" : s.status;
  badge.textContent = label;
  badge.className = "badge sp-badge badge-" + s.status + (s.cancel_requested ? " sp-cancelling" : "");
  $("sp-cancel").hidden = !isActive() || s.cancel_requested;
  $("sp-resume").hidden = !["cancelled", "interrupted", "failed"].includes(s.status);
  $("sp-restart").hidden = !isActive() || s.cancel_requested;
  $("sp-plot").hidden = s.status !== "finished";
  $("sp-error").hidden = !(s.status === "failed" && s.error);
  $("sp-error-text").textContent = s.error || "";
  $("sp-name").textContent = s.name;

  const c = s.config || {};
  const budget = c.budget || {};
  const limits = c.constraints || {};
  const parts = [];
  parts.push(taskLabel(c));
  parts.push(STRATEGY_NAMES[c.strategy] || c.strategy);
  parts.push(multiRung()
    ? s.n_trials + " trials × " + RUNGS.map(fmtInt).join(" → ") + " steps (rungs, η " +
      ((c.rungs || {}).eta || "?") + ")"
    : s.n_trials + " trials × " + (budget.steps || RUNGS[0] || "?") + " steps");
  const objectives = c.objectives || ["psnr", "macs"];
  parts.push(objectives[0].toUpperCase() + " vs " + (objectives[1] === "macs" ? "MACs" : objectives[1]));
  const lim = [];
  if (limits.max_macs) lim.push("≤" + NBSP + fmtG(limits.max_macs) + NBSP + "G MACs");
  if (limits.max_params) lim.push("≤" + NBSP + fmtCount(limits.max_params) + " params");
  if (limits.max_latency_ms) lim.push("≤" + NBSP + limits.max_latency_ms + NBSP + "ms");
  if (lim.length) parts.push(lim.join(", "));
  if (c.resolution) parts.push("cost at " + c.resolution[0] + "×" + c.resolution[1]);
  if (s.workers > 1) parts.push(s.workers + " workers");
  $("sp-summary").textContent = parts.join(" · ");
}

export function renderOverview() {
  const s = state.search;
  const total = s.n_trials;
  const done = Math.min(s.finished_trials, total);
  $("sp-done").textContent = done;
  $("sp-total").textContent = total;
  // The bar counts evaluations (every rung) where the search says, else trials.
  const evals = evaluations();
  const [barDone, barTotal] = evals ? [evals.done, evals.planned] : [done, total];
  const bar = $("sp-bar");
  bar.setAttribute("aria-valuenow", barDone);
  bar.setAttribute("aria-valuemax", barTotal);
  bar.setAttribute("aria-label", evals ? "evaluations done, every rung" : "trials finished");
  const fill = $("sp-bar-fill");
  fill.style.transition = drawn ? "" : "none"; // no half-second of frames on the first draw
  fill.style.width = (barTotal ? (100 * barDone) / barTotal : 0) + "%";
  const evalsLine = $("sp-evals");
  evalsLine.hidden = !evals;
  if (evals) {
    evalsLine.textContent = evals.done + " / " + evals.planned + " evaluations" +
      (multiRung() ? " over " + RUNGS.length + " rungs (" + RUNGS.map(fmtInt).join(" → ") +
        " steps)" : "");
  }
  renderClock();

  // Best PSNR and its cost: at the top rung once a candidate got there.
  const complete = completeTrials();
  const atTopRung = complete.filter(atTop);
  const ref = referenceBaseline();
  if (complete.length) {
    const pool = atTopRung.length ? atTopRung : complete;
    const best = pool.reduce((a, b) => (b.psnr > a.psnr ? b : a));
    $("sp-best").replaceChildren(fmtPsnr(best.psnr), el("small", { text: NBSP + "dB" }));
    const note = ["#" + best.number + " at " + cost().fmt(best[cost().field])];
    if (multiRung()) {
      note.push(atTop(best) ? "top rung, " + fmtInt(topSteps()) + " steps"
        : stepsOfRung(rungOf(best)) + ", none at the top rung yet");
    }
    if (ref) note.push(signed(best.psnr - ref.psnr) + NBSP + "dB over " + baselineName(ref.name));
    const link = el("a", { href: "#", "data-trial": best.number, text: note.join(" · ") });
    link.addEventListener("click", (e) => { e.preventDefault(); select(best.number, true); });
    $("sp-best-note").replaceChildren(link);
  } else {
    $("sp-best").textContent = "—";
    $("sp-best-note").textContent = isActive() ? "no trained trial yet" : "no trained trial";
  }
  renderBaselines();
  renderTraining();
}

/** Baselines, and the cheapest result that matches each learned one: read at the top rung,
 * from results above the reference; a baseline not above it is matched by nothing. */
function renderBaselines() {
  const s = state.search;
  const baselines = s.baselines || [];
  const list = $("sp-baselines");
  const atSteps = multiRung() ? " at " + fmtInt(topSteps()) + " steps" : "";
  $("sp-baselines-hint").textContent = multiRung()
    ? "(trained to the top rung, " + fmtInt(topSteps()) + " steps)" : "(same training budget)";
  const pending = [...state.baselineRuns.entries()]
    .filter(([name]) => !baselines.some((b) => b.name === name))
    .map(([name, run]) => el("li", { class: "sp-bl-pending", "data-baseline": name },
      el("span", { class: "sp-bl-name", text: baselineName(name) }),
      el("span", { class: "sp-bl-psnr sp-muted", text: "training" }),
      el("span", { class: "sp-bl-cost",
                   text: Math.floor((100 * run.step) / Math.max(1, run.steps)) + "%" })));
  if (!baselines.length && !pending.length) {
    list.replaceChildren(el("li", { class: "sp-muted",
      text: !isActive() ? "none" : multiRung() ? "trained during the search"
        : "trained before the first trial" }));
    return;
  }
  const field = cost().field;
  const pool = [...state.trials.values()].filter(inVerdictPool);
  const dominance = s.baseline_dominance || [];
  const rows = baselines.map((b) => {
    const name = baselineName(b.name);
    if (b.pretrained) {
      // A reference network trained elsewhere: its numbers, never a verdict.
      const details = [b.label || name + " (pretrained, not trained here)"];
      if (b.ssim != null) details.push("SSIM " + fmtSsim(b.ssim));
      if (b.latency_ms != null) details.push(fmtMs(b.latency_ms) + NBSP + "ms");
      if (b.params) details.push(fmtParams(b.params) + " params");
      return el("li", { class: "sp-bl-pretrained", "data-baseline": b.name },
        el("span", { class: "sp-bl-name", text: name }),
        el("span", { class: "sp-bl-psnr", text: fmtPsnr(b.psnr) + NBSP + "dB" }),
        el("span", { class: "sp-bl-cost", text: b[field] != null ? cost().fmt(b[field]) : "—" }),
        el("span", { class: "sp-bl-verdict sp-bl-ref", text: details.join(" · ") }));
    }
    const verdictRow = dominance.find((d) => d.baseline === b.name);
    const below = b.learned && (belowReference(b) || Boolean(verdictRow && verdictRow.below_reference));
    const row = el("li", { class: below ? "sp-bl-below" : null, "data-baseline": b.name },
      el("span", { class: "sp-bl-name", text: name }),
      el("span", { class: "sp-bl-psnr", text: fmtPsnr(b.psnr) + NBSP + "dB" }),
      el("span", { class: "sp-bl-cost", text: b.learned ? cost().fmt(b[field]) : "no learning" }));
    if (below) {
      row.append(el("span", { class: "sp-bl-verdict sp-bl-flag",
        title: "Its PSNR is not above " + referenceLabel() + ": nothing is said to match it.",
        text: "below " + referenceLabel() + atSteps + ": no verdict" }));
    } else if (b.learned && b[field] != null) {
      const rivals = pool.filter((t) => t.psnr >= b.psnr && t[field] <= b[field]);
      let verdict;
      if (rivals.length) {
        const cheapest = rivals.reduce((x, y) => (y[field] < x[field] ? y : x));
        const factor = b[field] / Math.max(cheapest[field], 1);
        verdict = el("span", { class: "sp-bl-verdict sp-good",
          text: "matched" + atSteps + " by #" + cheapest.number +
            (factor >= 1.05 ? " at " + factor.toFixed(factor < 10 ? 1 : 0) + "× less" : "") });
      } else {
        verdict = el("span", { class: "sp-bl-verdict sp-muted",
          text: "not matched" + atSteps + (isActive() ? " yet" : "") });
      }
      if (multiRung()) {
        verdict.title = "Read at the top rung (" + fmtInt(topSteps()) + " steps), from results " +
          "above " + referenceLabel() + "; lower-rung results are not compared.";
      }
      row.append(verdict);
    }
    // Learned baselines have weights too: preview them to compare against the found nets.
    if (b.learned && !isActive()) row.append(previewForm("baseline-" + b.name, true));
    return row;
  });
  list.replaceChildren(...rows, ...pending);
}

// Where a queued search stands ("2 jobs ahead of yours (1 yours, 1 another user's)"), as
// the server counts it (webapp/studio/queue_position.py); re-read while it waits.
function waitingText(s) {
  return "waiting for a worker" + (s.queue && s.queue.text ? ": " + s.queue.text : "");
}
setInterval(() => { if (state.search && state.search.status === "queued") catchUp(true); },
            5000);

export function renderClock() {
  const s = state.search;
  const bits = [];
  // A cancel stops the worker at its next progress step: no time left is claimed then.
  const eta = s.cancel_requested ? null : estimateEta();
  if (isActive() && s.cancel_requested) {
    bits.push("cancelling: stops within seconds");
  } else if (s.status === "queued") {
    bits.push(waitingText(s));
  } else if (eta != null && eta < FINISHING_MS) {
    bits.push("finishing…");
  } else if (eta != null) {
    bits.push("about " + fmtDuration(eta) + " left (done ≈ " +
              fmtClock(new Date(Date.now() + eta)) + ")");
  } else if (s.status === "running") {
    bits.push(state.baselineRuns.size ? "training the baselines, estimating time left…"
      : "estimating time left…");
  }
  if (s.started_at) {
    const end = s.finished_at && !isActive() ? Date.parse(s.finished_at) : Date.now();
    bits.push((isActive() ? "running " : "ran ") + fmtDuration(end - Date.parse(s.started_at)));
  }
  if (state.note && !isActive()) bits.push(state.note);
  $("sp-eta").textContent = bits.join(" · ") || NBSP;
}

function renderTraining() {
  const box = $("sp-current");
  const s = state.search;
  if (!isActive() && !state.training.size) {
    // Over: this card sums up the outcome instead.
    $("sp-current-label").textContent = "Pareto front";
    const n = state.front.size;
    const notes = [];
    if (multiRung()) notes.push("at " + fmtInt(topSteps()) + " steps");
    if (s.hypervolume != null) notes.push("hypervolume " + s.hypervolume.toFixed(3));
    const failed = countState("failed");
    if (failed) notes.push(failed + " failed");
    const rejected = countState("rejected");
    if (rejected) notes.push(rejected + " over budget");
    box.replaceChildren(
      el("p", { class: "sp-big" }, String(n), el("small", { text: n === 1 ? " trial" : " trials" })),
      el("p", { class: "sp-card-note", text: notes.join(" · ") || NBSP }));
    return;
  }
  $("sp-current-label").textContent = "Now training";
  if (!state.training.size && !state.baselineRuns.size) {
    // Said as it is: no trial has started yet (frames, baselines), or one just ended.
    const text = s.status !== "running" ? waitingText(s)
      : s.cancel_requested ? "cancelling: stops within seconds"
      : state.trials.size ? "between trials"
      : learnedBaselines().length ? "starting the first trial"
      : "preparing: reading the clip's frames, scoring the baselines";
    box.replaceChildren(el("p", { class: "sp-muted", text }));
    return;
  }
  const bar = (pct) => el("div", { class: "sp-bar sp-bar-thin" },
    (() => { const f = el("div", { class: "sp-bar-fill" }); f.style.width = pct + "%"; return f; })());
  // ESPCN and FSRCNN train to the top rung as jobs of their own, at any time of the search.
  const baselineRuns = [...state.baselineRuns.entries()].map(([name, run]) =>
    el("div", { class: "sp-run sp-run-baseline", "data-baseline": name },
      bar(run.steps ? Math.min(100, (100 * run.step) / run.steps) : 0),
      el("p", { class: "sp-card-note", "data-testid": "baseline-progress" },
        "Training " + baselineName(name) + (multiRung() ? " to the top rung" : "") + ": step " +
        fmtInt(run.step) + " / " + fmtInt(run.steps))));
  const runs = [...state.training.entries()].sort((a, b) => a[0] - b[0])
    .slice(0, Math.max(1, 3 - baselineRuns.length));
  box.replaceChildren(...runs.map(([number, run]) => {
    const t = state.trials.get(number) || {};
    const pct = run.steps ? Math.min(100, (100 * (run.step || 0)) / run.steps) : 0;
    const stepText = run.step == null ? "starting"
      : "step " + fmtInt(run.step) + " / " + (run.steps ? fmtInt(run.steps) : "?");
    const rung = run.rung || promoting(t);
    return el("div", { class: "sp-run", "data-trial": number },
      el("p", { class: "sp-run-line" },
        el("strong", { text: "#" + number }), " ",
        el("span", { class: "sp-mono", text: t.arch || "" })),
      bar(pct),
      el("p", { class: "sp-card-note", "data-testid": "current-trial" },
        (rung ? "promoting to " + rungLabel(rung) + ": " : "current trial: ") + stepText +
        (run.loss != null ? " · loss " + run.loss.toPrecision(3) : ""),
        sparkline(run.losses)));
  }), ...baselineRuns);
}
