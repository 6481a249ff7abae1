/* Comparison page: a reference video against N candidates, drawn frame-accurately onto
   canvases (wipe, side by side, difference ×4) with a synced playhead, zoom and pan. */
(function () {
  "use strict";
  const root = document.getElementById("cmp-root");
  if (!root) return;
  const previews = JSON.parse(document.getElementById("cmp-previews").textContent);
  const $ = (id) => document.getElementById(id);
  const stage = $("cmp-stage"), timeline = $("cmp-timeline");
  const q = new URLSearchParams(location.search);
  const num = (v, d) => { const n = parseFloat(v); return Number.isFinite(n) ? n : d; };
  const first = previews[0];
  const W = first.width, H = first.height, FPS = first.fps;
  const FRAMES = Math.max(1, Math.min(...previews.map((p) => p.frames || 1)));
  const clampF = (n) => Math.max(0, Math.min(FRAMES - 1, Math.round(n)));
  const state = {
    ref: q.get("ref") === "bicubic" ? "bicubic" : "original",
    frame: clampF(num(q.get("frame"), 0)),
    zoom: num(q.get("zoom"), 0),
    x: num(q.get("x"), W / 2), y: num(q.get("y"), H / 2),
    wipe: Math.max(0, Math.min(1, num(q.get("wipe"), 0.5))),
    mode: ["wipe", "side", "diff"].includes(q.get("mode")) ? q.get("mode") : "wipe",
    active: Math.max(0, Math.min(previews.length - 1, Math.round(num(q.get("active"), 0)))),
    playing: false,
  };

  /* Hidden videos and their last drawn frame (an offscreen canvas at native size). */
  const box = $("cmp-videos");
  function makeSource(src) {
    const video = document.createElement("video");
    video.muted = true; video.playsInline = true; video.preload = "auto";
    video.src = src; box.appendChild(video);
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    return { video, canvas, ctx: canvas.getContext("2d", { willReadFrequently: true }) };
  }
  let refSrc = makeSource(first.urls[state.ref]);
  const cands = previews.map((p) => makeSource(p.urls.output));
  const grab = (s) => s.ctx.drawImage(s.video, 0, 0, W, H);
  const all = () => [refSrc, ...cands];

  function ready(video) {
    if (video.readyState >= 2) return Promise.resolve();
    return new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
  }
  function frameShown(video) {
    // A seek is done when a new frame is presented; fall back on `seeked` plus a tick.
    return new Promise((resolve) => {
      let done = false;
      const finish = () => { if (!done) { done = true; resolve(); } };
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => finish());
      video.addEventListener("seeked", () => setTimeout(finish, 250), { once: true });
    });
  }
  let seekToken = 0;
  async function seek(n) {
    state.frame = clampF(n);
    const token = ++seekToken;
    const t = (state.frame + 0.5) / FPS;
    await Promise.all(all().map(async (s) => {
      await ready(s.video);
      if (Math.abs(s.video.currentTime - t) < 1e-4 && s.drawnFrame === state.frame) return;
      const shown = frameShown(s.video);
      s.video.currentTime = t;
      await shown;
      s.drawnFrame = state.frame;
    }));
    if (token !== seekToken) return;
    all().forEach(grab);
    draw();
    root.dataset.drawn = String(state.frame);
  }

  /* Panels. */
  let panels = [];
  function panel(label, right) {
    const fig = document.createElement("figure");
    fig.className = "cmp-panel";
    const canvas = document.createElement("canvas");
    canvas.className = "cmp-canvas";
    const cap = document.createElement("figcaption");
    cap.textContent = label; fig.append(canvas, cap);
    if (right) { const r = document.createElement("figcaption"); r.className = "cmp-right"; r.textContent = right; fig.append(r); }
    stage.appendChild(fig);
    bindPointer(canvas);
    return { canvas, ctx: canvas.getContext("2d") };
  }
  const refLabel = () => (state.ref === "original" ? "Original" : "Bicubic");
  function build() {
    stage.innerHTML = "";
    stage.classList.toggle("is-side", state.mode === "side");
    const act = previews[state.active].candidate;
    if (state.mode === "wipe") panels = [{ kind: "wipe", ...panel(refLabel(), act) }];
    else if (state.mode === "diff") panels = [{ kind: "diff", ...panel(`|${act} − ${refLabel()}| ×4`) }];
    else panels = [{ kind: "ref", ...panel(refLabel()) },
      ...previews.map((p, i) => ({ kind: "cand", index: i, ...panel(p.candidate) }))];
    const mark = (b, on) => { b.classList.toggle("is-on", on); b.setAttribute("aria-pressed", String(on)); };
    document.querySelectorAll("[data-mode]").forEach((b) => mark(b, b.dataset.mode === state.mode));
    document.querySelectorAll("[data-active]").forEach((b) => mark(b, Number(b.dataset.active) === state.active));
    sizeCanvases();
  }
  function sizeCanvases() {
    panels.forEach((p) => {
      const w = Math.max(1, Math.round(p.canvas.clientWidth || p.canvas.parentElement.clientWidth));
      p.canvas.width = w; p.canvas.height = Math.round((w * H) / W);
    });
    if (!state.zoom && panels.length) state.zoom = fitZoom();
  }
  const fitZoom = () => (panels.length ? panels[0].canvas.width / W : 1);

  const diffCanvas = document.createElement("canvas");
  diffCanvas.width = W; diffCanvas.height = H;
  const diffCtx = diffCanvas.getContext("2d");
  function makeDiff() {
    const a = refSrc.ctx.getImageData(0, 0, W, H).data;
    const b = cands[state.active].ctx.getImageData(0, 0, W, H).data;
    const out = diffCtx.createImageData(W, H), d = out.data;
    for (let i = 0; i < d.length; i += 4) {
      d[i] = Math.min(255, Math.abs(a[i] - b[i]) * 4);
      d[i + 1] = Math.min(255, Math.abs(a[i + 1] - b[i + 1]) * 4);
      d[i + 2] = Math.min(255, Math.abs(a[i + 2] - b[i + 2]) * 4);
      d[i + 3] = 255;
    }
    diffCtx.putImageData(out, 0, 0);
    return diffCanvas;
  }
  function paint(ctx, canvas, image) {
    const z = state.zoom;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#0b0d14"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = z < 1;
    ctx.setTransform(z, 0, 0, z, canvas.width / 2 - state.x * z, canvas.height / 2 - state.y * z);
    ctx.drawImage(image, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }
  function draw() {
    const live = state.playing;
    if (live) all().forEach(grab);
    panels.forEach((p) => {
      const { ctx, canvas } = p;
      p.canvas.classList.toggle("is-pixelated", state.zoom >= 1);
      p.canvas.dataset.zoom = state.zoom.toFixed(4);
      p.canvas.dataset.x = state.x.toFixed(2); p.canvas.dataset.y = state.y.toFixed(2);
      if (p.kind === "ref") paint(ctx, canvas, refSrc.canvas);
      else if (p.kind === "cand") paint(ctx, canvas, cands[p.index].canvas);
      else if (p.kind === "diff") paint(ctx, canvas, makeDiff());
      else {
        const split = Math.round(state.wipe * canvas.width);
        paint(ctx, canvas, cands[state.active].canvas);
        ctx.save(); ctx.beginPath(); ctx.rect(0, 0, split, canvas.height); ctx.clip();
        paint(ctx, canvas, refSrc.canvas); ctx.restore();
        ctx.fillStyle = "#fff"; ctx.fillRect(split - 1, 0, 2, canvas.height);
        ctx.beginPath(); ctx.arc(split, canvas.height / 2, 9, 0, Math.PI * 2); ctx.fill();
        ctx.fillStyle = "#4f46e5"; ctx.fillRect(split - 4, canvas.height / 2 - 4, 8, 8);
        canvas.dataset.wipe = state.wipe.toFixed(4);
      }
    });
    $("cmp-frame").textContent = String(state.frame);
    $("cmp-frames").textContent = String(FRAMES - 1);
    $("cmp-zoom").textContent = state.zoom.toFixed(2);
    $("cmp-play").textContent = state.playing ? "Pause" : "Play";
    drawTimeline();
    syncUrl();
  }

  /* Timeline: the active candidate's per-frame PSNR against its baseline. */
  function drawTimeline() {
    const p = previews[state.active], data = p.per_frame.slice(0, FRAMES);
    const w = Math.max(1, timeline.clientWidth), h = timeline.height;
    if (timeline.width !== w) timeline.width = w;
    const ctx = timeline.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const vals = data.flatMap((f) => [f.psnr, f.baseline_psnr]).filter(Number.isFinite);
    const lo = Math.floor(Math.min(...vals, 99) - 1), hi = Math.ceil(Math.max(...vals, 0) + 0.5);
    const bw = w / FRAMES, yOf = (v) => h - 4 - ((v - lo) / Math.max(1e-6, hi - lo)) * (h - 18);
    data.forEach((f, i) => {
      ctx.fillStyle = i === p.worst_frame ? "#b91c1c" : "#4f46e5";
      const y = yOf(f.psnr);
      ctx.fillRect(i * bw + 1, y, Math.max(1, bw - 2), h - y);
      ctx.fillStyle = "#b45309";
      ctx.fillRect(i * bw, yOf(f.baseline_psnr) - 1, bw, 2);
    });
    ctx.fillStyle = "rgba(14,165,164,0.25)";
    ctx.fillRect(state.frame * bw, 0, bw, h);
    ctx.fillStyle = "#0ea5a4"; ctx.fillRect(state.frame * bw + bw / 2 - 1, 0, 2, h);
    ctx.fillStyle = "#1c2033"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`${hi} dB`, 4, 11); ctx.fillText(`${lo} dB`, 4, h - 6);
    timeline.dataset.marker = String(state.frame);
    const cur = data[state.frame];
    $("cmp-active-name").textContent = p.candidate;
    $("cmp-stats").textContent = cur ? `frame ${state.frame}: ${cur.psnr.toFixed(2)} dB (baseline ${cur.baseline_psnr.toFixed(2)}) · worst #${p.worst_frame}` : "";
  }
  timeline.addEventListener("click", (e) => {
    const r = timeline.getBoundingClientRect();
    pause(); seek(Math.floor(((e.clientX - r.left) / r.width) * FRAMES));
  });

  /* URL state. */
  let urlTimer = 0;
  function syncUrl() {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => {
      const u = new URLSearchParams();
      u.set("c", previews.map((p) => p.id).join(","));
      u.set("ref", state.ref); u.set("frame", String(state.frame));
      u.set("zoom", state.zoom.toFixed(4)); u.set("x", state.x.toFixed(1)); u.set("y", state.y.toFixed(1));
      u.set("wipe", state.wipe.toFixed(3)); u.set("mode", state.mode); u.set("active", String(state.active));
      history.replaceState(null, "", `${location.pathname}?${u}`);
    }, state.playing ? 250 : 0);
  }

  /* Zoom and pan (shared by every panel), wipe dragging. */
  function zoomAt(canvas, factor, cx, cy) {
    const z0 = state.zoom, z1 = Math.max(0.05, Math.min(32, z0 * factor));
    const sx = state.x + (cx - canvas.width / 2) / z0, sy = state.y + (cy - canvas.height / 2) / z0;
    state.x = sx - (cx - canvas.width / 2) / z1; state.y = sy - (cy - canvas.height / 2) / z1;
    state.zoom = z1; draw();
  }
  function bindPointer(canvas) {
    const scale = () => canvas.width / canvas.getBoundingClientRect().width;
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect(), k = scale();
      zoomAt(canvas, Math.exp(-e.deltaY * 0.0015), (e.clientX - r.left) * k, (e.clientY - r.top) * k);
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      const r = canvas.getBoundingClientRect(), k = scale();
      const px = (e.clientX - r.left) * k;
      const onWipe = state.mode === "wipe" && Math.abs(px - state.wipe * canvas.width) < 14 * k;
      drag = { wipe: onWipe, x: e.clientX, y: e.clientY, sx: state.x, sy: state.y };
      canvas.setPointerCapture(e.pointerId); canvas.classList.add("is-dragging");
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const r = canvas.getBoundingClientRect(), k = scale();
      if (drag.wipe) state.wipe = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
      else {
        state.x = drag.sx - ((e.clientX - drag.x) * k) / state.zoom;
        state.y = drag.sy - ((e.clientY - drag.y) * k) / state.zoom;
      }
      draw();
    });
    const end = () => { drag = null; canvas.classList.remove("is-dragging"); };
    canvas.addEventListener("pointerup", end); canvas.addEventListener("pointercancel", end);
  }

  /* Playback: all videos together, the active candidate's clock is the playhead. */
  function loop() {
    if (!state.playing) return;
    const v = cands[state.active].video;
    state.frame = clampF(Math.floor(v.currentTime * FPS));
    draw();
    if (v.ended) { pause(); return; }
    if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(loop); else requestAnimationFrame(loop);
  }
  function play() {
    if (state.playing) return;
    if (state.frame >= FRAMES - 1) state.frame = 0;
    const t = (state.frame + 0.5) / FPS;
    state.playing = true;
    Promise.all(all().map((s) => { s.video.currentTime = t; return s.video.play(); }))
      .then(loop).catch(() => pause());
  }
  function pause() {
    if (!state.playing) return;
    state.playing = false;
    all().forEach((s) => s.video.pause());
    const n = state.frame; all().forEach((s) => { s.drawnFrame = -1; }); seek(n);
  }
  const step = (d) => { pause(); seek(state.frame + d); };
  function setActive(i) {
    state.active = (i + previews.length) % previews.length;
    build(); draw();
  }

  /* Controls. */
  $("cmp-prev").addEventListener("click", () => step(-1));
  $("cmp-next").addEventListener("click", () => step(1));
  $("cmp-play").addEventListener("click", () => (state.playing ? pause() : play()));
  $("cmp-worst").addEventListener("click", () => { pause(); seek(previews[state.active].worst_frame || 0); });
  $("cmp-fit").addEventListener("click", () => { state.zoom = fitZoom(); state.x = W / 2; state.y = H / 2; draw(); });
  $("cmp-1to1").addEventListener("click", () => { state.zoom = 1; draw(); });
  document.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => {
    state.mode = b.dataset.mode; build(); draw();
  }));
  const refSelect = $("cmp-ref");
  refSelect.value = state.ref;
  refSelect.addEventListener("change", () => {
    pause(); state.ref = refSelect.value;
    refSrc.video.remove(); refSrc = makeSource(first.urls[state.ref]);
    build(); seek(state.frame);
  });
  const candBox = $("cmp-cands");
  previews.forEach((p, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "btn btn-ghost"; b.dataset.active = String(i);
    b.textContent = p.candidate; b.title = p.psnr != null ? `${p.psnr.toFixed(2)} dB mean PSNR-Y` : "";
    b.addEventListener("click", () => setActive(i)); candBox.appendChild(b);
  });
  /* Keys. Tab is left to the browser (moving focus through the controls); [ and ] switch
     the candidate anywhere; arrows and Space act on the picture unless a control that uses
     them has focus (a select's arrows, a button's Space). */
  const ownsKey = (el, key) => el.closest && (el.closest("input, select, textarea") ||
    (key === " " && el.closest("button, a, summary")));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || ownsKey(e.target, e.key)) return;
    if (e.key === "]") { e.preventDefault(); setActive(state.active + 1); }
    else if (e.key === "[") { e.preventDefault(); setActive(state.active - 1); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    else if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
    else if (e.key === " ") { e.preventDefault(); state.playing ? pause() : play(); }
  });
  let resizeTimer = 0;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { sizeCanvases(); draw(); }, 100); });

  build();
  seek(state.frame);
})();
