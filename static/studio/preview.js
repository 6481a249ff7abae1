/* Preview page: while the preview waits or renders, its state is re-read as JSON every 2 s
   (no reloading loop) and the page reloads once when it has ended; once ready, its players
   (before, after, original) are linked: play, pause, seek or speed on one drives the others,
   and during play the others are kept within a frame of the one the user last touched. */
(function () {
  "use strict";
  const POLL_MS = 2000;

  /* Waiting or rendering. */
  const waiting = document.getElementById("pv-waiting");
  if (waiting) {
    const progress = document.getElementById("pv-progress");
    const status = document.getElementById("pv-status");
    const cancelForm = document.getElementById("pv-cancel-form");
    const poll = async () => {
      let state;
      try {
        const answer = await fetch(waiting.dataset.stateUrl, {
          headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store",
        });
        if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
        state = await answer.json();
      } catch (error) {
        setTimeout(poll, POLL_MS * 2); // a restarting server: try again, a little later
        return;
      }
      const preview = state.preview;
      if (preview.status !== "queued" && preview.status !== "running") {
        location.reload(); // ready, failed or cancelled: the page shows the result
        return;
      }
      progress.textContent = state.progress;
      progress.dataset.done = String(preview.frames_done);
      status.textContent = preview.status === "queued" ? "Queued" : "Running";
      status.className = `badge badge-${preview.status}`;
      if (cancelForm && preview.cancel_requested) cancelForm.hidden = true;
      setTimeout(poll, POLL_MS);
    };
    setTimeout(poll, POLL_MS);
    return;
  }

  /* Ready: linked players. */
  const players = ["pv-input", "pv-output", "pv-reference"]
    .map((id) => document.getElementById(id)).filter(Boolean);
  if (players.length < 2) return;
  const output = document.getElementById("pv-output");
  const frame = 1 / (Number(output.dataset.fps) || 25);
  let leader = output; // the player the user touched last sets the time
  const others = (v) => players.filter((p) => p !== v);

  // Every handler is idempotent (play a paused one, pause a playing one, seek one that is
  // off by more than half a frame), so the events the followers fire in turn change nothing.
  // The user's own action is the one that finds the others not yet following: it makes its
  // player the leader.
  function follow(v) {
    for (const p of others(v)) {
      if (Math.abs(p.currentTime - v.currentTime) > frame / 2) p.currentTime = v.currentTime;
    }
  }
  players.forEach((v) => {
    v.addEventListener("play", () => {
      if (!others(v).some((p) => p.paused)) return;
      leader = v;
      follow(v);
      others(v).forEach((p) => { if (p.paused) p.play().catch(() => {}); });
      requestAnimationFrame(keepUp);
    });
    v.addEventListener("pause", () => {
      if (others(v).some((p) => !p.paused)) {
        leader = v;
        others(v).forEach((p) => { if (!p.paused) p.pause(); });
      }
      follow(leader); // all stop on the leader's frame
    });
    v.addEventListener("seeking", () => {
      if (v === leader || Math.abs(v.currentTime - leader.currentTime) > frame / 2) {
        leader = v;
        follow(v);
      }
    });
    v.addEventListener("ratechange", () => {
      others(v).forEach((p) => { if (p.playbackRate !== v.playbackRate) p.playbackRate = v.playbackRate; });
    });
  });

  // During play each decoder keeps its own clock: one drifting by more than a frame is
  // put back on the leader's time.
  function keepUp() {
    if (leader.paused || leader.ended) return;
    for (const p of others(leader)) {
      if (!p.seeking && Math.abs(p.currentTime - leader.currentTime) > frame) {
        p.currentTime = leader.currentTime;
      }
    }
    requestAnimationFrame(keepUp);
  }
})();
