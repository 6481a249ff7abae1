/* The search page's live data: the embedded snapshot, the WebSocket's events, and the
 * JSON endpoint that fills gaps.
 *
 * The page embeds a snapshot (the search with its event `seq`, and every trial as a slim row:
 * no genome, which is read on demand when a trial's detail opens) and draws it at once; its
 * socket connects with `?after=seq` and sends a partial snapshot (the search now, the rows
 * changed since, and the events after seq), then events; a reconnect does the same from the
 * last event applied. Events whose seq is not newer than the last one seen are dropped; a gap
 * is filled from the JSON endpoint (`?after=N`); training_progress events (seq null) are
 * transient and always applied. On close the page says "reconnecting" and reconnects with
 * backoff, so a reload or a dropped connection never loses a trial. */

import { scheduleRender } from "./search.js";
import { fullCancelForm, keepCurve } from "./search_detail.js";
import { $ } from "./search_dom.js";
import { notePace } from "./search_eta.js";
import {
  RUNGS, dataUrl, isActive, multiRung, promoting, refreshRungs, state,
} from "./search_state.js";

// A partial snapshot (`partial`: the rows changed after event `after`) is merged into what
// the page holds; a full one replaces it.
function applySnapshot(snapshot) {
  const hadSnapshot = state.lastSeq !== null;
  const now = Date.now();
  const previous = state.trials;
  const partial = Boolean(snapshot.partial) && hadSnapshot;
  // The socket's first message after the embedded snapshot is most often "nothing since":
  // no redraw of 1,000 rows for it.
  const unchanged = partial && !snapshot.trials.length &&
    JSON.stringify(snapshot.search) === JSON.stringify(state.search);
  state.search = snapshot.search;
  state.trials = partial ? new Map(previous) : new Map();
  for (const t of snapshot.trials) {
    const old = previous.get(t.number);
    // On a reconnect, trials that arrived or changed while we were away get marked.
    if (hadSnapshot && (!old || old.seq !== t.seq) && t.state !== "running") {
      state.fresh.set(t.number, now);
    }
    // Rows are slim: keep a genome the page already read (a trial's genome never changes).
    if (t.genome === undefined && old && old.genome !== undefined) t.genome = old.genome;
    state.trials.set(t.number, t);
  }
  for (const n of [...state.training.keys()]) {
    const t = state.trials.get(n);
    if (!t || t.state !== "running") state.training.delete(n);
  }
  for (const t of state.trials.values()) {
    if (t.state === "running" && !state.training.has(t.number)) {
      state.training.set(t.number, { step: null, steps: null, rung: promoting(t), loss: null,
                                     losses: [] });
    }
  }
  state.lastSeq = snapshot.search.seq;
  // Rows an ended search settled without an event are not in a partial snapshot.
  if (partial && !isActive() && [...state.trials.values()].some((t) => t.state === "running")) {
    settleSoon();
  }
  if (!unchanged) scheduleRender();
}

function applyEvent(ev) {
  if (ev.seq != null) {
    if (state.lastSeq === null || ev.seq <= state.lastSeq) return; // before the snapshot
    if (ev.seq > state.lastSeq + 1) { catchUp(); return; } // missed some: read them back
    state.lastSeq = ev.seq;
  }
  const s = state.search;
  const now = Date.now();
  switch (ev.kind) {
    case "search_started":
      s.status = "running";
      s.started_at = s.started_at || new Date(now).toISOString();
      if (ev.n_trials) s.n_trials = ev.n_trials;
      if (Array.isArray(ev.rung_steps) && ev.rung_steps.length) {
        state.seen.rungSteps = ev.rung_steps;
      }
      if (ev.evaluations_planned) state.seen.evaluationsPlanned = ev.evaluations_planned;
      break;
    case "baseline_finished": {
      const others = (s.baselines || []).filter((b) => b.name !== ev.baseline.name);
      s.baselines = others.concat([ev.baseline]);
      state.baselineRuns.delete(ev.baseline.name);
      break;
    }
    case "baseline_progress": { // a learned baseline training (seq or not)
      if (ev.steps && ev.step >= ev.steps) { state.baselineRuns.delete(ev.name); break; }
      const run = state.baselineRuns.get(ev.name) || {};
      notePace(run, ev.step, now);
      run.step = ev.step; run.steps = ev.steps;
      state.baselineRuns.set(ev.name, run);
      break;
    }
    case "trial_started": {
      // A promotion reuses the candidate's number: its row runs again, keeping the result
      // of the rung below until the longer one ends.
      const old = state.trials.get(ev.number) || {};
      const rung = Number.isInteger(ev.rung) ? ev.rung : 0;
      state.trials.set(ev.number, {
        ...old, number: ev.number, state: "running", genome: ev.genome || old.genome,
        arch: (ev.genome && ev.genome.key) || old.arch || "", macs: ev.macs != null ? ev.macs
          : old.macs, seq: ev.seq, promoting: rung > 0 ? rung : null,
      });
      refreshRungs();
      state.training.set(ev.number, {
        step: 0, steps: ev.steps || (multiRung() ? RUNGS[rung] : (s.config.budget || {}).steps) ||
          null, rung: rung > 0 ? rung : null, loss: null, losses: [] });
      break;
    }
    case "training_progress": {
      const run = state.training.get(ev.number) ||
        { step: 0, steps: ev.steps, rung: null, loss: null, losses: [] };
      notePace(run, ev.step, now);
      run.step = ev.step; run.steps = ev.steps; run.loss = ev.loss;
      if (ev.loss != null && isFinite(ev.loss)) run.losses.push(ev.loss);
      keepCurve(ev, run);
      state.training.set(ev.number, run);
      if (!state.trials.has(ev.number)) {
        state.trials.set(ev.number, { number: ev.number, state: "running", arch: "", seq: 0 });
      }
      break;
    }
    case "trial_finished": {
      const rec = ev.trial;
      const old = state.trials.get(rec.number) || {};
      const row = {
        ...old, ...rec, arch: rec.arch || old.arch || "", on_front: ev.on_front,
        reason: rec.reason || "", seq: ev.seq,
      };
      if (rec.promoting === undefined) row.promoting = null; // this evaluation ended
      const rung = Number.isInteger(ev.rung) ? ev.rung : null;
      refreshRungs();
      if (rec.rung === undefined && rung != null && rec.state === "complete") row.rung = rung;
      if (rec.rungs === undefined && rung != null && rec.state === "complete") {
        // A record without its rung history: kept here from the events.
        row.rungs = (old.rungs || []).filter((r) => r.rung !== rung).concat([{
          rung, steps: rec.steps, psnr: rec.psnr, ssim: rec.ssim,
          train_seconds: rec.train_seconds }]).sort((a, b) => a.rung - b.rung);
      }
      if (Array.isArray(ev.front)) { // the engine's front now: older points may drop off
        const onFront = new Set(ev.front);
        for (const t of state.trials.values()) t.on_front = onFront.has(t.number);
        row.on_front = onFront.has(rec.number);
      }
      state.trials.set(rec.number, row);
      state.training.delete(rec.number);
      state.fresh.set(rec.number, now);
      s.finished_trials = ev.finished;
      if (ev.n_trials) s.n_trials = ev.n_trials;
      if (ev.evaluations_planned) {
        state.seen.evaluationsDone = ev.evaluations_done;
        state.seen.evaluationsPlanned = ev.evaluations_planned;
      }
      // Every evaluation that spent a budget sets the pace: first rungs and promotions.
      if (ev.counted || (rung && rec.state !== "rejected" && rec.state !== "duplicate")) {
        state.arrivals.push({ at: now, steps: rung != null && RUNGS[rung] ? RUNGS[rung]
          : rec.steps || null, counted: Boolean(ev.counted) });
      }
      if (s.status === "queued") s.status = "running";
      break;
    }
    case "search_finished":
      s.hypervolume = ev.hypervolume;
      break;
    case "search_done":
      s.status = "finished";
      s.finished_at = new Date(now).toISOString();
      if (ev.finished != null) s.finished_trials = ev.finished;
      state.note = ev.reason || "";
      state.training.clear();
      state.baselineRuns.clear();
      settleSoon();
      break;
    case "search_cancelled":
      s.status = "cancelled";
      s.finished_at = new Date(now).toISOString();
      if (ev.finished != null) s.finished_trials = ev.finished;
      state.training.clear();
      state.baselineRuns.clear();
      settleSoon();
      break;
    case "search_failed":
      s.status = "failed";
      s.error = ev.error || "unknown error";
      s.finished_at = new Date(now).toISOString();
      state.training.clear();
      state.baselineRuns.clear();
      settleSoon();
      break;
    case "full_training_started":
    case "full_training_progress":
    case "full_training_done":
    case "full_training_failed":
    case "full_training_cancel_requested":
    case "full_training_cancelled": {
      const line = $("sp-full-progress");
      line.hidden = false;
      line.textContent = ev.kind === "full_training_done"
        ? `${ev.candidate}: done, ${ev.psnr.toFixed(2)} dB after ${ev.steps} steps (reload to preview or download it)`
        : ev.kind === "full_training_failed" ? `${ev.candidate}: failed (${ev.error})`
        : ev.kind === "full_training_cancel_requested" ? `${ev.candidate}: cancelling...`
        : ev.kind === "full_training_cancelled" ? `${ev.candidate}: cancelled (full-train it again to resume)`
        : ev.kind === "full_training_started" ? `${ev.candidate}: starting (${ev.steps} steps) `
        : `full-training ${ev.candidate}: step ${ev.step} / ${ev.steps}, loss ${ev.loss.toFixed(4)} `;
      if (ev.kind === "full_training_started" || ev.kind === "full_training_progress") {
        line.append(fullCancelForm(ev.candidate.replace(/^full-/, "")));
      }
      break;
    }
    case "front_preview":
      $("sp-crop-before").src = ev.before + "?t=" + ev.seq;
      $("sp-crop-after").src = ev.after + "?t=" + ev.seq;
      $("sp-crop-title").textContent = "#" + ev.number;
      $("sp-crop").hidden = false;
      break;
    case "cancel_requested":
      s.cancel_requested = true;
      break;
    case "search_resumed":
      s.status = "queued";
      s.cancel_requested = false;
      s.error = "";
      s.finished_at = null;
      state.note = "";
      catchUp(true); // its place in the queue
      break;
    case "search_revived": // its workers died; the watchdog queued it again
      s.status = "queued";
      state.note = ev.reason || "";
      catchUp(true);
      break;
    default:
      break;
  }
  if (ev.seq != null) s.seq = ev.seq;
  scheduleRender();
}

// A search that ended may have settled rows left 'running' (no event says so): re-read them.
function settleSoon() { setTimeout(() => catchUp(true), 300); }

// Read events we missed (a gap in seq, or while the socket was down) from the JSON endpoint.
// `withRows` also takes the rows as they are now (a search that ended settles its rows
// without events): applied only when no newer event has been seen meanwhile.
let catchingUp = false;
let again = null; // null, or {withRows} for one more run when this one ends
export async function catchUp(withRows) {
  if (state.lastSeq === null) return;
  if (catchingUp) {
    again = { withRows: Boolean(withRows) || Boolean(again && again.withRows) };
    return;
  }
  catchingUp = true;
  try {
    let more = true;
    while (more) {
      const url = dataUrl + "?after=" + encodeURIComponent(state.lastSeq);
      const response = await fetch(url, { headers: { Accept: "application/json" },
                                          credentials: "same-origin" });
      if (!response.ok) break;
      const data = await response.json();
      for (const ev of data.events) {
        if (ev.seq === state.lastSeq + 1) applyEvent(ev);
      }
      more = data.more && data.events.length > 0;
      const newer = data.search.seq > state.lastSeq;
      if (!more && (newer || (withRows && data.search.seq === state.lastSeq))) {
        applySnapshot({ search: data.search, trials: data.trials });
      }
    }
  } catch (error) {
    // Offline: the next (re)connect brings a snapshot anyway.
  } finally {
    catchingUp = false;
    if (again) {
      const next = again;
      again = null;
      catchUp(next.withRows);
    }
  }
}

// A dropped socket (a server or Redis restart, a network blip) is reopened by itself with
// backoff (0.5 s doubling to 10 s, with jitter), with `?after=` the last event applied: the
// server's snapshot then carries the missed events and the rows changed since. Meanwhile
// the status line says "reconnecting" and the JSON endpoint keeps the page current.
const live = $("sp-live");
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10000;
// A ping makes the server join this socket to its group again (a Redis restart can wipe
// it) and answer the search's seq; one left unanswered means the connection is dead.
const PING_MS = 20000;
let socket = null;
let attempt = 0;
let retryTimer = null;
let pingTimer = null;
let pongDue = false;
let resume = null; // the embedded snapshot's seq: the first socket sends only what follows

function setLive(kind, text) {
  if (live.dataset.state === kind && live.textContent === text) return; // as the HTML has it
  live.dataset.state = kind;
  live.querySelector("span").textContent = text;
}

function connect() {
  clearTimeout(retryTimer);
  setLive(attempt ? "reconnecting" : "connecting", attempt ? "reconnecting…" : "connecting");
  const handlers = { open: onOpen, message: onMessage, close: onClose };
  // First connect: the socket search_socket.js opened early, after the embedded snapshot.
  const early = window.studioSearchSocket;
  if (resume !== null && early && early.seq === resume) {
    resume = null;
    socket = early.adopt(handlers);
    if (socket) return;
  }
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const after = resume !== null ? resume : state.lastSeq; // catch up from the last seen
  resume = null;
  const query = after !== null ? "?after=" + encodeURIComponent(after) : "";
  socket = new WebSocket(scheme + location.host + "/ws/searches/" + state.search.id + "/" +
                         query);
  for (const [type, handler] of Object.entries(handlers)) {
    socket.addEventListener(type, handler);
  }
}
function onOpen() {
  attempt = 0;
  setLive("live", "live");
  pongDue = false;
  clearInterval(pingTimer);
  pingTimer = setInterval(ping, PING_MS);
}
function ping() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (pongDue) { socket.close(); return; } // no answer to the last one: reconnect
  pongDue = true;
  socket.send(JSON.stringify({ type: "ping" }));
}
function onMessage(message) {
  let data;
  try { data = JSON.parse(message.data); } catch (error) { return; }
  if (data.type === "snapshot") {
    // A reconnect's snapshot: the events missed since `after`, in order, then the rows.
    for (const ev of data.events || []) applyEvent(ev);
    applySnapshot(data);
  } else if (data.type === "event") {
    applyEvent(data.event);
  } else if (data.type === "pong") {
    pongDue = false;
    // Newer events than the page has, none of which came: read them back.
    if (data.seq != null && state.lastSeq !== null && data.seq > state.lastSeq) catchUp();
  }
}
function onClose(event) {
  socket = null;
  clearInterval(pingTimer);
  if (event.code === 4401 || event.code === 4403) {
    setLive("offline", event.code === 4401 ? "signed out" : "no access");
    return;
  }
  const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt) *
    (0.8 + 0.4 * Math.random());
  attempt += 1;
  setLive("reconnecting", "reconnecting…");
  catchUp(); // the JSON endpoint answers even while the socket cannot (Redis down)
  retryTimer = setTimeout(connect, delay);
}
/** The embedded snapshot applied, then the socket: it adopts the one search_socket.js opened
 * (and what that already received), which asks only for what followed that snapshot. */
export function startLive(embedded) {
  if (embedded) {
    applySnapshot(embedded);
    resume = embedded.search.seq;
  }
  connect();
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && socket === null) { attempt = 0; connect(); }
});
