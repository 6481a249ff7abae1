/* How much work a search has left and how long it takes, from measured rates. */

import {
  RUNGS, multiRung, rungHistory, rungOf, scoredTrial, state, topSteps,
} from "./search_state.js";

/** Adds the time and steps since this run's previous progress event to the measured pace
 * (a gap over a minute is a pause, a reconnect: not training speed). */
export function notePace(run, step, now) {
  if (run.at != null && step > run.lastStep && now - run.at < 60000) {
    state.pace.ms += now - run.at;
    state.pace.steps += step - run.lastStep;
  }
  run.at = now;
  run.lastStep = step;
}

/** Evaluations done and planned over every rung of a multi-fidelity search, where the
 * search says (else null: a single rung counts trials). Each counted first-rung candidate is
 * an evaluation, so done is at least the trials finished. */
export function evaluations() {
  const s = state.search;
  const planned = state.seen.evaluationsPlanned || s.evaluations_planned;
  if (!planned || !multiRung()) return null;
  const done = Math.max(s.evaluations_done || 0, state.seen.evaluationsDone || 0,
                        s.finished_trials || 0);
  return { done: Math.min(done, planned), planned };
}

/** Training steps left in a multi-fidelity search: each rung's planned evaluations not yet
 * done (ceil(n / eta) move up from each rung) times its steps, less the steps under way; null
 * where the search has a single rung. An evaluation at 4,800 steps is worth 16 at 300. */
function stepsLeft() {
  const c = state.search.config || {};
  if (!multiRung() || !c.rungs || !(c.rungs.eta >= 2)) return null;
  // The plan the server read from the config (engine Rungs.planned), else the same here.
  let planned = state.search.rung_plan;
  if (!Array.isArray(planned) || planned.length !== RUNGS.length) {
    planned = [state.search.n_trials];
    for (let k = 1; k < RUNGS.length; k++) planned.push(Math.ceil(planned[k - 1] / c.rungs.eta));
  }
  const done = RUNGS.map(() => 0);
  for (const t of state.trials.values()) {
    if (Array.isArray(t.rungs) && t.rungs.length) {
      for (const r of t.rungs) if (r.rung < done.length) done[r.rung] += 1;
    } else if (t.state === "failed") {
      done[0] += 1;
    } else if (scoredTrial(t)) {
      for (let k = 0; k <= rungOf(t); k++) done[k] += 1;
    }
  }
  let left = 0;
  RUNGS.forEach((steps, k) => { left += Math.max(0, planned[k] - done[k]) * steps; });
  for (const run of state.training.values()) left -= run.step || 0;
  for (const run of state.baselineRuns.values()) left += Math.max(0, run.steps - run.step);
  return Math.max(0, left);
}

const OVERHEAD = 1.15; // scoring and latency runs on top of an evaluation's training steps
// Under this the work left is mostly scoring and bookkeeping, which no measured rate
// foretells: the page says "finishing…" rather than "about 1 s left" with 8 s to go.
export const FINISHING_MS = 10000;

/** One worker's wall ms per training step: measured from progress events over at least
 * 3 s, else from the finished evaluations' own training time; null before either. */
function msPerStep() {
  if (state.pace.ms >= 3000 && state.pace.steps > 0) return state.pace.ms / state.pace.steps;
  let seconds = 0, trained = 0;
  for (const t of state.trials.values()) {
    for (const r of rungHistory(t)) {
      if (r.train_seconds != null && r.steps) { seconds += r.train_seconds; trained += r.steps; }
    }
  }
  return trained ? (seconds * 1000) / trained : null;
}

/** Where a run is now: its last reported step moved on at the measured pace (so the ETA
 * counts down between progress events), never past its end. */
function stepNow(run, perStep, now) {
  const step = run.step || 0;
  if (!run.steps) return step;
  const moved = run.at != null && perStep ? (now - run.at) / perStep : 0;
  return Math.min(run.steps, step + moved);
}

/** Wall ms per unit between `times` (ms) seen live, where there are enough over long enough
 * to trust (3 over 30 s: parallel workers and overheads included); `units` counts what
 * arrived after the first (default: one each). Else null. */
function livePace(times, units) {
  if (times.length < 3 || times[times.length - 1] - times[0] < 30000) return null;
  return (times[times.length - 1] - times[0]) / (units == null ? times.length - 1 : units);
}

/** Wall ms per evaluation of `steps` steps: the pace seen live over a while (parallel
 * workers and overheads included), else the finished trials' training time, else the
 * measured step rate (a baseline training before the first trial), plus scoring. */
function msPerEvaluation(steps, perStep, workers) {
  const live = livePace(state.arrivals.filter((x) => x.counted).map((x) => x.at));
  if (live != null) return live;
  const times = [...state.trials.values()]
    .filter((t) => t.train_seconds != null && ["complete", "failed"].includes(t.state))
    .map((t) => t.train_seconds);
  if (times.length) return (times.reduce((x, y) => x + y, 0) / times.length) * OVERHEAD * 1000 / workers;
  if (perStep && steps) return (steps * perStep * OVERHEAD) / workers;
  return null;
}

/** Milliseconds of work left in a running search, null while unknown. Built from what is
 * left (evaluations, or steps over the rungs) times the measured time per unit: never
 * from a countdown of the last estimate. */
export function estimateEta() {
  const s = state.search;
  if (s.status !== "running") return null;
  const now = Date.now();
  const workers = Math.max(1, s.workers || 1);
  const perStep = msPerStep();
  const a = state.arrivals;
  const steps = stepsLeft(); // multi-fidelity, its baselines included
  const evals = evaluations();
  if (steps != null && steps > 0) {
    // Multi-fidelity: paced per training step, rungs being of very different lengths.
    const timed = a.filter((x) => x.steps);
    const live = livePace(timed.map((x) => x.at), timed.slice(1).reduce((x, y) => x + y.steps, 0));
    if (live != null) return steps * live;
    return perStep == null ? null : (steps * perStep * OVERHEAD) / workers;
  }
  if (evals) {
    // Evaluations the search still plans (its own count, when the rung plan above does not
    // fit what it did), at the pace they have been arriving.
    const left = evals.planned - evals.done;
    if (left <= 0) return 0;
    const live = livePace(a.map((x) => x.at));
    if (live != null) return left * live;
    const perEval = msPerEvaluation(topSteps(), perStep, workers);
    return perEval == null ? null : left * perEval;
  }
  if (steps != null) return 0; // multi-fidelity with no step left: scoring the last ones
  // One rung: the evaluations not started, plus what the running ones have left.
  const runs = [...state.training.values()];
  let left = Math.max(0, s.n_trials - s.finished_trials - runs.length);
  for (const run of runs) left += run.steps ? 1 - stepNow(run, perStep, now) / run.steps : 1;
  // Learned baselines train before the first trial: their steps left at the measured pace.
  let baselines = 0;
  for (const run of state.baselineRuns.values()) {
    if (run.steps) baselines += run.steps - stepNow(run, perStep, now);
  }
  if (left <= 0 && !baselines) return 0;
  const perEval = msPerEvaluation((s.config.budget || {}).steps || topSteps(), perStep, workers);
  if (perEval == null || (baselines && perStep == null)) return null;
  return left * perEval + (baselines ? (baselines * perStep) / workers : 0);
}
