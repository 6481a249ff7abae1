"""Section 2: found models against handcrafted ones, on the standard test sets.

The found models are the Pareto front of every search of section 1 (all strategies and
seeds), trained again from scratch for the full budget; ESPCN and FSRCNN get exactly that
budget too; bicubic needs none. The heavy prototype (EDSR-style, 8 blocks x 32 channels)
gets its own long budget, chosen so that it converges on this machine. All learn from the
same training frames (the search clip's frames 0-11) and are scored on Set5, Set14 and Vid4.
"""

from __future__ import annotations

import math
from typing import Any

from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt, fmt_count
from bench.image_sets import score_on_set, sets_for
from bench.training import TrainingSpec, train_many
from engine.data.enhancement import make_task
from engine.search.pareto import non_dominated
from engine.train.checkpoint import load_checkpoint
from engine.train.cost import deployed, measure_latency

FULL_STEPS = 3000  # 5x the default proxy budget (10x costs ~2 CPU-hours more here)
PROTOTYPE = "edsr_8x32"
PROTOTYPE_STEPS = 3000
PROTOTYPE_LR = 1e-3  # 2e-3 (the small nets' rate) is on the edge of stable for 18 conv layers
N_FOUND = 4
RATIO_MARGINS = (0.3, 0.5, 1.0)


def pick_front(runs: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The non-dominated trained trials of all runs, thinned to `n` spread over log MACs
    (always keeping the cheapest and the best)."""
    trials: dict[str, dict[str, Any]] = {}
    for run in runs:
        for t in run["trials"]:
            if t["state"] == "complete" and (t["arch"] not in trials
                                             or t["psnr"] > trials[t["arch"]]["psnr"]):
                trials[t["arch"]] = t
    pool = list(trials.values())
    front = [pool[i] for i in non_dominated([(t["psnr"], t["macs"]) for t in pool])]
    if len(front) <= n:
        return front
    logs = [math.log10(t["macs"]) for t in front]
    wanted = [logs[0] + (logs[-1] - logs[0]) * k / (n - 1) for k in range(n)]
    chosen: list[int] = []
    for w in wanted:
        best = min((i for i in range(len(front)) if i not in chosen),
                   key=lambda i: abs(logs[i] - w))
        chosen.append(best)
    return [front[i] for i in sorted(chosen)]


def task_plan(ctx: BenchContext) -> list[str]:
    return ["sr_x2", "sr_x4", "denoise"] if ctx.full else ["sr_x2"]


def runs_for(ctx: BenchContext, task: str) -> list[dict[str, Any]]:
    """Section 1's searches for x2; for the --full tasks one default-strategy search each."""
    from bench import search_quality

    if task == "sr_x2":
        if "search_runs" not in ctx.shared:
            search_quality.run(ctx)  # cached: only the first run of the day pays for it
        return ctx.shared["search_runs"]
    setup = search_quality.plan(ctx)
    from engine.config import SearchConfig

    config = SearchConfig(clip=str(setup["clip"]), task=task, n_trials=setup["trials"],
                          budget=setup["budget"], rungs=setup["rungs"],
                          resolution=setup["resolution"], learned_baselines=False,
                          prototype_reference=False)
    return search_quality.run_searches(ctx, [config])


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    result = SectionResult(key="models", title="Found models against handcrafted ones")
    models_for_later: list[dict[str, Any]] = []
    for task_name in task_plan(ctx):
        rows, summary, cold = compare_task(ctx, task_name, result, models_for_later)
        result.cold_seconds += cold
        if task_name == "sr_x2":
            result.figures.update(summary)
    ctx.shared["models"] = models_for_later
    result.seconds = clock.seconds
    return result


def compare_task(ctx: BenchContext, task_name: str, result: SectionResult,
                 models_for_later: list[dict[str, Any]]) -> tuple[list, dict, float]:
    task = make_task(task_name)
    runs = runs_for(ctx, task_name)
    found = pick_front(runs, 2 if ctx.quick else N_FOUND)
    clip = str(ctx.data("video", "city_tiny.mp4" if ctx.quick else "city.mp4"))
    steps = 40 if ctx.quick else FULL_STEPS
    common = {"clip": clip, "task": task_name, "steps": steps}
    if ctx.quick:
        common.update(patch_size=24, batch_size=8)
    specs = [TrainingSpec.for_genome(t["genome"], **common) for t in found]
    specs += [TrainingSpec(net=name, **common) for name in ("espcn", "fsrcnn")]
    proto = {**common, "steps": 20 if ctx.quick else PROTOTYPE_STEPS}
    proto_steps = proto["steps"]
    specs.append(TrainingSpec(net=PROTOTYPE, learning_rate=PROTOTYPE_LR, **proto))
    ctx.log(f"  {task_name}: {len(found)} found models, ESPCN, FSRCNN at {steps} steps; "
            f"prototype {PROTOTYPE} at {proto['steps']} steps")
    trained = train_many(ctx.cache, specs, workers=2, log=ctx.log)
    kinds = ["found"] * len(found) + ["handcrafted", "handcrafted", "prototype"]
    names = [f"found {i + 1}" for i in range(len(found))] + ["ESPCN", "FSRCNN",
                                                              "EDSR-style 8x32"]
    sets = sets_for(ctx, task_name)
    bicubic = {s: score_on_set(ctx.cache, task, files, None) for s, files in sets.items()}
    models = []
    for name, kind, record in zip(names, kinds, trained, strict=True):
        scores = {s: score_on_set(ctx.cache, task, files, record["checkpoint"])
                  for s, files in sets.items()}
        net, _ = load_checkpoint(record["checkpoint"])
        # Quick mode times a 320x180 output: the smoke test checks the path, not the figure.
        latency = measure_latency(deployed(net), (320, 180) if ctx.quick else (1280, 720),
                                  task.scale, runs=5).median_ms
        mean_psnr = sum(v["psnr"] for v in scores.values()) / len(scores)
        models.append({"name": name, "kind": kind, "label": record["label"],
                       "macs": record["macs"], "params": record["params"],
                       "latency_ms": latency, "scores": scores, "mean_psnr": mean_psnr,
                       "checkpoint": record["checkpoint"], "train_seconds": record["seconds"]})
        ctx.log(f"    {name} ({record['label']}): {mean_psnr:.2f} dB mean, "
                f"{fmt_count(record['macs'])} MACs, {latency:.0f} ms")
    bicubic_mean = sum(v["psnr"] for v in bicubic.values()) / len(bicubic)
    for m in models:
        m["gain_db"] = m["mean_psnr"] - bicubic_mean
        if task.scale == 2:
            models_for_later.append({"name": m["name"], "kind": m["kind"],
                                     "checkpoint": m["checkpoint"], "scale": 2,
                                     "psnr": m["scores"].get("Vid4 calendar", {}).get("psnr"),
                                     "gain_db": m["gain_db"]})

    columns = ["model", "kind", "params", f"MACs {'720p' if task.scale > 1 else '720p'}",
               "latency ms"] + [f"{s} PSNR/SSIM" for s in sets] + ["mean PSNR"]
    rows: list[list[Any]] = [[task.baseline_name, "-", "-", "-", "-"]
                             + [f"{v['psnr']:.2f} / {v['ssim']:.4f}" for v in bicubic.values()]
                             + [fmt(bicubic_mean)]]
    for m in sorted(models, key=lambda m: m["macs"]):
        rows.append([f"{m['name']} `{m['label']}`", m["kind"], fmt_count(m["params"]),
                     fmt_count(m["macs"]), fmt(m["latency_ms"], 0)]
                    + [f"{m['scores'][s]['psnr']:.2f} / {m['scores'][s]['ssim']:.4f}"
                       for s in sets] + [fmt(m["mean_psnr"])])
    result.tables.append(Table(
        f"{task.label}: quality and cost", columns, rows,
        note=f"PSNR (dB) / SSIM on Y, border {task.border}; MACs and latency per 1280x720 output "
             "frame, latency measured with 1 thread (median of 5); all learned models trained "
             f"on the same frames, found/ESPCN/FSRCNN for {steps} steps, the prototype for "
             f"{proto['steps']} steps."))

    summary, targets, ratio_rows = judge(task_name, models)
    result.targets.extend(targets)
    result.tables.append(Table(f"{task.label}: complexity ratio", [
        "within dB of the prototype", "cheapest found model", "its MACs", "prototype MACs",
        "ratio"], ratio_rows, note="mean PSNR over the test sets above"))
    plot = plot_models(ctx, task_name, models, bicubic_mean)
    result.plots.append(plot)
    if not result.text:
        result.text.append(
            "Found models: the Pareto front (proxy PSNR against MACs) of all section-1 "
            f"searches, thinned to {N_FOUND} spread over MACs, then trained from scratch for "
            f"{FULL_STEPS} steps ({FULL_STEPS // 600}x the proxy budget), batch 16 of 32px "
            "input patches, Adam + L1 with cosine decay, one thread. ESPCN and FSRCNN get "
            "exactly that budget and the same global residual. The prototype (EDSR-style, "
            f"8 residual blocks x 32 channels, ~0.16M params) gets {proto_steps} steps at "
            f"learning rate {PROTOTYPE_LR:g}: EDSR-baseline (16x64) trains at ~0.3 steps/s on "
            "these two cores and is still below bicubic after 90 s; 8x32 runs ~2 steps/s on "
            f"one thread, so {PROTOTYPE_STEPS} steps take ~25 minutes. All learned models train "
            "on frames 0-11 of Vid4 city (the search clip).")
    prototype = next(m for m in models if m["kind"] == "prototype")
    beaten = [m["name"] for m in models
              if m["kind"] != "prototype" and m["mean_psnr"] > prototype["mean_psnr"]]
    if beaten:  # then the ratio below compares against an undertrained reference
        result.text.append(
            f"**{task.label}: the prototype did not reach its fair best here**: "
            f"{', '.join(beaten)} score above it on the mean over the test sets "
            f"({proto_steps} steps is short for a 0.16M-parameter net). A converged "
            "prototype would score higher, move the "
            "0.3 dB threshold up to costlier found models, and lower the complexity ratio: read "
            "the ratio below as an upper bound, not as a measurement of the 100x claim.")
    cold = sum(r["seconds"] for r in trained)
    return rows, summary, cold


def judge(task_name: str, models: list[dict[str, Any]]) -> tuple[dict, list[Target], list]:
    found = [m for m in models if m["kind"] == "found"]
    proto = next(m for m in models if m["kind"] == "prototype")
    summary: dict[str, Any] = {"prototype_mean_psnr": proto["mean_psnr"],
                               "prototype_macs": proto["macs"]}
    targets: list[Target] = []
    ratio_rows = []
    for margin in RATIO_MARGINS:
        near = [m for m in found if m["mean_psnr"] >= proto["mean_psnr"] - margin]
        cheapest = min(near, key=lambda m: m["macs"]) if near else None
        ratio = proto["macs"] / cheapest["macs"] if cheapest else None
        summary[f"complexity_ratio_{margin}"] = ratio
        ratio_rows.append([f"{margin} dB", cheapest["name"] if cheapest else "none",
                           fmt_count(cheapest["macs"]) if cheapest else "-",
                           fmt_count(proto["macs"]), f"{ratio:.1f}x" if ratio else "-"])
    r03 = summary["complexity_ratio_0.3"]
    best_found = max(found, key=lambda m: m["mean_psnr"])
    gap = proto["mean_psnr"] - best_found["mean_psnr"]
    targets.append(Target(
        f"{task_name}: prototype MACs / cheapest found model within 0.3 dB", ">= 100x",
        f"{r03:.1f}x" if r03 else f"no found model within 0.3 dB (best found is {gap:.2f} dB "
        "below the prototype)", bool(r03 and r03 >= 100)))
    for base in (m for m in models if m["kind"] == "handcrafted"):
        rivals = [m for m in found if m["macs"] <= base["macs"]]
        margin = max((m["mean_psnr"] - base["mean_psnr"] for m in rivals), default=None)
        summary[f"margin_over_{base['name']}"] = margin
        targets.append(Target(
            f"{task_name}: {base['name']} dominated by a found model at no more MACs",
            ">= 0.3 dB", f"{margin:+.2f} dB" if margin is not None else "no found model that cheap",
            bool(margin is not None and margin >= 0.3)))
    return summary, targets, ratio_rows


def plot_models(ctx: BenchContext, task_name: str, models: list[dict[str, Any]],
                bicubic_mean: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    styles = {"found": ("o", "tab:blue"), "handcrafted": ("s", "tab:orange"),
              "prototype": ("D", "tab:red")}
    for kind, (marker, color) in styles.items():
        group = [m for m in models if m["kind"] == kind]
        ax.scatter([m["macs"] for m in group], [m["mean_psnr"] for m in group], marker=marker,
                   color=color, label=kind, zorder=3)
        for m in group:
            ax.annotate(m["name"], (m["macs"], m["mean_psnr"]), fontsize=7,
                        xytext=(4, -8), textcoords="offset points")
    found = sorted((m for m in models if m["kind"] == "found"), key=lambda m: m["macs"])
    ax.plot([m["macs"] for m in found], [m["mean_psnr"] for m in found], color="tab:blue",
            alpha=0.4)
    ax.axhline(bicubic_mean, color="gray", linestyle="--", label="bicubic / identity")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per 1280x720 output frame")
    ax.set_ylabel("mean PSNR over the test sets (dB)")
    ax.set_title(f"{task_name}: quality against cost after full training")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    name = f"models_{task_name}.png"
    fig.savefig(ctx.plot_dir / name)
    plt.close(fig)
    return name
