"""Section 1: search quality. The default strategy against random (and TPE) search at an equal
number of trained candidates, over several seeds, by hypervolume over (PSNR, log10 MACs).

Every search runs at the default proxy budget on the same clip; the learned baselines are
off (they do not depend on the strategy; section 2 trains them at the full budget). Runs are
cached by their configuration and the engine's source, and run two at a time in one-thread
processes (the layout that gives the most trials per hour on two cores).
"""

from __future__ import annotations

import math
import statistics
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.cache import Cache, source_fingerprint
from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt
from engine.config import Rungs, SearchConfig, TrainBudget
from engine.data.frame_cache import content_hash
from engine.search.report import hypervolume_of
from engine.search.space_bounds import space_bounds
from engine.search.strategies import population_size, tpe_startup_trials

DEFAULT_STRATEGY = SearchConfig(clip="").strategy
RESOLUTION = (1280, 720)


def plan(ctx: BenchContext) -> dict[str, Any]:
    """What the section runs in this mode (quick: the same code on a toy problem)."""
    if ctx.quick:
        return {"clip": ctx.data("video", "city_tiny.mp4"), "task": "sr_x2", "trials": 3,
                "seeds": [0], "strategies": [DEFAULT_STRATEGY, "random", "tpe"],
                "tpe_seeds": [0], "budget": TrainBudget(steps=20, batch_size=8, patch_size=24),
                "rungs": Rungs(20, 80, 2),  # toy rungs: 20 -> 40 -> 80 steps
                "resolution": (320, 180)}  # MACs scale exactly; latency runs are cheap
    # The default strategy against random on 2 seeds, TPE on one, 10 candidates a run: a
    # candidate costs ~80 CPU-seconds at one thread, so these 5 runs take ~65 CPU-minutes.
    return {"clip": ctx.data("video", "city.mp4"), "task": "sr_x2", "trials": 10,
            "seeds": [0, 1], "strategies": [DEFAULT_STRATEGY, "random", "tpe"],
            "tpe_seeds": [0], "budget": TrainBudget(), "rungs": None,  # single fidelity
            "resolution": RESOLUTION}


def _search_job(config_dict: dict[str, Any]) -> dict[str, Any]:
    from engine.search.search import run_search  # in the child process

    config = SearchConfig.from_dict(config_dict)
    report = run_search(config)
    keep = ("number", "state", "counted", "psnr", "ssim", "macs", "params", "latency_ms",
            "train_seconds", "genome", "arch")
    return {"trials": [{k: t.get(k) for k in keep} for t in report["trials"]],
            "bicubic_psnr": report["baselines"][0]["psnr"],
            "wall_seconds": report["timing"]["wall_seconds"],
            "trained": report["timing"]["trained_trials"]}


def run_searches(ctx: BenchContext, configs: list[SearchConfig]) -> list[dict[str, Any]]:
    """Each search's compact report, from the cache or run two at a time."""
    cache: Cache = ctx.cache
    engine_code = source_fingerprint("engine")
    keys = []
    for config in configs:
        key = {**config.to_dict(), "clip": None, "clip_key": content_hash(config.clip),
               "code": engine_code}
        keys.append(key)
    results: list[dict[str, Any] | None] = [cache.reuse("search", k) for k in keys]
    todo = [i for i, hit in enumerate(results) if hit is None]
    if todo:
        ctx.log(f"  running {len(todo)} search(es), two at a time "
                f"({len(configs) - len(todo)} cached)")
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = {i: pool.submit(_search_job, configs[i].to_dict()) for i in todo}
            for i in todo:
                value = futures[i].result()
                cache.store("search", keys[i], value, value["wall_seconds"])
                results[i] = {"config": keys[i], "seconds": value["wall_seconds"],
                              "value": value}
                c = configs[i]
                ctx.log(f"  {c.strategy} seed {c.seed}: {value['trained']} trials in "
                        f"{value['wall_seconds'] / 60:.1f} min")
    return [{**r["value"], "seconds": r["seconds"]} for r in results if r is not None]


def counted_in_order(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((t for t in trials if t["counted"]), key=lambda t: t["number"])


def hypervolume_curve(trials: list[dict[str, Any]], bicubic: float, max_macs: int) -> list[float]:
    """Hypervolume after each counted trial (rejected and duplicate genomes cost nothing)."""
    ordered = counted_in_order(trials)
    return [hypervolume_of(ordered[: k + 1], bicubic, max_macs) for k in range(len(ordered))]


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    setup = plan(ctx)
    budget: TrainBudget = setup["budget"]
    base = SearchConfig(clip=str(setup["clip"]), task=setup["task"], n_trials=setup["trials"],
                        budget=budget, rungs=setup["rungs"], resolution=setup["resolution"],
                        learned_baselines=False, prototype_reference=False)
    grid = [(s, seed) for seed in setup["seeds"] for s in setup["strategies"]
            if s != "tpe" or seed in setup["tpe_seeds"]]
    configs = [base.with_changes(strategy=s, seed=seed) for s, seed in grid]
    runs = run_searches(ctx, configs)
    bounds = space_bounds(2 if setup["task"] == "sr_x2" else 1, setup["resolution"])
    bicubic = runs[0]["bicubic_psnr"]

    curves: dict[tuple[str, int], list[float]] = {}
    for (strategy, seed), result in zip(grid, runs, strict=True):
        curves[(strategy, seed)] = hypervolume_curve(result["trials"], bicubic, bounds.max_macs)
    final = {k: (v[-1] if v else 0.0) for k, v in curves.items()}

    strategies, seeds = setup["strategies"], setup["seeds"]
    rows, ratios, tpe_ratios = [], [], []
    for seed in seeds:
        hv = {s: final.get((s, seed)) for s in strategies}
        ratio = hv[DEFAULT_STRATEGY] / hv["random"] if hv["random"] else math.inf
        ratios.append(ratio)
        tpe_ratio = None
        if hv.get("tpe") is not None:
            tpe_ratio = hv["tpe"] / hv["random"] if hv["random"] else math.inf
            tpe_ratios.append(tpe_ratio)
        rows.append([seed] + [fmt(hv[s], 3) for s in strategies] + [fmt(ratio), fmt(tpe_ratio)])
    median_ratio = statistics.median(ratios)
    median_tpe = statistics.median(tpe_ratios) if tpe_ratios else None
    columns = (["seed"] + [f"HV {s}" for s in strategies]
               + [f"{DEFAULT_STRATEGY} / random", "tpe / random"])
    rows.append(["median"] + [fmt(statistics.median(v for (st, _), v in final.items()
                                                    if st == s), 3) for s in strategies]
                + [fmt(median_ratio), fmt(median_tpe)])

    best_rows = []
    for (strategy, seed), result in zip(grid, runs, strict=True):
        scored = [t for t in result["trials"] if t["state"] == "complete"]
        best = max(scored, key=lambda t: t["psnr"]) if scored else None
        best_rows.append([strategy, seed, result["trained"],
                          fmt(best["psnr"] - bicubic) if best else "-",
                          fmt(min((t["macs"] for t in scored), default=0) / 1e9),
                          fmt(result["seconds"] / 60, 1)])

    plot = plot_curves(ctx.plot_dir / "search_hypervolume.png", curves, strategies, seeds)
    trials_per_hour = [3600 * r["trained"] / r["seconds"] for r in runs if r["seconds"]]
    ctx.shared["search_runs"] = [{"strategy": s, "seed": seed, **r}
                                 for (s, seed), r in zip(grid, runs, strict=True)]
    ctx.shared["bicubic_psnr_clip"] = bicubic
    # A lower bound on one trial (training alone) for the loader's "share of a trial".
    train_times = [t["train_seconds"] for r in runs for t in r["trials"]
                   if t["counted"] and t["train_seconds"]]
    if train_times:
        ctx.shared["trial_seconds"] = statistics.median(train_times)
    cold = sum(r["seconds"] for r in runs)
    clip_name = Path(setup["clip"]).name
    text = [
        f"Each search: `{clip_name}`, task {setup['task']}, {setup['trials']} trained "
        f"candidates, {budget.steps} steps of batch {budget.batch_size} x "
        f"{budget.patch_size}px patches per candidate"
        f"{' (the default proxy budget)' if budget == TrainBudget() else ''}, one torch "
        f"thread, two searches at a time; seeds {', '.join(map(str, seeds))} for "
        f"{DEFAULT_STRATEGY} and random, {', '.join(map(str, setup['tpe_seeds']))} for TPE "
        "(the compute of this 2-core machine, not a limit of the code).",
        "Hypervolume over (PSNR gain over bicubic on the held-out frames, log10 MACs per "
        f"{setup['resolution'][0]}x{setup['resolution'][1]} output frame) with a fixed "
        "reference point (0 dB gain, log10 of the "
        f"space's largest MACs = {math.log10(bounds.max_macs):.2f}); bigger is better. "
        "Rejected and duplicate genomes cost no training and do not count as candidates.",
    ]
    pop, trials = population_size(setup["trials"]), setup["trials"]
    text.append(
        f"Read with care: with {trials} candidates NSGA-II (population {pop}) has made only "
        f"{max(0, trials - pop)} offspring after its random first generation, and TPE starts "
        f"modelling after {tpe_startup_trials(trials)} random candidates, so most of each run is "
        "random sampling whatever the strategy; a strategy comparison that means something "
        "needs several generations (~50+ candidates a run, ~1 CPU-hour each on this machine).")
    target = Target(f"{DEFAULT_STRATEGY} hypervolume / random at equal trials (median of "
                    f"{len(seeds)} seeds)", ">= 1.15x", f"{median_ratio:.2f}x",
                    median_ratio >= 1.15)
    return SectionResult(
        key="search", title="Search quality: strategies at equal trials",
        text=text,
        tables=[Table("Hypervolume per seed", columns, rows),
                Table("Runs", ["strategy", "seed", "candidates", "best gain dB",
                               "cheapest GMACs", "minutes"], best_rows,
                      note="minutes: wall time of the run, two runs sharing two cores")],
        plots=[plot] if plot else [], targets=[target],
        figures={"median_hv_ratio_vs_random": median_ratio, "median_tpe_ratio": median_tpe,
                 "final_hypervolume": {f"{s}/{x}": v for (s, x), v in final.items()},
                 "trials_per_hour_two_at_a_time": statistics.median(trials_per_hour)
                 if trials_per_hour else None},
        seconds=clock.seconds, cold_seconds=cold,
    )


def plot_curves(path: Path, curves: dict[tuple[str, int], list[float]], strategies: list[str],
                seeds: list[int]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for strategy in strategies:
        series = [curves[(strategy, seed)] for seed in seeds if (strategy, seed) in curves]
        length = min(len(s) for s in series) if series else 0
        if not length:
            continue
        xs = list(range(1, length + 1))
        median = [statistics.median(s[k] for s in series) for k in range(length)]
        low = [min(s[k] for s in series) for k in range(length)]
        high = [max(s[k] for s in series) for k in range(length)]
        line = ax.plot(xs, median, label=f"{strategy} (median)")[0]
        ax.fill_between(xs, low, high, alpha=0.15, color=line.get_color())
    ax.set_xlabel("trained candidates")
    ax.set_ylabel("hypervolume (dB x log10 MACs)")
    ax.set_title("Hypervolume against trial count (band: min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path.name
