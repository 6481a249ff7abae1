"""Section 2: found models against ESPCN, FSRCNN and the pretrained IMDN, on each bench clip.

For every bench clip (the whole Vid4 city and calendar sequences), the default search's
results at the top rung (section 1's searches of every seed on city; the seed-0 search on
the other clips), strictly above bicubic, are set against:

- ESPCN and FSRCNN trained on the same training frames to the same top rung (the same
  schedule, initialisation seed and patch stream as the search's evaluations): the margin is
  the best found PSNR at no more MACs minus the baseline's, on the held-out frames;
- IMDN (Hui et al. 2019) with its authors' weights, never trained here: the complexity ratio
  (IMDN's MACs over those of the cheapest found model within 0.3 / 0.5 / 1.0 dB of it) and
  the gap of the best found model at or below 1/100 of IMDN's MACs, on the held-out frames.

A side table scores the section-1 clip's top-rung front, ESPCN, FSRCNN and IMDN on Set5,
Set14 and Vid4 calendar (frames no model of that search trained on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import search_quality
from bench.cache import Cache, source_fingerprint
from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt, fmt_count
from bench.image_sets import METRIC_SOURCES, read_rgb, score_on_set, sets_for
from bench.training import TrainingSpec, clip_data, train_many
from engine.data.dataset import make_pairs
from engine.data.enhancement import make_task
from engine.search.report import front_of
from engine.train.checkpoint import checkpoint_path

RATIO_MARGINS = (0.3, 0.5, 1.0)
MARGIN_GOAL_DB = 0.5  # over ESPCN and FSRCNN at no more MACs
GAP_GOAL_DB = 1.0  # best found model at 1/100 of IMDN's MACs
CHEAPER = 100
BASELINES = {"espcn": "ESPCN", "fsrcnn": "FSRCNN"}
IMDN_THREADS = 2  # computing IMDN's outputs (latency is timed with 1 thread, as the others')


def bench_clips(ctx: BenchContext, task: str) -> list[str]:
    if ctx.quick:
        return ["city_tiny.mp4"]
    return ["city_full.mp4", "calendar_full.mp4"] if task == "sr_x2" else ["city_full.mp4"]


def task_plan(ctx: BenchContext) -> list[str]:
    return ["sr_x2", "sr_x4", "denoise"] if ctx.full else ["sr_x2"]


def runs_for(ctx: BenchContext, clip: str, task: str) -> list[dict[str, Any]]:
    """The default searches on (clip, task): section 1's (every seed) on its own clip at x2,
    else one seed-0 search; cached, so only a cold run pays."""
    setup = search_quality.plan(ctx)
    path = ctx.data("video", clip)
    seeds = setup["seeds"] if task == setup["task"] and path == setup["clip"] else [0]
    if seeds == setup["seeds"] and ctx.shared.get("search_runs"):
        return ctx.shared["search_runs"]
    configs = [search_quality.default_config(setup, path, task, s) for s in seeds]
    return search_quality.default_searches(ctx, configs)


def found_pool(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-rung results above bicubic of all `runs`, each with its checkpoint (an
    architecture found by several seeds keeps its best result)."""
    best: dict[str, dict[str, Any]] = {}
    for run in runs:
        for t in search_quality.top_pool(run):
            record = {**t, "checkpoint": str(checkpoint_path(run["out_dir"],
                                                             f"trial-{t['number']}"))}
            if t["arch"] not in best or t["psnr"] > best[t["arch"]]["psnr"]:
                best[t["arch"]] = record
    return sorted(best.values(), key=lambda t: t["macs"])


def margin_over(base: dict[str, Any], pool: list[dict[str, Any]]) -> float | None:
    """Best found PSNR at no more MACs than `base`, minus its PSNR (None: nothing that
    cheap)."""
    rivals = [t["psnr"] for t in pool if t["macs"] <= base["macs"]]
    return max(rivals) - base["psnr"] if rivals else None


def versus_prototype(proto: dict[str, Any], pool: list[dict[str, Any]]) -> dict[str, Any]:
    """Complexity ratios within each margin of the prototype, and the gap at 1/CHEAPER of its
    MACs (None where no found model qualifies)."""
    out: dict[str, Any] = {"cheapest": {}}
    for margin in RATIO_MARGINS:
        near = [t for t in pool if t["psnr"] >= proto["psnr"] - margin]
        cheapest = min(near, key=lambda t: t["macs"]) if near else None
        out[f"ratio_{margin}"] = proto["macs"] / cheapest["macs"] if cheapest else None
        out["cheapest"][margin] = cheapest
    cheap = [t for t in pool if t["macs"] <= proto["macs"] / CHEAPER]
    top = max(cheap, key=lambda t: t["psnr"]) if cheap else None
    out["gap_at_1_100"] = proto["psnr"] - top["psnr"] if top else None
    out["best_at_1_100"] = top
    return out


def imdn_row(ctx: BenchContext, clip: str, task_name: str,
             resolution: tuple[int, int]) -> dict[str, Any] | None:
    """IMDN's reference row on the clip's held-out frames (as a search report has it);
    outputs cached per frame, latency per resolution (ctx.cache.root / "prototype")."""
    from engine.train.prototype import prototype_reference

    data = clip_data(str(ctx.data("video", clip)), task_name, 0, 16)
    keys = [f"{data.frames.key[:24]}-{task_name}-frame{i}" for i in data.eval_frames]
    return prototype_reference(data.task, data.eval_pairs, resolution,
                               ctx.cache.root / "prototype", keys, threads=IMDN_THREADS)


def imdn_on_set(cache: Cache, task_name: str, set_name: str, files: list[Path]) -> dict:
    """IMDN's mean PSNR/SSIM on a test set; outputs and scores cached."""
    from engine.train.prototype import prototype_outputs
    from engine.train.trainer import score

    task = make_task(task_name)
    key = {"model": "imdn", "task": task.describe(), "files": [f.name for f in files],
           "folder": files[0].parent.name if files else "",
           "code": source_fingerprint(*METRIC_SOURCES)}

    def compute() -> dict[str, Any]:
        pairs = make_pairs(task, [read_rgb(f) for f in files], seed=0)
        stem = "".join(c if c.isalnum() else "-" for c in set_name)
        keys = [f"set-{stem}-{f.parent.name}-{f.stem}" for f in files]
        outputs = prototype_outputs(task.scale, [p.degraded for p in pairs],
                                    cache.root / "prototype", keys, threads=IMDN_THREADS)
        quality = score(outputs, pairs, task.border)
        return {"psnr": quality.psnr, "ssim": quality.ssim}

    value, _, _ = cache.cached("score", key, compute)
    return value


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    result = SectionResult(key="models", title="Found models against ESPCN, FSRCNN and IMDN",
                           text=[__doc__.split("\n\n", 1)[1].strip()])
    models_for_later: list[dict[str, Any]] = []
    for task_name in task_plan(ctx):
        summary = compare_task(ctx, task_name, result, models_for_later)
        result.figures[task_name] = summary
    x2 = result.figures.get("sr_x2", {})
    gaps = [c["gap_at_1_100"] for c in x2.values() if c.get("gap_at_1_100") is not None]
    result.figures["imdn_macs"] = next(iter(x2.values()), {}).get("imdn_macs")
    result.figures["imdn_gap_db_at_1_100"] = max(gaps) if gaps else None
    ctx.shared["models"] = models_for_later
    result.seconds = clock.seconds
    return result


def compare_task(ctx: BenchContext, task_name: str, result: SectionResult,
                 models_for_later: list[dict[str, Any]]) -> dict[str, Any]:
    task = make_task(task_name)
    setup = search_quality.plan(ctx)
    budget = setup["budget"]
    summary: dict[str, Any] = {}
    per_clip = []
    for clip in bench_clips(ctx, task_name):
        runs = runs_for(ctx, clip, task_name)
        pool = found_pool(runs)
        top_steps = runs[0]["rung_steps"][-1]
        common = {"clip": str(ctx.data("video", clip)), "task": task_name, "steps": top_steps,
                  "patch_size": budget.patch_size, "batch_size": budget.batch_size,
                  "learning_rate": budget.learning_rate, "resolution": setup["resolution"]}
        trained = train_many(ctx.cache, [TrainingSpec(net=n, **common) for n in BASELINES],
                             workers=2, log=ctx.log)
        bases = [{"name": BASELINES[n], "psnr": r["psnr_clip"], "ssim": r["ssim_clip"],
                  "macs": r["macs"], "params": r["params"], "checkpoint": r["checkpoint"],
                  "seconds": r["seconds"]} for n, r in zip(BASELINES, trained, strict=True)]
        proto = imdn_row(ctx, clip, task_name, setup["resolution"]) if task.scale > 1 else None
        bicubic = runs[0]["bicubic_psnr"]
        verdict = {"clip": clip, "runs": len(runs), "top_results": len(pool),
                   "top_steps": top_steps, "bicubic_psnr": bicubic,
                   "front": [{k: t[k] for k in ("arch", "psnr", "macs")}
                             for t in front_of(pool)]}
        for base in bases:
            verdict[f"margin_{base['name'].lower()}"] = margin_over(base, pool)
            verdict[f"{base['name'].lower()}_psnr"] = base["psnr"]
        if proto:
            versus = versus_prototype(proto, pool)
            verdict.update({k: v for k, v in versus.items()
                            if k not in ("cheapest", "best_at_1_100")})
            verdict.update(imdn_psnr=proto["psnr"], imdn_macs=proto["macs"])
        summary[clip] = verdict
        per_clip.append(verdict)
        margins = ", ".join(f"{b['name']} margin {fmt(verdict['margin_' + b['name'].lower()])} dB"
                            for b in bases)
        ctx.log(f"  {task_name} {clip}: {len(pool)} top-rung results; {margins}"
                + (f"; IMDN {proto['psnr']:.2f} dB, gap at 1/{CHEAPER} "
                   f"{fmt(verdict['gap_at_1_100'])} dB" if proto else ""))
        result.tables.append(clip_table(task, clip, runs, pool, bases, proto, bicubic,
                                        top_steps))
        if proto:
            result.tables.append(ratio_table(task, clip, proto, versus))
        result.plots.append(plot_clip(ctx, task_name, clip, pool, bases, proto, bicubic))
        result.cold_seconds += sum(b["seconds"] for b in bases)
        if clip == bench_clips(ctx, task_name)[0]:
            test_set_table(ctx, task_name, pool, bases, result, models_for_later)

    for name in BASELINES.values():
        margins = {v["clip"]: v[f"margin_{name.lower()}"] for v in per_clip}
        known = [m for m in margins.values() if m is not None]
        result.targets.append(Target(
            f"{task_name}: {name} (top rung) beaten by a top-rung found model at no more MACs, "
            "every bench clip", f">= +{MARGIN_GOAL_DB} dB", _per_clip(margins, "+.2f"),
            len(known) == len(margins) and min(known) >= MARGIN_GOAL_DB))
    if task.scale > 1:
        gaps = {v["clip"]: v.get("gap_at_1_100") for v in per_clip}
        result.targets.append(Target(
            f"{task_name}: IMDN's PSNR minus the best found model at <= 1/{CHEAPER} of its "
            "MACs, held-out frames, every bench clip", f"<= {GAP_GOAL_DB} dB",
            _per_clip(gaps, ".2f"),
            all(g is not None and g <= GAP_GOAL_DB for g in gaps.values())))
    return summary


def clip_table(task: Any, clip: str, runs: list[dict[str, Any]], pool: list[dict[str, Any]],
               bases: list[dict[str, Any]], proto: dict[str, Any] | None, bicubic: float,
               top_steps: int) -> Table:
    rows: list[list[Any]] = [[task.baseline_name, "-", "-", "-", "-", fmt(bicubic), "-"]]
    entries = [(f"found `{t['arch']}`", "found", t) for t in front_of(pool)]
    entries += [(b["name"], f"trained {top_steps:,} steps", b) for b in bases]
    if proto:
        entries.append(("IMDN", "pretrained", proto))
    for name, kind, m in sorted(entries, key=lambda e: e[2]["macs"]):
        rows.append([name, kind, fmt_count(m.get("params")), fmt_count(m["macs"]),
                     fmt(m.get("latency_ms"), 0), f"{m['psnr']:.2f} / {m['ssim']:.4f}",
                     fmt(m["psnr"] - bicubic)])
    seeds = f"{len(runs)} default searches" if len(runs) > 1 else "the default search"
    return Table(
        f"{task.label}: quality and cost on `{Path(clip).stem}` (held-out frames)",
        ["model", "kind", "params", "MACs", "latency ms", "PSNR / SSIM", "gain dB"], rows,
        note=f"found: the top-rung Pareto front of {seeds} ({len(pool)} top-rung results above "
             f"{task.baseline_name}); PSNR (dB) / SSIM on Y of the clip's held-out frames, "
             "MACs per output frame, latency 1 thread (found: measured by the search at the top "
             "rung; ESPCN/FSRCNN: not timed here)")


def ratio_table(task: Any, clip: str, proto: dict[str, Any], versus: dict[str, Any]) -> Table:
    rows = []
    for margin in RATIO_MARGINS:
        cheapest = versus["cheapest"][margin]
        ratio = versus[f"ratio_{margin}"]
        rows.append([f"within {margin} dB", f"`{cheapest['arch']}`" if cheapest else "none",
                     fmt_count(cheapest["macs"]) if cheapest else "-",
                     fmt(cheapest["psnr"] - proto["psnr"]) if cheapest else "-",
                     f"{ratio:.1f}x" if ratio else "-"])
    top = versus["best_at_1_100"]
    rows.append([f"best at <= 1/{CHEAPER} of IMDN's MACs", f"`{top['arch']}`" if top else "none",
                 fmt_count(top["macs"]) if top else "-",
                 fmt(top["psnr"] - proto["psnr"]) if top else "-",
                 f"{proto['macs'] / top['macs']:.1f}x" if top else "-"])
    return Table(f"{task.label}: against IMDN on `{Path(clip).stem}` (held-out frames)",
                 ["found model", "architecture", "MACs", "dB vs IMDN", "IMDN MACs / its MACs"],
                 rows, note=f"IMDN: {proto['psnr']:.2f} dB, {fmt_count(proto['macs'])} MACs per "
                            "output frame, pretrained by its authors (DIV2K)")


def test_set_table(ctx: BenchContext, task_name: str, pool: list[dict[str, Any]],
                   bases: list[dict[str, Any]], result: SectionResult,
                   models_for_later: list[dict[str, Any]]) -> None:
    """The section-1 clip's front, ESPCN, FSRCNN (and IMDN) on the standard test sets."""
    task = make_task(task_name)
    sets = sets_for(ctx, task_name)
    bicubic = {s: score_on_set(ctx.cache, task, files, None) for s, files in sets.items()}
    bicubic_mean = sum(v["psnr"] for v in bicubic.values()) / len(bicubic)
    models = [(f"found {i + 1}", "found", t) for i, t in enumerate(front_of(pool))]
    models += [(b["name"], "handcrafted", b) for b in bases]
    rows: list[list[Any]] = [[task.baseline_name, "-", "-"]
                             + [f"{v['psnr']:.2f} / {v['ssim']:.4f}" for v in bicubic.values()]
                             + [fmt(bicubic_mean)]]
    scored = []
    for name, kind, m in models:
        scores = {s: score_on_set(ctx.cache, task, files, m["checkpoint"])
                  for s, files in sets.items()}
        scored.append((name, kind, m, scores))
    if task.scale > 1:
        scores = {s: imdn_on_set(ctx.cache, task_name, s, files) for s, files in sets.items()}
        from engine.nets.imdn import load_imdn
        from engine.train.cost import count_macs

        macs = count_macs(load_imdn(task.scale), search_quality.plan(ctx)["resolution"],
                          task.scale)
        scored.append(("IMDN", "pretrained", {"macs": macs, "arch": "imdn"}, scores))
    for name, kind, m, scores in sorted(scored, key=lambda e: e[2]["macs"]):
        mean = sum(v["psnr"] for v in scores.values()) / len(scores)
        label = f"{name} `{m['arch']}`" if kind == "found" else name
        rows.append([label, kind, fmt_count(m["macs"])]
                    + [f"{v['psnr']:.2f} / {v['ssim']:.4f}" for v in scores.values()]
                    + [fmt(mean)])
        if task.scale == 2 and kind != "pretrained":
            models_for_later.append({"name": name, "kind": kind, "checkpoint": m["checkpoint"],
                                     "scale": 2, "psnr": mean, "gain_db": mean - bicubic_mean})
    result.tables.append(Table(
        f"{task.label}: the same models on standard test sets",
        ["model", "kind", "MACs"] + [f"{s} PSNR/SSIM" for s in sets] + ["mean PSNR"], rows,
        note=f"PSNR (dB) / SSIM on Y, border {task.border}; found: the top-rung front of the "
             "search clip above"))


def plot_clip(ctx: BenchContext, task_name: str, clip: str, pool: list[dict[str, Any]],
              bases: list[dict[str, Any]], proto: dict[str, Any] | None,
              bicubic: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.scatter([t["macs"] for t in pool], [t["psnr"] for t in pool], color="tab:blue",
               alpha=0.6, label="found (top rung)", zorder=3)
    front = front_of(pool)
    ax.step([t["macs"] for t in front], [t["psnr"] for t in front], where="post",
            color="tab:blue", alpha=0.5)
    for b, marker in zip(bases, "sv", strict=False):
        ax.scatter([b["macs"]], [b["psnr"]], marker=marker, color="tab:orange", zorder=4,
                   label=b["name"])
    if proto:
        ax.scatter([proto["macs"]], [proto["psnr"]], marker="D", color="tab:red", zorder=4,
                   label="IMDN (pretrained)")
        ax.axvline(proto["macs"] / CHEAPER, color="tab:red", linestyle=":", alpha=0.6,
                   label=f"1/{CHEAPER} of IMDN's MACs")
    ax.axhline(bicubic, color="gray", linestyle="--", label="bicubic / identity")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per output frame")
    ax.set_ylabel("PSNR on the held-out frames (dB)")
    ax.set_title(f"{task_name} on {Path(clip).stem}: top rung")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = f"models_{task_name}_{Path(clip).stem}.png"
    fig.savefig(ctx.plot_dir / name)
    plt.close(fig)
    return name


def _per_clip(values: dict[str, float | None], spec: str) -> str:
    """'city_full +0.12 dB, calendar_full: no found model that cheap' for a target."""
    return ", ".join(f"{Path(c).stem} {v:{spec}} dB" if v is not None
                     else f"{Path(c).stem}: no found model that cheap"
                     for c, v in values.items())
