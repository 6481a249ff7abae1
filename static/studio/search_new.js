// New-search form: show the options of the chosen task and fidelity, and keep "what the space
// allows" and "what it costs" current by asking studio:space_bounds (which answers the
// estimate too, computed by the server from the engine's rungs) when a field they read changes.
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
  const fidelity = form.elements.namedItem("fidelity");
  // The fields the estimate reads (views.ESTIMATED).
  const ESTIMATED = ["n_trials", "fidelity", "min_steps", "max_steps", "eta", "steps", "workers"];
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

  function showOptionFields() {
    form.querySelectorAll("[data-only-task]").forEach(function (el) {
      el.classList.toggle("is-hidden", el.dataset.onlyTask !== task.value);
    });
    form.querySelectorAll("[data-only-fidelity]").forEach(function (el) {
      el.classList.toggle("is-hidden", !fidelity || el.dataset.onlyFidelity !== fidelity.value);
    });
  }

  function estimateSlot(name) {
    return document.querySelector('[data-estimate="' + name + '"]');
  }

  function setEstimate(name, text) {
    const el = estimateSlot(name);
    if (el) el.textContent = text;
  }

  function number(value) {
    return Number(value).toLocaleString("en-US");
  }

  // As views.duration_text writes it.
  function duration(seconds) {
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 90 * 60) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function showEstimate(estimate) {
    if (!estimate) return;
    if (estimate.error) {
      setEstimate("error", estimate.error);
      ["rungs", "total_steps", "candidate_steps", "promotion_steps", "baseline_steps", "time"]
        .forEach(function (name) { setEstimate(name, "?"); });
      return;
    }
    setEstimate("error", "");
    setEstimate("rungs", estimate.evaluations_per_rung.map(function (count, k) {
      return number(count) + " × " + number(estimate.rung_steps[k]);
    }).join(" → "));
    ["total_steps", "candidate_steps", "promotion_steps", "baseline_steps"].forEach(function (name) {
      setEstimate(name, number(estimate[name]));
    });
    setEstimate("time", duration(estimate.seconds[0]) + " to " + duration(estimate.seconds[1]));
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
    ESTIMATED.forEach(function (name) {
      const input = form.elements.namedItem(name);
      if (input) query.set(name, input.value);
    });
    setText("status", "Updating…");
    try {
      const response = await fetch(boundsUrl + "?" + query.toString(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: inflight.signal,
      });
      const data = await response.json();
      showEstimate(data.estimate);
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
    showOptionFields();
    scheduleBounds();
  });
  ESTIMATED.forEach(function (name) {
    const input = form.elements.namedItem(name);
    if (!input) return;
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () {
      if (name === "fidelity") showOptionFields();
      scheduleBounds();
    });
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

  showOptionFields();
  fetchBounds();
})();
