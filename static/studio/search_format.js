/* Formatting for the search page: numbers, costs and trials in words. No DOM, no state. */

export const NBSP = "\u00a0";

export function fmtPsnr(v) { return v == null ? "—" : v.toFixed(2); }
export function fmtSsim(v) { return v == null ? "—" : v.toFixed(4); }
export function fmtG(v) {
  if (v == null) return "—";
  const g = v / 1e9;
  return g >= 100 ? g.toFixed(0) : g >= 0.01 ? g.toFixed(2) : g.toPrecision(2);
}
export function fmtK(v) { return v == null ? "—" : (v / 1e3).toFixed(2); }
export function fmtParams(v) {
  if (v == null) return "—";
  return v >= 1e6 ? (v / 1e6).toFixed(2) + NBSP + "M" : (v / 1e3).toFixed(2) + NBSP + "K";
}
export function fmtMs(v) {
  if (v == null || !isFinite(v)) return "—";
  return v < 10 ? v.toFixed(1) : v.toFixed(0);
}
export function fmtInt(v) { return v == null ? "?" : Number(v).toLocaleString("en-US"); }
export function fmtSeconds(v) { return v == null ? "—" : v < 10 ? v.toFixed(1) : v.toFixed(0); }
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + NBSP + "s";
  const m = Math.round(s / 60);
  if (m < 60) return m + NBSP + "min";
  const h = Math.floor(m / 60);
  return h + NBSP + "h" + (m % 60 ? " " + (m % 60) + NBSP + "min" : "");
}
export function fmtClock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
export function fmtCount(v) {
  if (v == null) return "—";
  for (const [suffix, unit] of [["G", 1e9], ["M", 1e6], ["K", 1e3]]) {
    if (v >= unit) return +(v / unit).toFixed(2) + NBSP + suffix;
  }
  return String(v);
}

export const COST = {
  macs: { field: "macs", label: "MACs per output frame", unit: "G MACs",
          fmt: (v) => fmtG(v) + NBSP + "G", axis: (v) => +(v / 1e9).toPrecision(3) + " G" },
  params: { field: "params", label: "parameters", unit: "params", fmt: fmtParams,
            axis: fmtCount },
  latency: { field: "latency_ms", label: "latency per frame (ms)", unit: "ms",
             fmt: (v) => fmtMs(v) + NBSP + "ms", axis: (v) => +v.toPrecision(3) + " ms" },
};
export const STRATEGY_NAMES = { nsga2: "NSGA-II", tpe: "TPE", random: "random search" };
const BASELINE_NAMES = { espcn: "ESPCN", fsrcnn: "FSRCNN", bicubic: "bicubic",
                         identity: "identity", imdn: "IMDN" };
export const baselineName = (n) => BASELINE_NAMES[n] || n;

/** One trial as words: "#12 w12_conv3_prelu+res — 31.25 dB PSNR, 0.67 G MACs, ..." */
export function describeTrial(t) {
  const parts = [];
  if (t.psnr != null) parts.push(fmtPsnr(t.psnr) + " dB PSNR");
  if (t.macs != null) parts.push(fmtG(t.macs) + " G MACs");
  if (t.params != null) parts.push(fmtParams(t.params) + " params");
  if (t.latency_ms != null && isFinite(t.latency_ms)) parts.push(fmtMs(t.latency_ms) + " ms");
  return "#" + t.number + " " + (t.arch || "?") + " — " + parts.join(", ");
}
export function describeBaseline(b) {
  const parts = [fmtPsnr(b.psnr) + " dB PSNR"];
  if (b.macs) parts.push(fmtG(b.macs) + " G MACs");
  if (b.params) parts.push(fmtParams(b.params) + " params");
  if (b.latency_ms != null) parts.push(fmtMs(b.latency_ms) + " ms");
  const what = b.pretrained ? b.label || baselineName(b.name) + " (pretrained, not trained here)"
    : baselineName(b.name) + " (baseline)";
  return what + " — " + parts.join(", ");
}

export function taskLabel(c) {
  const m = /^sr_x(\d)$/.exec(c.task || "");
  if (m) return "super-resolution ×" + m[1];
  if (c.task === "denoise") return "denoise (σ " + c.noise_sigma + ")";
  if (c.task === "deblock") return "deblock (JPEG q" + c.jpeg_quality + ")";
  return c.task || "?";
}

export function signed(v) { return (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(2); }

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);
