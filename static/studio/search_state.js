/* The search page's state: the search, its trials as rows, and what is read from them
 * (rungs, the no-learning reference, the engine's front). Filled by search_live.js. */

import { readJSON } from "./search_dom.js";
import { COST, baselineName, fmtInt, fmtPsnr } from "./search_format.js";

const initial = readJSON("sp-search");
export const dataUrl = readJSON("sp-data-url");
export const FRESH_MS = 8000; // how long a new point keeps its ring, a new row its flash

export const state = {
  search: initial,
  trials: new Map(), // number -> trial dict (Trial.to_dict shape)
  lastSeq: null, // null until the first snapshot
  selected: null, // trial number or null
  sort: { key: "number", dir: -1 },
  filter: "",
  frontOnly: false,
  training: new Map(), // number -> {step, steps, rung, loss, losses[]}
  baselineRuns: new Map(), // baseline name -> {step, steps}: training to the top rung
  arrivals: [], // {at, steps, counted} of the trial_finished events seen live
  // Measured training speed: wall ms and steps between consecutive progress events of one
  // run (trials and baselines alike), i.e. one worker's pace, summed over every run seen.
  pace: { ms: 0, steps: 0 },
  seen: { rungSteps: null, evaluationsDone: null, evaluationsPlanned: null }, // from events
  fresh: new Map(), // number -> ms when it arrived (rings and row flashes)
  curves: new Map(), // number -> [{rung, step, loss}]: its training loss, seen live
  front: new Set(),
  note: "", // why a search ended early (search_done's reason), seen live
};
export const costKey = () => (state.search.config.objectives || ["psnr", "macs"])[1] || "macs";
export const cost = () => COST[costKey()] || COST.macs;
export const isActive = () => ["queued", "running"].includes(state.search.status);

// A multi-fidelity search trains every candidate on a first rung of steps and moves the
// best up to longer rungs; the front and the verdicts are read at the top rung only, from
// results strictly above the no-learning reference (bicubic or identity). A config without
// rungs (null, or a search from before them) has one rung of its budget's steps: every row
// is then a top-rung result, rung fields or not.
export let RUNGS = [null]; // steps of each rung, lowest first (refreshRungs)
let rungsKey = null;
export function refreshRungs() {
  const s = state.search;
  const c = s.config || {};
  const single = c.rungs == null; // null: single fidelity; absent: from before rungs
  const fromEvent = (Array.isArray(s.rung_steps) && s.rung_steps.length && s.rung_steps) ||
    state.seen.rungSteps;
  const key = JSON.stringify([single, fromEvent, c.rungs, (c.budget || {}).steps]);
  if (key === rungsKey) return;
  rungsKey = key;
  if (single) {
    RUNGS = [(c.budget || {}).steps || null];
  } else if (fromEvent) {
    RUNGS = fromEvent.slice();
  } else if (c.rungs.min_steps > 0 && c.rungs.max_steps >= c.rungs.min_steps &&
             c.rungs.eta >= 2) {
    // engine.config.Rungs.steps: min_steps * eta^k below max_steps, then max_steps.
    RUNGS = [];
    for (let n = c.rungs.min_steps; n < c.rungs.max_steps && RUNGS.length < 9; n *= c.rungs.eta) {
      RUNGS.push(n);
    }
    RUNGS.push(c.rungs.max_steps);
  } else {
    RUNGS = [(c.budget || {}).steps || null];
  }
}
const topRung = () => RUNGS.length - 1;
export const multiRung = () => RUNGS.length > 1;
export const topSteps = () => RUNGS[RUNGS.length - 1];
/** The highest rung a candidate completed (0-based). */
export function rungOf(t) {
  if (Number.isInteger(t.rung)) return Math.min(t.rung, topRung());
  const at = t.steps != null ? RUNGS.indexOf(t.steps) : -1;
  return at >= 0 ? at : topRung();
}
export const atTop = (t) => rungOf(t) >= topRung();
export const promoting = (t) => (Number.isInteger(t.promoting) ? t.promoting : null);
/** "rung 2/3" as people count, 1-based. */
export const rungLabel = (k) => "rung " + (k + 1) + "/" + RUNGS.length;
export const stepsOfRung = (k) => (RUNGS[k] != null ? fmtInt(RUNGS[k]) + " steps" : "? steps");
/** A candidate's PSNR at each rung it completed: [{rung, steps, psnr, ...}], lowest first. */
export function rungHistory(t) {
  if (Array.isArray(t.rungs) && t.rungs.length) {
    return t.rungs.slice().sort((a, b) => a.rung - b.rung);
  }
  if (t.psnr == null) return [];
  return [{ rung: rungOf(t), steps: t.steps, psnr: t.psnr, ssim: t.ssim,
            train_seconds: t.train_seconds }];
}
export function historyText(t) {
  return rungHistory(t).map((r) => fmtInt(r.steps != null ? r.steps : RUNGS[r.rung]) +
    " steps: " + (r.failed != null || r.psnr == null ? "failed" : fmtPsnr(r.psnr) + " dB"))
    .join(" → ");
}
/** Not strictly above the no-learning reference: flagged, never on a front or in a verdict.
 * The row's own flag, or its PSNR against the reference baseline (rows from before the flag
 * read false). */
export function belowReference(row) {
  if (row.below_reference === true) return true;
  const ref = referenceBaseline();
  return row.psnr != null && ref != null && ref.psnr != null && row.psnr <= ref.psnr;
}
export const referenceLabel = () => {
  const ref = referenceBaseline();
  return ref ? baselineName(ref.name) : "the reference";
};
/** Drawn on the chart: scored at some rung (a candidate being promoted keeps its point). */
export const scoredTrial = (t) => t.psnr != null &&
  (t.state === "complete" || (promoting(t) != null && t.state === "running"));
/** What verdicts are read from: complete at the top rung, above the reference. */
export const inVerdictPool = (t) => t.state === "complete" && t.psnr != null && atTop(t) &&
  !belowReference(t);

/** The front as the engine computed it (top rung, above the reference): the rows'
 * `on_front` flags, kept current by each trial_finished event's `front` list. The page
 * never computes a front of its own. Cheapest first. */
export function computeFront() {
  const field = cost().field;
  const front = [...state.trials.values()]
    .filter((t) => t.on_front && t.psnr != null && t[field] != null)
    .sort((a, b) => a[field] - b[field] || b.psnr - a.psnr || a.number - b.number);
  state.front = new Set(front.map((t) => t.number));
  return front;
}

export function completeTrials() {
  return [...state.trials.values()].filter((t) => t.state === "complete" && t.psnr != null);
}
/** How many trials are in `name` (failed, rejected...). */
export function countState(name) {
  let n = 0;
  for (const t of state.trials.values()) if (t.state === name) n += 1;
  return n;
}
/** The no-learning reference (bicubic or identity): not a pretrained network's row. */
export function referenceBaseline() {
  return (state.search.baselines || []).find((b) => !b.learned && !b.pretrained);
}
export function learnedBaselines() { return (state.search.baselines || []).filter((b) => b.learned); }
/** Reference rows of networks pretrained elsewhere (IMDN): shown, never trained here. */
export function pretrainedBaselines() {
  return (state.search.baselines || []).filter((b) => !b.learned && b.pretrained);
}

/** The search's limit on the plotted cost, if it has one. */
export function costBudget() {
  const limits = state.search.config.constraints || {};
  return { macs: limits.max_macs, params: limits.max_params,
           latency: limits.max_latency_ms }[costKey()] || null;
}

/** The state chip's words: a promotion under way, a result below the reference. */
export function stateLabel(t) {
  const up = promoting(t);
  if (up != null) return "promoting to rung " + (up + 1) + "…";
  if (t.state === "complete" && belowReference(t)) return "below " + referenceLabel();
  return t.state;
}
