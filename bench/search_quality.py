"""Section 1: search quality. The default multi-fidelity search against a single-fidelity
random search at equal measured compute, by hypervolume at the top rung.

For each seed: the default search (strategy, rungs and schedule as `SearchConfig` has them)
runs in a worker process whose CPU seconds are measured (`time.process_time()` of that
process around `run_search`). Then a random search at one fidelity (`strategy="random"`,
`rungs=None`, the default `budget.steps` per trial) runs with the same CPU allowance: it starts
trials while its CPU so far, plus what continuing its current front to the top rung is
expected to cost, plus half a trial, stays within the default search's measured CPU seconds.
Its front is then continued to the top rung (each front genome trains on from the constant-
rate state its trial left, which ends exactly where one run to the top budget would), and that
training counts in its compute. Both fronts are scored at the top rung, by hypervolume over
(PSNR gain over bicubic on the held-out frames, log10 MACs per output frame) with one
reference point. Learned baselines and the IMDN row are off on both sides (they do not depend
on the strategy; section 2 compares against them); both sides start from the same seed
genomes (those nearest ESPCN and FSRCNN, which every search enqueues first).

Runs are cached by their configuration and the engine's source, and run two at a time in
one-thread processes. CPU seconds, unlike wall time, do not depend on the other process.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
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

DEFAULTS = SearchConfig(clip="")
DEFAULT_STRATEGY = DEFAULTS.strategy
RESOLUTION = (1280, 720)
HV_RATIO_GOAL = 1.3
KEEP = ("number", "state", "counted", "psnr", "ssim", "macs", "params", "latency_ms",
        "train_seconds", "genome", "arch", "rung", "rungs", "top_rung", "below_reference")


def plan(ctx: BenchContext) -> dict[str, Any]:
    """What the section runs in this mode (quick: the same code on a toy problem)."""
    if ctx.quick:
        return {"clip": ctx.data("video", "city_tiny.mp4"), "task": "sr_x2", "candidates": 4,
                "seeds": [0], "budget": TrainBudget(steps=40, batch_size=8, patch_size=24),
                "rungs": Rungs(20, 80, 2),  # toy rungs: 20 -> 40 -> 80 steps
                "random_cap": 40,  # at most this many random trials, whatever the CPU
                "resolution": (320, 180)}  # MACs scale exactly; latency runs are cheap
    # 20 candidates at rungs 300 -> 1,200 -> 4,800 (20, 7 and 4 evaluations: the 2 baseline seeds
    # are anchors that reach the top rung, with 5 and 2 of the 18 others): ~30 CPU-minutes
    # a search at one thread on this machine; its random rival gets the same CPU seconds.
    return {"clip": ctx.data("video", "city_full.mp4"), "task": "sr_x2", "candidates": 20,
            "seeds": ctx.seeds or [0, 1, 2], "budget": DEFAULTS.budget, "rungs": DEFAULTS.rungs,
            "random_cap": 400, "resolution": RESOLUTION}


def default_config(setup: dict[str, Any], clip: Path | str, task: str, seed: int,
                   ) -> SearchConfig:
    """The default search of this plan: the engine's strategy and rungs (toy ones in quick
    mode), no learned baselines, no IMDN row."""
    return SearchConfig(clip=str(clip), task=task, n_trials=setup["candidates"],
                        strategy=DEFAULT_STRATEGY, budget=setup["budget"],
                        rungs=setup["rungs"], resolution=setup["resolution"], seed=seed,
                        learned_baselines=False, prototype_reference=False)


def random_config(default: SearchConfig, cap: int) -> SearchConfig:
    """Its single-fidelity random rival: `budget.steps` per trial; CPU, not `cap`, stops it."""
    return default.with_changes(strategy="random", rungs=None, n_trials=cap)


def _key(config: SearchConfig, **extra: Any) -> dict[str, Any]:
    return {**config.to_dict(), "clip": None, "out_dir": None,
            "clip_key": content_hash(config.clip), "code": source_fingerprint("engine"),
            **extra}


def _compact(report: dict[str, Any]) -> dict[str, Any]:
    return {"trials": [{k: t.get(k) for k in KEEP} for t in report["trials"]],
            "bicubic_psnr": report["baselines"][0]["psnr"],
            "max_macs": report["space_macs_range"][1],
            "rung_steps": report["rung_steps"],
            "evaluations_per_rung": report["timing"]["evaluations_per_rung"],
            "trained": report["timing"]["trained_trials"],
            "wall_seconds": report["timing"]["wall_seconds"]}


def _default_job(config_dict: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """One default search in this (child) process; its CPU seconds measured around it."""
    from engine.search.search import run_search

    config = SearchConfig.from_dict({**config_dict, "out_dir": out_dir})
    cpu = time.process_time()
    report = run_search(config)
    value = {**_compact(report), "cpu_seconds": time.process_time() - cpu,
             "out_dir": out_dir, "front": [t["number"] for t in report["pareto_front"]]}
    shutil.rmtree(Path(out_dir) / "states", ignore_errors=True)  # checkpoints stay
    return value


class _Budgeted:
    """A sink and a stop check for the random search: stop between two trials once the next
    one would not fit the CPU allowance with the continuation of the current front."""

    def __init__(self, target_cpu: float, continue_steps: int, steps: int,
                 reference: list[float]) -> None:
        self.target, self.continue_steps, self.steps = target_cpu, continue_steps, steps
        self.reference = reference  # [bicubic PSNR], filled once the search has started
        self.start = time.process_time()  # as the job's CPU count: search start-up included
        self.training = False
        self.trial_start = 0.0
        self.cpu: dict[int, float] = {}  # CPU seconds of each trained trial
        self.results: dict[int, tuple[float, float]] = {}  # (psnr, macs)

    def emit(self, event: Any) -> None:
        if event.kind == "trial_started":
            self.training, self.trial_start = True, time.process_time()
        elif event.kind == "trial_finished":
            if self.training and event.trial.get("state") == "complete":
                number = int(event.trial["number"])
                self.cpu[number] = time.process_time() - self.trial_start
                self.results[number] = (float(event.trial["psnr"]), float(event.trial["macs"]))
            self.training = False

    def front_continuation(self) -> float:
        """CPU seconds continuing the current front to the top rung would take: each genome's
        first-trial CPU per step times the steps left."""
        from engine.search.pareto import non_dominated

        floor = self.reference[0] if self.reference else -math.inf
        numbers = [n for n, (psnr, _) in self.results.items() if psnr > floor]
        front = [numbers[i] for i in non_dominated([self.results[n] for n in numbers])]
        return sum(self.cpu[n] / self.steps * self.continue_steps for n in front)

    def __call__(self) -> bool:
        if self.training or not self.cpu:  # never mid-trial, and at least one trial
            return False
        used = time.process_time() - self.start
        mean_trial = sum(self.cpu.values()) / len(self.cpu)
        return used + self.front_continuation() + mean_trial / 2 > self.target


def _random_job(config_dict: dict[str, Any], out_dir: str, target_cpu: float,
                top_steps: int) -> dict[str, Any]:
    """The random search within `target_cpu` CPU seconds, its front continued to
    `top_steps`; returns its compact report and the continued front."""
    import torch

    from engine.data.dataset import PatchSampler
    from engine.nets.builder import build_network
    from engine.nets.genome import Genome
    from engine.search.search import prepare, run_search
    from engine.train.checkpoint import state_path
    from engine.train.trainer import evaluate, stable_steps, train

    config = SearchConfig.from_dict({**config_dict, "out_dir": out_dir})
    steps = config.budget.steps
    continue_steps = top_steps - stable_steps(steps, config.budget)
    reference: list[float] = []
    budgeted = _Budgeted(target_cpu, continue_steps, steps, reference)

    class Sink:
        def emit(self, event: Any) -> None:
            if event.kind == "baseline_finished" and not reference:
                reference.append(float(event.baseline["psnr"]))
            budgeted.emit(event)

    cpu = time.process_time()
    report = run_search(config, Sink(), should_stop=budgeted)
    search_cpu = time.process_time() - cpu
    if not reference:  # a resumed study does not announce its reference again
        reference.append(report["baselines"][0]["psnr"])
    data = prepare(config)
    continued = []
    cpu = time.process_time()
    for record in report["pareto_front"]:
        genome = Genome.from_dict(record["genome"])
        torch.manual_seed(config.seed)
        net = build_network(genome, data.task.scale)
        sampler = PatchSampler(data.task, data.train_pairs, config.budget.patch_size,
                               config.budget.batch_size, config.seed)
        stats = train(net, sampler, config.budget, config.seed, steps=top_steps,
                      start_from=state_path(Path(out_dir) / "states", record["number"], 0))
        quality = evaluate(net, data.eval_pairs, data.task, config.budget.threads)
        continued.append({"number": record["number"], "arch": record["arch"],
                          "genome": record["genome"], "macs": record["macs"],
                          "psnr_trial": record["psnr"], "psnr": quality.psnr,
                          "ssim": quality.ssim, "continued_from": stats.start_step,
                          "train_seconds": stats.train_seconds})
    continue_cpu = time.process_time() - cpu
    shutil.rmtree(out_dir, ignore_errors=True)  # nothing of it is read later
    return {**_compact(report), "front_top": continued, "search_cpu_seconds": search_cpu,
            "continue_cpu_seconds": continue_cpu, "cpu_seconds": search_cpu + continue_cpu,
            "target_cpu_seconds": target_cpu, "top_steps": top_steps}


def _run_jobs(ctx: BenchContext, jobs: list[tuple[str, dict[str, Any], Any, tuple]],
              ) -> list[dict[str, Any]]:
    """(kind, key, function, args) -> each job's value, from the cache or computed two at a
    time in fresh one-thread processes."""
    cache: Cache = ctx.cache
    results: list[dict[str, Any] | None] = []
    for kind, key, _, _ in jobs:
        hit = cache.reuse(kind, key)
        results.append(hit["value"] if hit else None)
    todo = [i for i, hit in enumerate(results) if hit is None]
    if todo:
        ctx.log(f"  running {len(todo)} search(es), two at a time "
                f"({len(jobs) - len(todo)} cached)")
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = {i: pool.submit(jobs[i][2], *jobs[i][3]) for i in todo}
            for i in todo:
                value = futures[i].result()
                kind, key = jobs[i][0], jobs[i][1]
                cache.store(kind, key, value, value["cpu_seconds"])
                results[i] = value
                ctx.log(f"  {kind} seed {key['seed']}: {value['trained']} first-rung "
                        f"trials, {value['cpu_seconds'] / 60:.1f} CPU-min")
    return [r for r in results if r is not None]


def run_out_dir(cache: Cache, kind: str, key: dict[str, Any]) -> Path:
    return cache.root / "runs" / cache.key(kind, key)


def default_searches(ctx: BenchContext, configs: list[SearchConfig]) -> list[dict[str, Any]]:
    """Each default search's compact report (with `out_dir`, its checkpoints), cached."""
    cache: Cache = ctx.cache
    jobs = []
    for config in configs:
        key = _key(config)
        out_dir = run_out_dir(cache, "search", key)
        if not (out_dir / "report.json").is_file():
            cache.forget("search", key)  # an entry whose checkpoints are gone runs again
        jobs.append(("search", key, _default_job, (config.to_dict(), str(out_dir))))
    return _run_jobs(ctx, jobs)


def top_pool(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A default search's results at its top rung, strictly above bicubic (verdict pool)."""
    return [t for t in run["trials"] if t.get("top_rung") and t["state"] == "complete"
            and not t.get("below_reference")]


def random_pool(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A random search's front, continued to the top rung, strictly above bicubic."""
    return [{**t, "state": "complete"} for t in run["front_top"]
            if t["psnr"] > run["bicubic_psnr"]]


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    setup = plan(ctx)
    budget: TrainBudget = setup["budget"]
    seeds = setup["seeds"]
    defaults = [default_config(setup, setup["clip"], setup["task"], s) for s in seeds]
    runs = default_searches(ctx, defaults)
    cache: Cache = ctx.cache
    top_steps = defaults[0].top_steps
    jobs = []
    for config, result in zip(defaults, runs, strict=True):
        rival = random_config(config, setup["random_cap"])
        key = _key(rival, matches=cache.key("search", _key(config)))
        jobs.append(("search-random", key, _random_job,
                     (rival.to_dict(), str(run_out_dir(cache, "search-random", key)),
                      result["cpu_seconds"], top_steps)))
    randoms = _run_jobs(ctx, jobs)
    bounds = space_bounds(2 if setup["task"] == "sr_x2" else 1, setup["resolution"])
    bicubic = runs[0]["bicubic_psnr"]

    rows, ratios, hv = [], [], {}
    for seed, mf, rnd in zip(seeds, runs, randoms, strict=True):
        hv[("default", seed)] = hypervolume_of(top_pool(mf), bicubic, bounds.max_macs)
        hv[("random", seed)] = hypervolume_of(random_pool(rnd), bicubic, bounds.max_macs)
        ratio = (hv[("default", seed)] / hv[("random", seed)] if hv[("random", seed)]
                 else math.inf)
        ratios.append(ratio)
        rows.append([seed, fmt(hv[("default", seed)], 3), fmt(hv[("random", seed)], 3),
                     fmt(ratio), fmt(mf["cpu_seconds"] / 60, 1), fmt(rnd["cpu_seconds"] / 60, 1),
                     fmt(rnd["cpu_seconds"] / mf["cpu_seconds"]),
                     " / ".join(map(str, mf["evaluations_per_rung"])),
                     f"{rnd['trained']} / {len(rnd['front_top'])}"])
    median_ratio = statistics.median(ratios)
    rows.append(["median", fmt(statistics.median(hv[("default", s)] for s in seeds), 3),
                 fmt(statistics.median(hv[("random", s)] for s in seeds), 3),
                 fmt(median_ratio), "", "", "", "", ""])

    front_rows = []
    for seed, mf, rnd in zip(seeds, runs, randoms, strict=True):
        for name, pool in ((DEFAULT_STRATEGY, top_pool(mf)), ("random", random_pool(rnd))):
            best = max(pool, key=lambda t: t["psnr"]) if pool else None
            front_rows.append([name, seed, len(pool),
                               fmt(best["psnr"] - bicubic) if best else "-",
                               fmt(min(t["macs"] for t in pool) / 1e9) if pool else "-",
                               fmt(max(t["macs"] for t in pool) / 1e9) if pool else "-"])

    plot = plot_fronts(ctx.plot_dir / "search_fronts.png", runs, randoms, seeds, bicubic)
    ctx.shared["search_runs"] = [{"strategy": DEFAULT_STRATEGY, "seed": s, **r}
                                 for s, r in zip(seeds, runs, strict=True)]
    ctx.shared["search_clip"] = str(setup["clip"])
    ctx.shared["bicubic_psnr_clip"] = bicubic
    # One first-rung evaluation's training (a lower bound on its time) for the loader.
    first = [t["rungs"][0]["train_seconds"] for r in runs for t in r["trials"]
             if t.get("rungs") and t["rungs"][0].get("train_seconds")]
    if first:
        ctx.shared["trial_seconds"] = statistics.median(first)
        ctx.shared["trial_steps"] = runs[0]["rung_steps"][0]
    cold = sum(r["cpu_seconds"] for r in runs + randoms)
    rung_text = " -> ".join(f"{s:,}" for s in runs[0]["rung_steps"])
    clip_name = Path(setup["clip"]).name
    eta = setup["rungs"].eta
    text = [
        f"Each default search: `{clip_name}`, task {setup['task']}, {setup['candidates']} "
        f"candidates, strategy {DEFAULT_STRATEGY}, rungs {rung_text} steps at eta {eta} "
        f"(batch {budget.batch_size} x {budget.patch_size}px patches, warmup-stable-decay), "
        "one torch thread. Its rival: random search at one fidelity, "
        f"{budget.steps} steps a trial, as many trials as fit the default search's measured "
        f"CPU seconds together with continuing its front to {top_steps:,} steps (that "
        f"training counts in its compute); seeds {', '.join(map(str, seeds))}.",
        "Hypervolume over (PSNR gain over bicubic on the held-out frames, log10 MACs per "
        f"{setup['resolution'][0]}x{setup['resolution'][1]} output frame), both fronts scored "
        f"at the top rung ({top_steps:,} steps), results at or below bicubic left out; "
        "reference point (0 dB gain, log10 of the space's largest MACs = "
        f"{math.log10(bounds.max_macs):.2f}); bigger is better. The single-fidelity search "
        "also times every trial's latency (each trial is at its top rung); the default search "
        "only its top-rung candidates'.",
        __doc__.split("\n\n")[1].replace("\n", " ") if not ctx.quick else
        "Quick mode: toy clip, rungs and budgets; the figures check the code path only.",
    ]
    target = Target(f"{DEFAULT_STRATEGY} (multi-fidelity) hypervolume / single-fidelity random "
                    f"at equal CPU seconds, top rung (median of {len(seeds)} seeds)",
                    f">= {HV_RATIO_GOAL}x", f"{median_ratio:.2f}x",
                    median_ratio >= HV_RATIO_GOAL)
    return SectionResult(
        key="search", title="Search quality: multi-fidelity against random at equal compute",
        text=text,
        tables=[Table("Hypervolume at the top rung, per seed",
                      ["seed", f"HV {DEFAULT_STRATEGY}", "HV random", "ratio",
                       f"{DEFAULT_STRATEGY} CPU-min", "random CPU-min", "CPU random/default",
                       "evaluations per rung", "random trials / front continued"], rows,
                      note="CPU-min: CPU time of the search's worker process (random: its "
                           "trials plus continuing its front to the top rung)"),
                Table("Top-rung results above bicubic", ["strategy", "seed", "results",
                                                         "best gain dB", "cheapest GMACs",
                                                         "costliest GMACs"], front_rows)],
        plots=[plot] if plot else [], targets=[target],
        figures={"median_hv_ratio_vs_random": median_ratio,
                 "hypervolume": {f"{s}/{x}": v for (s, x), v in hv.items()},
                 "cpu_seconds": {f"{DEFAULT_STRATEGY}/{s}": r["cpu_seconds"]
                                 for s, r in zip(seeds, runs, strict=True)}
                 | {f"random/{s}": r["cpu_seconds"] for s, r in zip(seeds, randoms,
                                                                     strict=True)},
                 "top_steps": top_steps},
        seconds=clock.seconds, cold_seconds=cold,
    )


def plot_fronts(path: Path, runs: list[dict[str, Any]], randoms: list[dict[str, Any]],
                seeds: list[int], bicubic: float) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.search.pareto import non_dominated

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    markers = "osD^v"
    for k, (seed, mf, rnd) in enumerate(zip(seeds, runs, randoms, strict=True)):
        for name, pool, color in ((DEFAULT_STRATEGY, top_pool(mf), "tab:blue"),
                                  ("random", random_pool(rnd), "tab:orange")):
            if not pool:
                continue
            front = [pool[i] for i in non_dominated([(t["psnr"], t["macs"]) for t in pool])]
            ax.step([t["macs"] for t in front], [t["psnr"] - bicubic for t in front],
                    where="post", color=color, alpha=0.5)
            ax.scatter([t["macs"] for t in pool], [t["psnr"] - bicubic for t in pool],
                       marker=markers[k % len(markers)], color=color,
                       label=f"{name}, seed {seed}", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("MACs per output frame")
    ax.set_ylabel("PSNR gain over bicubic at the top rung (dB)")
    ax.set_title("Top-rung fronts at equal CPU seconds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path.name
