/* The live search page: overview, Pareto scatter, trial table, all fed by one WebSocket.
 *
 * The page embeds a snapshot (the search with its event `seq`, and every trial as a slim row:
 * no genome, which is read on demand when a trial's detail opens) and draws it at once; its
 * socket connects with `?after=seq` and sends a partial snapshot (the search now, the rows
 * changed since, and the events after seq), then events; a reconnect does the same from the
 * last event applied. Events whose seq is not newer than the last one seen are dropped; a gap
 * is filled from the JSON endpoint (`?after=N`); training_progress events (seq null) are
 * transient and always applied. On close the page says "reconnecting" and reconnects with
 * backoff, so a reload or a dropped connection never loses a trial.
 * The chart is created once and updated in place, so zoom, pan and selection survive.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- formatting
  const NBSP = "\u00a0";

  function fmtPsnr(v) { return v == null ? "—" : v.toFixed(2); }
  function fmtSsim(v) { return v == null ? "—" : v.toFixed(4); }
  function fmtG(v) {
    if (v == null) return "—";
    const g = v / 1e9;
    return g >= 100 ? g.toFixed(0) : g >= 0.01 ? g.toFixed(2) : g.toPrecision(2);
  }
  function fmtK(v) { return v == null ? "—" : (v / 1e3).toFixed(2); }
  function fmtParams(v) {
    if (v == null) return "—";
    return v >= 1e6 ? (v / 1e6).toFixed(2) + NBSP + "M" : (v / 1e3).toFixed(2) + NBSP + "K";
  }
  function fmtMs(v) {
    if (v == null || !isFinite(v)) return "—";
    return v < 10 ? v.toFixed(1) : v.toFixed(0);
  }
  function fmtInt(v) { return v == null ? "?" : Number(v).toLocaleString("en-US"); }
  function fmtSeconds(v) { return v == null ? "—" : v < 10 ? v.toFixed(1) : v.toFixed(0); }
  function fmtDuration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + NBSP + "s";
    const m = Math.round(s / 60);
    if (m < 60) return m + NBSP + "min";
    const h = Math.floor(m / 60);
    return h + NBSP + "h" + (m % 60 ? " " + (m % 60) + NBSP + "min" : "");
  }
  function fmtClock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function fmtCount(v) {
    if (v == null) return "—";
    for (const [suffix, unit] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) {
      if (v >= unit) return +(v / unit).toFixed(2) + NBSP + suffix;
    }
    return String(v);
  }

  const COST = {
    macs: { field: "macs", label: "MACs per output frame", unit: "G MACs",
            fmt: (v) => fmtG(v) + NBSP + "G", axis: (v) => +(v / 1e9).toPrecision(3) + " G" },
    params: { field: "params", label: "parameters", unit: "params", fmt: fmtParams,
              axis: fmtCount },
    latency: { field: "latency_ms", label: "latency per frame (ms)", unit: "ms",
               fmt: (v) => fmtMs(v) + NBSP + "ms", axis: (v) => +v.toPrecision(3) + " ms" },
  };
  const STRATEGY_NAMES = { nsga2: "NSGA-II", tpe: "TPE", random: "random search" };
  const BASELINE_NAMES = { espcn: "ESPCN", fsrcnn: "FSRCNN", bicubic: "bicubic",
                           identity: "identity", imdn: "IMDN" };
  const baselineName = (n) => BASELINE_NAMES[n] || n;

  /** One trial as words: "#12 w12_conv3_prelu+res — 31.25 dB PSNR, 0.67 G MACs, ..." */
  function describeTrial(t) {
    const parts = [];
    if (t.psnr != null) parts.push(fmtPsnr(t.psnr) + " dB PSNR");
    if (t.macs != null) parts.push(fmtG(t.macs) + " G MACs");
    if (t.params != null) parts.push(fmtParams(t.params) + " params");
    if (t.latency_ms != null && isFinite(t.latency_ms)) parts.push(fmtMs(t.latency_ms) + " ms");
    return "#" + t.number + " " + (t.arch || "?") + " — " + parts.join(", ");
  }
  function describeBaseline(b) {
    const parts = [fmtPsnr(b.psnr) + " dB PSNR"];
    if (b.macs) parts.push(fmtG(b.macs) + " G MACs");
    if (b.params) parts.push(fmtParams(b.params) + " params");
    if (b.latency_ms != null) parts.push(fmtMs(b.latency_ms) + " ms");
    const what = b.pretrained ? b.label || baselineName(b.name) + " (pretrained, not trained here)"
      : baselineName(b.name) + " (baseline)";
    return what + " — " + parts.join(", ");
  }

  // ---------------------------------------------------------------- small DOM helpers
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function readJSON(id) { const node = $(id); return node ? JSON.parse(node.textContent) : null; }
  function cssVar(name, fallback) {
    const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  // ---------------------------------------------------------------- state
  const initial = readJSON("sp-search");
  const clip = readJSON("sp-clip");
  const dataUrl = readJSON("sp-data-url");
  const FRESH_MS = 8000; // how long a new point keeps its ring, a new row its flash

  const state = {
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
  const costKey = () => (state.search.config.objectives || ["psnr", "macs"])[1] || "macs";
  const cost = () => COST[costKey()] || COST.macs;
  const isActive = () => ["queued", "running"].includes(state.search.status);

  // ---------------------------------------------------------------- rungs
  // A multi-fidelity search trains every candidate on a first rung of steps and moves the
  // best up to longer rungs; the front and the verdicts are read at the top rung only, from
  // results strictly above the no-learning reference (bicubic or identity). A config without
  // rungs (null, or a search from before them) has one rung of its budget's steps: every row
  // is then a top-rung result, rung fields or not.
  let RUNGS = [null]; // steps of each rung, lowest first (refreshRungs)
  let rungsKey = null;
  function refreshRungs() {
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
  const multiRung = () => RUNGS.length > 1;
  const topSteps = () => RUNGS[RUNGS.length - 1];
  /** The highest rung a candidate completed (0-based). */
  function rungOf(t) {
    if (Number.isInteger(t.rung)) return Math.min(t.rung, topRung());
    const at = t.steps != null ? RUNGS.indexOf(t.steps) : -1;
    return at >= 0 ? at : topRung();
  }
  const atTop = (t) => rungOf(t) >= topRung();
  const promoting = (t) => (Number.isInteger(t.promoting) ? t.promoting : null);
  /** "rung 2/3" as people count, 1-based. */
  const rungLabel = (k) => "rung " + (k + 1) + "/" + RUNGS.length;
  const stepsOfRung = (k) => (RUNGS[k] != null ? fmtInt(RUNGS[k]) + " steps" : "? steps");
  /** A candidate's PSNR at each rung it completed: [{rung, steps, psnr, ...}], lowest first. */
  function rungHistory(t) {
    if (Array.isArray(t.rungs) && t.rungs.length) {
      return t.rungs.slice().sort((a, b) => a.rung - b.rung);
    }
    if (t.psnr == null) return [];
    return [{ rung: rungOf(t), steps: t.steps, psnr: t.psnr, ssim: t.ssim,
              train_seconds: t.train_seconds }];
  }
  function historyText(t) {
    return rungHistory(t).map((r) => fmtInt(r.steps != null ? r.steps : RUNGS[r.rung]) +
      " steps: " + (r.failed != null || r.psnr == null ? "failed" : fmtPsnr(r.psnr) + " dB"))
      .join(" → ");
  }
  /** Not strictly above the no-learning reference: flagged, never on a front or in a verdict.
   * The row's own flag, or its PSNR against the reference baseline (rows from before the flag
   * read false). */
  function belowReference(row) {
    if (row.below_reference === true) return true;
    const ref = referenceBaseline();
    return row.psnr != null && ref != null && ref.psnr != null && row.psnr <= ref.psnr;
  }
  const referenceLabel = () => {
    const ref = referenceBaseline();
    return ref ? baselineName(ref.name) : "the reference";
  };
  /** Drawn on the chart: scored at some rung (a candidate being promoted keeps its point). */
  const scoredTrial = (t) => t.psnr != null &&
    (t.state === "complete" || (promoting(t) != null && t.state === "running"));
  /** What verdicts are read from: complete at the top rung, above the reference. */
  const inVerdictPool = (t) => t.state === "complete" && t.psnr != null && atTop(t) &&
    !belowReference(t);

  // ---------------------------------------------------------------- front
  /** The front as the engine computed it (top rung, above the reference): the rows'
   * `on_front` flags, kept current by each trial_finished event's `front` list. The page
   * never computes a front of its own. Cheapest first. */
  function computeFront() {
    const field = cost().field;
    const front = [...state.trials.values()]
      .filter((t) => t.on_front && t.psnr != null && t[field] != null)
      .sort((a, b) => a[field] - b[field] || b.psnr - a.psnr || a.number - b.number);
    state.front = new Set(front.map((t) => t.number));
    return front;
  }

  // ---------------------------------------------------------------- applying data
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

  /** Adds the time and steps since this run's previous progress event to the measured pace
   * (a gap over a minute is a pause, a reconnect: not training speed). */
  function notePace(run, step, now) {
    if (run.at != null && step > run.lastStep && now - run.at < 60000) {
      state.pace.ms += now - run.at;
      state.pace.steps += step - run.lastStep;
    }
    run.at = now;
    run.lastStep = step;
  }

  // A search that ended may have settled rows left 'running' (no event says so): re-read them.
  function settleSoon() { setTimeout(() => catchUp(true), 300); }

  // Read events we missed (a gap in seq, or while the socket was down) from the JSON endpoint.
  // `withRows` also takes the rows as they are now (a search that ended settles its rows
  // without events): applied only when no newer event has been seen meanwhile.
  let catchingUp = false;
  let again = null; // null, or {withRows} for one more run when this one ends
  async function catchUp(withRows) {
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

  // ---------------------------------------------------------------- WebSocket
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
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && socket === null) { attempt = 0; connect(); }
  });

  // ---------------------------------------------------------------- rendering
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { if (renderQueued) render(); });
  }

  let drawn = false; // the first draw shows the page as it is, without animations
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

  function renderHeader() {
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

  function taskLabel(c) {
    const m = /^sr_x(\d)$/.exec(c.task || "");
    if (m) return "super-resolution ×" + m[1];
    if (c.task === "denoise") return "denoise (σ " + c.noise_sigma + ")";
    if (c.task === "deblock") return "deblock (JPEG q" + c.jpeg_quality + ")";
    return c.task || "?";
  }

  function completeTrials() {
    return [...state.trials.values()].filter((t) => t.state === "complete" && t.psnr != null);
  }
  /** The no-learning reference (bicubic or identity): not a pretrained network's row. */
  function referenceBaseline() {
    return (state.search.baselines || []).find((b) => !b.learned && !b.pretrained);
  }
  function learnedBaselines() { return (state.search.baselines || []).filter((b) => b.learned); }
  /** Reference rows of networks pretrained elsewhere (IMDN): shown, never trained here. */
  function pretrainedBaselines() {
    return (state.search.baselines || []).filter((b) => !b.learned && b.pretrained);
  }

  /** Evaluations done and planned over every rung of a multi-fidelity search, where the
   * search says (else null: a single rung counts trials). Each counted first-rung candidate is
   * an evaluation, so done is at least the trials finished. */
  function evaluations() {
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
  const FINISHING_MS = 10000;

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

  /** Wall ms per evaluation of `steps` steps: the pace seen live over a while (parallel
   * workers and overheads included), else the finished trials' training time, else the
   * measured step rate (a baseline training before the first trial), plus scoring. */
  function msPerEvaluation(steps, perStep, workers) {
    const counted = state.arrivals.filter((x) => x.counted).map((x) => x.at);
    if (counted.length >= 3 && counted[counted.length - 1] - counted[0] >= 30000) {
      return (counted[counted.length - 1] - counted[0]) / (counted.length - 1);
    }
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
  function estimateEta() {
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
      if (timed.length >= 3 && timed[timed.length - 1].at - timed[0].at >= 30000) {
        const span = timed[timed.length - 1].at - timed[0].at;
        return steps * (span / timed.slice(1).reduce((x, y) => x + y.steps, 0));
      }
      return perStep == null ? null : (steps * perStep * OVERHEAD) / workers;
    }
    if (evals) {
      // Evaluations the search still plans (its own count, when the rung plan above does not
      // fit what it did), at the pace they have been arriving.
      const left = evals.planned - evals.done;
      if (left <= 0) return 0;
      const times = a.map((x) => x.at);
      if (times.length >= 3 && times[times.length - 1] - times[0] >= 30000) {
        return left * ((times[times.length - 1] - times[0]) / (times.length - 1));
      }
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

  function renderOverview() {
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

  function signed(v) { return (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(2); }

  // Where a queued search stands ("2 jobs ahead of yours (1 yours, 1 another user's)"), as
  // the server counts it (webapp/studio/queue_position.py); re-read while it waits.
  function waitingText(s) {
    return "waiting for a worker" + (s.queue && s.queue.text ? ": " + s.queue.text : "");
  }
  setInterval(() => { if (state.search && state.search.status === "queued") catchUp(true); },
              5000);

  function renderClock() {
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
      const failed = [...state.trials.values()].filter((t) => t.state === "failed").length;
      if (failed) notes.push(failed + " failed");
      const rejected = [...state.trials.values()].filter((t) => t.state === "rejected").length;
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

  function sparkline(values) {
    if (!values || values.length < 2) return null;
    const w = 64, h = 16;
    const min = Math.min(...values), max = Math.max(...values);
    const span = max - min || 1;
    const points = values.map((v, i) =>
      ((i / (values.length - 1)) * w).toFixed(1) + "," + (h - 1 - ((v - min) / span) * (h - 2)).toFixed(1));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "sp-spark");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("aria-label", "training loss");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    return svg;
  }

  // ---------------------------------------------------------------- chart
  // FRONT and DOMINATED hold top-rung results (solid), LOWER the lower rungs' (hollow).
  const DS = { FRONT_LINE: 0, FRONT: 1, DOMINATED: 2, BASELINES: 3, LOWER: 4, PRETRAINED: 5 };
  const HOLLOW = "rgba(255, 255, 255, 0)";
  let chart = null;
  let ringTimer = null;
  let chartSignature = null;
  const BIG_CHANGE = 50; // points added or removed at once above which no animation runs

  const colors = {
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

  /** The search's limit on the plotted cost, if it has one. */
  function costBudget() {
    const limits = state.search.config.constraints || {};
    return { macs: limits.max_macs, params: limits.max_params,
             latency: limits.max_latency_ms }[costKey()] || null;
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

  function renderChart() {
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

  // ---------------------------------------------------------------- optimization history
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

  function renderHistory() {
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

  function watchHistory() {
    const panel = $("sp-history-panel");
    const show = () => { historyWanted = true; renderHistory(); };
    if (!("IntersectionObserver" in window)) { show(); return; }
    const seen = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) { seen.disconnect(); show(); }
    });
    seen.observe(panel);
  }

  // ---------------------------------------------------------------- learning curves
  // Each trial's training loss as its progress events came, kept after it ends while the
  // page is open (the server keeps no per-step losses): shown in the trial's detail.
  const CURVE_MAX = 600; // points a curve keeps: beyond, every other one is dropped

  function keepCurve(ev, run) {
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

  // ---------------------------------------------------------------- table
  const rows = new Map(); // number -> <tr>
  const tbody = $("sp-rows");

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

  /** The state chip's words: a promotion under way, a result below the reference. */
  function stateLabel(t) {
    const up = promoting(t);
    if (up != null) return "promoting to rung " + (up + 1) + "…";
    if (t.state === "complete" && belowReference(t)) return "below " + referenceLabel();
    return t.state;
  }

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);

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
  function renderTable() {
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

  function onHeaderClick(event) {
    const th = event.target.closest("th[data-key]");
    if (!th) return;
    const key = th.dataset.key;
    if (state.sort.key === key) state.sort.dir = -state.sort.dir;
    else state.sort = { key, dir: ["arch", "state"].includes(key) ? 1 : -1 };
    renderTable();
  }

  // ---------------------------------------------------------------- filter
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

  // ---------------------------------------------------------------- selection and detail
  function select(number, scrollRow) {
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
  function linkSelection() {
    const url = new URL(location.href);
    if (state.selected == null) url.searchParams.delete("trial");
    else url.searchParams.set("trial", String(state.selected));
    if (/^#trial-\d+$/.test(url.hash)) url.hash = ""; // the issue's spelling, read on load
    if (url.href !== location.href) window.history.replaceState(window.history.state, "", url.href);
  }
  /** The trial a link names: ?trial=N, or #trial-N. */
  function linkedTrial() {
    const query = new URLSearchParams(location.search).get("trial");
    const hash = /^#trial-(\d+)$/.exec(location.hash);
    const value = query != null && /^\d+$/.test(query) ? query : hash ? hash[1] : null;
    return value == null ? null : Number(value);
  }

  /** Scrolls the table's own box to show a row, never the page: a point clicked in the chart
   * keeps the chart and the trial's detail (its actions) in view. */
  function revealRow(tr) {
    const wrap = tr.closest(".sp-table-wrap");
    if (!wrap) return;
    const box = wrap.getBoundingClientRect(), r = tr.getBoundingClientRect();
    const top = box.top + wrap.querySelector("thead").offsetHeight; // under the sticky head
    if (r.top < top) wrap.scrollTop -= top - r.top;
    else if (r.bottom > box.bottom) wrap.scrollTop += r.bottom - box.bottom;
  }

  function detailItem(label, value) {
    return [el("dt", { text: label }), el("dd", { text: value })];
  }

  function renderDetail() {
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

  // A POST form that renders a candidate's before/after preview on the clip.
  function previewForm(candidate, compact) {
    const token = document.querySelector("#sp-cancel input[name=csrfmiddlewaretoken]");
    const form = el("form", { method: "post", action: JSON.parse($("sp-preview-url").textContent),
                              class: compact ? "sp-inline-form" : "sp-preview-form" },
      el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token ? token.value : "" }),
      el("input", { type: "hidden", name: "candidate", value: candidate }),
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
  function fullCancelForm(candidate) {
    const token = document.querySelector("#sp-cancel input[name=csrfmiddlewaretoken]");
    return el("form", { method: "post", class: "sp-inline-form sp-full-cancel-form",
                        action: JSON.parse($("sp-full-cancel-url").textContent) },
      el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token ? token.value : "" }),
      el("input", { type: "hidden", name: "candidate", value: candidate }),
      el("button", { type: "submit", class: "btn btn-ghost btn-small", text: "Cancel" }));
  }

  // A POST form that full-trains this trial (a longer, resumable budget) on a worker.
  function fullTrainForm(number) {
    const token = document.querySelector("#sp-cancel input[name=csrfmiddlewaretoken]");
    return el("form", { method: "post", class: "sp-preview-form sp-full-train-form",
                        action: JSON.parse($("sp-full-train-url").textContent) },
      el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: token ? token.value : "" }),
      el("input", { type: "hidden", name: "candidate", value: "trial-" + number }),
      el("label", { class: "sp-muted" }, "steps ",
         // Full training goes on from the top rung's saved state: 4x its steps by default.
         el("input", { type: "number", name: "steps", min: "100", max: "200000",
                       value: String(Math.max(5000, 4 * (topSteps() || 0))),
                       step: "100", class: "sp-steps" })),
      el("button", { type: "submit", class: "btn btn-ghost btn-small", text: "Full-train" }));
  }

  // ---------------------------------------------------------------- start
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
    const embedded = readJSON("sp-snapshot");
    if (embedded) {
      applySnapshot(embedded);
      resume = embedded.search.seq;
    }
    watchHistory();
    connect(); // adopts the socket search_socket.js opened, and what it already received
    scheduleRender(); // the embedded snapshot, drawn at once: the socket brings only changes
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
})();
