// New-search form: show the task's own options, and keep "what the space allows" current by
// asking studio:space_bounds when the task or the output resolution changes.
(function () {
  "use strict";

  const form = document.getElementById("search-form");
  if (!form) return;
  const boundsUrl = form.dataset.boundsUrl;
  const task = form.elements.namedItem("task");
  const width = form.elements.namedItem("width");
  const height = form.elements.namedItem("height");
  const maxMacs = form.elements.namedItem("max_macs");
  const maxParams = form.elements.namedItem("max_params");
  let bounds = null;
  let timer = null;
  let inflight = null;

  const SUFFIXES = { "": 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

  function formatCount(value) {
    const units = [["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]];
    for (const [suffix, unit] of units) {
      if (Math.abs(value) >= unit) return (value / unit).toFixed(2) + suffix;
    }
    return String(Math.round(value));
  }

  function parseCount(text) {
    const match = /^\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)\s*$/.exec(text || "");
    return match ? parseFloat(match[1]) * SUFFIXES[match[2].toUpperCase()] : null;
  }

  function slot(name) {
    return document.querySelector('[data-bound="' + name + '"]');
  }

  function setText(name, text) {
    const el = slot(name);
    if (el) el.textContent = text;
  }

  function showTaskFields() {
    form.querySelectorAll("[data-only-task]").forEach(function (el) {
      el.classList.toggle("is-hidden", el.dataset.onlyTask !== task.value);
    });
  }

  // A note under a budget field when the value is below what the smallest network needs.
  function warn(input, limit, what) {
    if (!input) return;
    const field = input.closest(".field");
    let note = field.querySelector(".warning");
    if (field.querySelector(".error")) return; // the server already said why
    const value = parseCount(input.value);
    const tooSmall = bounds && value !== null && value < limit;
    if (!tooSmall) {
      if (note) note.remove();
      return;
    }
    if (!note) {
      note = document.createElement("small");
      note.className = "warning";
      field.appendChild(note);
    }
    note.textContent = "Below the smallest network (" + formatCount(limit) + " " + what +
      "): no architecture can meet it.";
  }

  function checkBudget() {
    if (!bounds) return;
    warn(maxMacs, bounds.min_macs, "MACs");
    warn(maxParams, bounds.min_params, "params");
  }

  async function fetchBounds() {
    if (inflight) inflight.abort();
    inflight = new AbortController();
    const query = new URLSearchParams({ task: task.value, width: width.value, height: height.value });
    setText("status", "Updating…");
    try {
      const response = await fetch(boundsUrl + "?" + query.toString(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: inflight.signal,
      });
      const data = await response.json();
      if (!response.ok) {
        bounds = null;
        setText("status", data.error || "Cannot compute the bounds for these values.");
        return;
      }
      bounds = data;
      setText("resolution", data.width + "x" + data.height);
      setText("min_macs", formatCount(data.min_macs));
      setText("max_macs", formatCount(data.max_macs));
      setText("min_params", formatCount(data.min_params));
      setText("max_params", formatCount(data.max_params));
      setText("status", "");
      checkBudget();
    } catch (error) {
      if (error.name !== "AbortError") setText("status", "Could not reach the server.");
    }
  }

  function scheduleBounds() {
    window.clearTimeout(timer);
    timer = window.setTimeout(fetchBounds, 300);
  }

  task.addEventListener("change", function () {
    showTaskFields();
    scheduleBounds();
  });
  [width, height].forEach(function (input) {
    input.addEventListener("input", scheduleBounds);
  });
  [maxMacs, maxParams].forEach(function (input) {
    if (!input) return;
    input.addEventListener("input", function () {
      // An edited value makes the server's message stale: drop it, then check live.
      const field = input.closest(".field");
      field.classList.remove("has-error");
      field.querySelectorAll(".error").forEach(function (el) { el.remove(); });
      checkBudget();
    });
  });
  form.querySelectorAll(".chip[data-width]").forEach(function (button) {
    button.addEventListener("click", function () {
      width.value = button.dataset.width;
      height.value = button.dataset.height;
      scheduleBounds();
    });
  });

  showTaskFields();
  fetchBounds();
})();
