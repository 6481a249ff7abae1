"""Deployment speed: frames/s of each x2 model at 640x360 -> 1280x720, PyTorch vs ONNX Runtime.

The models are those an earlier section trained (ctx.shared["models"]); run alone, the section
falls back to handcrafted and search-space networks with untrained weights (speed does not
depend on the weights). Every network runs in its deployed form; the ONNX graph comes from the
engine's own exporter (engine.deploy.export), as a bundle would ship it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from bench.common import BenchContext, SectionResult, Table, Target, fmt_count, ratio
from engine.deploy.export import export_onnx
from engine.deploy.fast_residual import BicubicUpsample
from engine.nets.builder import build_network, upsample_input
from engine.nets.genome import Genome
from engine.nets.handcrafted import HANDCRAFTED
from engine.train.checkpoint import load_checkpoint
from engine.train.cost import count_macs, count_params, deployed, torch_threads

SCALE = 2
IN_W, IN_H = 640, 360
OUT_RES = (IN_W * SCALE, IN_H * SCALE)
THREADS = 2
REALTIME_FPS = 60.0
MIN_GAIN_DB = 1.5
HEAVY_MACS = 50e9  # e.g. the EDSR prototype: one untimed warm-up would cost tens of seconds
# Untrained stand-ins when no trained models were handed over: small, medium, large corners.
FALLBACK_GENOMES = {
    "genome-small": Genome.uniform(8, 2, "dwsep", 3, "relu"),
    "genome-medium": Genome.uniform(16, 3, "repconv", 3, "prelu"),
    "genome-large": Genome.uniform(32, 6, "conv", 3, "prelu"),
}


class ResidualBase(nn.Module):
    """Only the global residual's bicubic upsampling, which every model above pays."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_input(x, SCALE)


def _fps(value: float) -> str:
    return f"{value:.1f} fps" if value < 100 else f"{value:.0f} fps"


@dataclass
class Model:
    name: str
    kind: str
    net: nn.Module  # deployed form, eval mode
    gain_db: float | None


def _models(ctx: BenchContext) -> list[Model]:
    handed = ctx.shared.get("models")
    if handed:
        models = []
        for m in handed:
            if int(m.get("scale", 0)) != SCALE:
                continue
            net, _ = load_checkpoint(m["checkpoint"])
            models.append(Model(m["name"], m["kind"], deployed(net), m.get("gain_db")))
        if ctx.quick:  # the two cheapest keep the smoke run short
            models = sorted(models, key=lambda m: count_macs(m.net, OUT_RES, SCALE))[:2]
        return models
    nets: list[tuple[str, str, nn.Module]] = [
        ("espcn", "handcrafted", HANDCRAFTED.get("espcn")(SCALE)),
        ("fsrcnn", "handcrafted", HANDCRAFTED.get("fsrcnn")(SCALE)),
    ]
    nets += [(name, "search space", build_network(g, SCALE))
             for name, g in FALLBACK_GENOMES.items()]
    if ctx.quick:
        nets = [nets[0], nets[2]]
    return [Model(name, kind, deployed(net), None) for name, kind, net in nets]


def _ort_session(net: nn.Module, folder: Path) -> Any:
    import onnxruntime as ort

    path = folder / "model.onnx"
    # The residual alone exports as the models' residual does (fixed conv + pixel shuffle).
    exported = BicubicUpsample(SCALE).eval() if isinstance(net, ResidualBase) else net
    export_onnx(exported, path, (1, 3, IN_H, IN_W))
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _time_model(net: nn.Module, session: Any, frame: np.ndarray, max_frames: int,
                budget_s: float, heavy: bool = False) -> dict[str, float]:
    """Median ms per frame in each runtime; frames alternate PyTorch / ORT so both see the
    same background load. Slow models get fewer frames (at least 3); a heavy one gets its
    warm-up pass only, timed (warm-up overheads vanish next to seconds per frame)."""
    x = torch.from_numpy(frame)
    feed = {session.get_inputs()[0].name: frame}
    with torch_threads(THREADS), torch.inference_mode():
        # Warm-up (allocations, ORT arena); its time, an upper bound, sizes the run.
        outputs: list[Any] = []
        one_pt = _ms(lambda: outputs.append(net(x)))
        one_ort = _ms(lambda: outputs.append(session.run(None, feed)[0]))
        one = one_pt + one_ort
        out_pt, out_ort = outputs
        if out_pt.shape != (1, 3, OUT_RES[1], OUT_RES[0]) or out_ort.shape != out_pt.shape:
            raise RuntimeError(f"unexpected output shape {tuple(out_pt.shape)}")
        if heavy:
            return {"frames": 1, "torch_ms": one_pt, "ort_ms": one_ort}
        n = max(3, min(max_frames, int(budget_s * 1000.0 / max(one, 1e-3))))
        pt, ort_ms = [], []
        for _ in range(n):
            pt.append(_ms(lambda: net(x)))
            ort_ms.append(_ms(lambda: session.run(None, feed)))
    return {"frames": n, "torch_ms": statistics.median(pt), "ort_ms": statistics.median(ort_ms)}


def _time_bicubic(frame: np.ndarray, n: int) -> float:
    """Median ms of cv2.resize INTER_CUBIC on the same frame as uint8 HxWx3, 2 cv2 threads."""
    image = np.ascontiguousarray((frame[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    before = cv2.getNumThreads()
    cv2.setNumThreads(THREADS)
    try:
        cv2.resize(image, OUT_RES, interpolation=cv2.INTER_CUBIC)
        times = [_ms(lambda: cv2.resize(image, OUT_RES, interpolation=cv2.INTER_CUBIC))
                 for _ in range(n)]
    finally:
        cv2.setNumThreads(before)
    return statistics.median(times)


def _plot(ctx: BenchContext, rows: list[dict[str, Any]], bicubic_fps: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_gain = all(r["gain_db"] is not None for r in rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in rows:
        x = r["gain_db"] if with_gain else r["macs"]
        ax.scatter(x, r["ort_fps"], color="tab:blue")
        ax.annotate(r["name"], (x, r["ort_fps"]), textcoords="offset points", xytext=(4, 3),
                    fontsize=8)
    ax.axhline(REALTIME_FPS, color="tab:red", linestyle="--", linewidth=1,
               label=f"{REALTIME_FPS:.0f} fps")
    if with_gain:
        ax.axvline(MIN_GAIN_DB, color="tab:green", linestyle=":", linewidth=1,
                   label=f"{MIN_GAIN_DB} dB over bicubic")
        ax.set_xlabel("gain over bicubic (dB)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("MACs per 1280x720 output frame (untrained stand-ins)")
    ax.set_yscale("log")
    ax.set_ylabel("ONNX Runtime fps (2 threads)")
    ax.set_title(f"x2 {IN_W}x{IN_H} -> {OUT_RES[0]}x{OUT_RES[1]}; bicubic (cv2) "
                 f"{bicubic_fps:.0f} fps", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.plot_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.plot_dir / "deployment.png", dpi=110)
    plt.close(fig)
    return "deployment.png"


def _target(rows: list[dict[str, Any]]) -> Target:
    name = "best model under a real-time budget (>= 60 fps in ONNX Runtime at 640x360 -> 1280x720)"
    goal = f">= {REALTIME_FPS:.0f} fps and >= {MIN_GAIN_DB} dB over bicubic"
    fast = [r for r in rows if r["ort_fps"] >= REALTIME_FPS]
    known = [r for r in fast if r["gain_db"] is not None]
    if known:
        best = max(known, key=lambda r: r["gain_db"])
        return Target(name, goal, f"{best['name']}: {_fps(best['ort_fps'])}, "
                      f"{best['gain_db']:+.2f} dB", best["gain_db"] >= MIN_GAIN_DB)
    top = max(rows, key=lambda r: r["ort_fps"])
    gain = "gain unknown" if top["gain_db"] is None else f"{top['gain_db']:+.2f} dB"
    measured = f"fastest {top['name']}: {_fps(top['ort_fps'])}, {gain}"
    if fast:  # fast enough, but nothing says how good: trained models were not handed over
        return Target(name, goal, measured + " (no trained models: run with section 2)", None)
    return Target(name, goal, measured, False)


def run(ctx: BenchContext) -> SectionResult:
    start = time.perf_counter()
    max_frames, budget_s = (3, 1.5) if ctx.quick else (20, 8.0)
    frame = np.random.default_rng(0).random((1, 3, IN_H, IN_W), dtype=np.float32)
    models = _models(ctx)
    trained = bool(ctx.shared.get("models"))
    if not ctx.quick:  # the floor set by the residual's upsampling, in each runtime
        models.append(Model("bicubic residual alone", "reference (F.interpolate)",
                            ResidualBase().eval(), None))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        for i, m in enumerate(models):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            session = _ort_session(m.net, folder)
            macs = count_macs(m.net, OUT_RES, SCALE)
            t = _time_model(m.net, session, frame, max_frames, budget_s, macs > HEAVY_MACS)
            row = {"name": m.name, "kind": m.kind, "gain_db": m.gain_db,
                   "macs": macs, "params": count_params(m.net),
                   "frames": t["frames"], "torch_fps": 1000.0 / t["torch_ms"],
                   "ort_fps": 1000.0 / t["ort_ms"]}
            row["ort_vs_torch"] = ratio(row["ort_fps"], row["torch_fps"])
            rows.append(row)
            ctx.log(f"  {m.name}: PyTorch {row['torch_fps']:.1f} fps, ORT {row['ort_fps']:.1f} "
                    f"fps ({t['frames']} frames)")
    bicubic_fps = 1000.0 / _time_bicubic(frame, max(5, max_frames))
    ctx.log(f"  bicubic (cv2.resize): {bicubic_fps:.0f} fps")

    def gain(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    table_rows: list[list[Any]] = [
        [r["name"], r["kind"], fmt_count(r["macs"]), fmt_count(r["params"]), gain(r["gain_db"]),
         round(r["torch_fps"], 1), round(r["ort_fps"], 1), round(r["ort_vs_torch"], 2)]
        for r in rows
    ]
    table_rows.append(["bicubic", "reference (cv2.resize)", "-", 0, 0.0,
                       round(bicubic_fps, 1), round(bicubic_fps, 1), None])
    base = [r for r in rows if r["kind"].startswith("reference")]
    rows = [r for r in rows if not r["kind"].startswith("reference")]
    target = _target(rows)
    plot = _plot(ctx, rows, bicubic_fps)
    frames = sorted({r["frames"] for r in rows})
    source = ("the trained x2 models of the quality section (gain over bicubic: mean PSNR "
              "over its test sets)"
              if trained else
              "stand-ins with untrained weights, since no trained models were handed over "
              "(speed does not depend on the weights; gains are unknown): handcrafted "
              f"{', '.join(r['name'] for r in rows if r['kind'] == 'handcrafted')} and "
              "search-space genomes "
              + ", ".join(f"{n} = {g.key()}" for n, g in FALLBACK_GENOMES.items()
                          if any(r["name"] == n for r in rows)))
    text = [
        f"One {IN_W}x{IN_H} RGB float32 frame (NCHW, random values in [0, 1]) upscaled x2 to "
        f"{OUT_RES[0]}x{OUT_RES[1]} by each model: {source}. Every network runs in its "
        f"deployed form (re-parameterized blocks folded). PyTorch: {THREADS} intra-op "
        "threads, `torch.inference_mode()`, eager. ONNX Runtime: the graph from the engine's "
        f"exporter (`torch.onnx` dynamo, opset 18, dynamic N/H/W), CPU execution provider, "
        f"`intra_op_num_threads={THREADS}`, all graph optimizations. Conversion to and from "
        "uint8 is not timed.",
        "After one warm-up pass in each runtime, frames alternate PyTorch / ONNX Runtime so "
        f"both see the same background load; each model gets up to {max_frames} frames "
        f"(fewer for slow ones, at least 3; used here: {', '.join(map(str, frames))}; a model "
        f"over {HEAVY_MACS / 1e9:.0f} GMACs gets one timed pass, no warm-up), and "
        "fps = 1000 / median ms per frame. The bicubic row is `cv2.resize(INTER_CUBIC)` of "
        f"the same frame as uint8 HxWx3 with {THREADS} OpenCV threads, given in both fps "
        "columns. The machine's 2 cores are shared with other jobs, so absolute figures are "
        "noisy.",
    ]
    if base:
        text.append(
            "The row *bicubic residual alone* runs only the global residual every network "
            "adds, as each runtime gets it (PyTorch: `F.interpolate(x, 2, 'bicubic')`; ONNX: "
            "the exporter's replicate pad + fixed depthwise conv + pixel shuffle, equal to it "
            f"within 1e-6): {_fps(base[0]['torch_fps'])} in PyTorch, "
            f"{_fps(base[0]['ort_fps'])} in ONNX Runtime, an upper bound on any model's speed "
            "in each.")
    figures: dict[str, Any] = {
        "models": {r["name"]: {k: r[k] for k in ("torch_fps", "ort_fps", "gain_db", "macs")}
                   for r in rows},
        "bicubic_fps": bicubic_fps,
        "residual_base": ({k: base[0][k] for k in ("torch_fps", "ort_fps")} if base else None),
        "trained_models": trained,
        "target": target.measured,
    }
    note = (f"fps at {IN_W}x{IN_H} -> {OUT_RES[0]}x{OUT_RES[1]}, {THREADS} threads, median "
            f"of up to {max_frames} frames; MACs per output frame; gain over bicubic in dB")
    return SectionResult(
        "deployment", "Deployment speed", text,
        [Table("Deployment speed (x2)", ["model", "kind", "MACs", "params",
                                         "gain over bicubic (dB)", "PyTorch fps",
                                         "ONNX Runtime fps", "ORT/PyTorch"],
               table_rows, note)],
        [plot], [target], figures, seconds=time.perf_counter() - start)
