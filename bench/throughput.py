"""Section 4: throughput and fidelity of the default proxy budget.

Throughput: the same fixed list of candidates (random genomes of the space) evaluated at the
default proxy budget by one worker process, then by two sharing one Optuna study (the
studio's scale-out pattern: each worker asks, trains, tells), one torch thread each. The
candidates are enqueued in the study, so both runs do exactly the same work.

Fidelity: Kendall's tau between the ranking (held-out PSNR on the clip) of a set of
candidates trained for the default budget and for section 2's full budget (5x; the target
names 10x, which would cost ~2 more CPU-hours on two cores): section 2's found models plus
random genomes spread over the space's MACs.
"""

from __future__ import annotations

import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt
from bench.training import TrainingSpec, train_many
from engine.config import SearchConfig, TrainBudget
from engine.nets.search_space import sample_genome

DEFAULT_STEPS = TrainBudget().steps


class _FixedChoices:
    """Draws a genome from Python's random module (a stand-in for an Optuna trial)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: tuple) -> object:
        return self.rng.choice(choices)


def random_genomes(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [sample_genome(_FixedChoices(rng)).to_dict() for _ in range(n)]


def spread_genomes(n: int, seed: int, scale: int = 2,
                   span: tuple[float, float] = (0.1, 0.9)) -> list[dict[str, Any]]:
    """`n` random genomes spread over the 10th-90th percentile of the space's MACs (sorted by
    MACs): typical candidates, without the rare giants that take an hour at the long budget."""
    from engine.nets.builder import build_network
    from engine.nets.genome import Genome
    from engine.train.cost import count_macs

    pool = random_genomes(60, seed)
    costed = sorted(pool, key=lambda g: count_macs(
        build_network(Genome.from_dict(g), scale).deploy(), (1280, 720), scale))
    low, high = span[0] * (len(costed) - 1), span[1] * (len(costed) - 1)
    step = (high - low) / max(1, n - 1)
    return [costed[round(low + k * step)] for k in range(n)]


def _worker(args: tuple[dict[str, Any], int]) -> int:
    from engine.search.search import run_search

    config_dict, worker = args
    report = run_search(SearchConfig.from_dict(config_dict), worker=worker)
    return int(report["timing"]["trained_trials"])


def measure_workers(ctx: BenchContext, clip: str, budget: TrainBudget,
                    genomes: list[dict[str, Any]], workers: int) -> dict[str, float]:
    """Wall time for `workers` processes to evaluate exactly `genomes` on a shared study."""
    from engine.nets.genome import Genome
    from engine.search.search import start_search

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        config = SearchConfig(clip=clip, task="sr_x2", n_trials=len(genomes), budget=budget,
                              rungs=None, prototype_reference=False, strategy="random",
                              storage=f"sqlite:///{Path(tmp) / 'study.db'}",
                              study_name=f"throughput-{workers}", learned_baselines=False)
        _, study, _ = start_search(config)  # the frames are decoded and cached here
        for genome in genomes:
            study.enqueue_trial(Genome.from_dict(genome).to_params())
        shared = config.with_changes(resume=True).to_dict()
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            list(pool.map(_worker, [(shared, w) for w in range(workers)]))
        wall = time.perf_counter() - start
        from engine.search.search import counted_trials
        from engine.search.study import open_study

        counted = counted_trials(open_study(config.with_changes(resume=True), "unused"))
    per_hour = 3600.0 * counted / wall
    ctx.log(f"  {workers} worker(s): {counted} candidates in {wall:.0f} s = "
            f"{per_hour:.0f} per hour")
    return {"workers": workers, "candidates": counted, "seconds": wall, "per_hour": per_hour}


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def measure_fidelity(ctx: BenchContext, clip: str) -> dict[str, Any]:
    from bench.found_vs_handcrafted import FULL_STEPS, N_FOUND, pick_front, runs_for

    short = 10 if ctx.quick else DEFAULT_STEPS
    extra: dict[str, Any] = {"patch_size": 24, "batch_size": 8} if ctx.quick else {}
    found = pick_front(runs_for(ctx, "sr_x2"), 2 if ctx.quick else N_FOUND)
    randoms = (spread_genomes(2, seed=11, span=(0.0, 0.2)) if ctx.quick  # cheap ones
               else spread_genomes(3, seed=11))
    names = ([f"found {i + 1}" for i in range(len(found))]
             + [f"random {i + 1}" for i in range(len(randoms))])

    def specs(steps: int) -> list[TrainingSpec]:
        common = {"clip": clip, "task": "sr_x2", "steps": steps, **extra}
        return ([TrainingSpec.for_genome(t["genome"], **common) for t in found]
                + [TrainingSpec.for_genome(g, **common) for g in randoms])

    long = short * FULL_STEPS // DEFAULT_STEPS  # section 2's full budget: its runs are reused
    at_short = train_many(ctx.cache, specs(short), workers=2, log=ctx.log)
    at_long = train_many(ctx.cache, specs(long), workers=2, log=ctx.log)
    a = [r["psnr_clip"] for r in at_short]
    b = [r["psnr_clip"] for r in at_long]
    n_random = len(randoms)
    return {"names": names, "labels": [r["label"] for r in at_short], "short": a, "long": b,
            "macs": [r["macs"] for r in at_short], "steps": (short, long),
            "tau": kendall_tau(a, b), "tau_random": kendall_tau(a[-n_random:], b[-n_random:]),
            "cold_seconds": sum(r["seconds"] for r in at_short + at_long)}


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    clip = str(ctx.data("video", "city_tiny.mp4" if ctx.quick else "city.mp4"))
    budget = TrainBudget(steps=20, batch_size=8, patch_size=24) if ctx.quick else TrainBudget()
    genomes = (spread_genomes(2, seed=7, span=(0.0, 0.2)) if ctx.quick
               else random_genomes(4, seed=7))  # ~6 min for one worker at 1 thread
    one = measure_workers(ctx, clip, budget, genomes, 1)
    two = measure_workers(ctx, clip, budget, genomes, 2)
    speedup = two["per_hour"] / one["per_hour"]
    fidelity = measure_fidelity(ctx, clip)
    short, long = fidelity["steps"]
    ctx.log(f"  Kendall tau {short} vs {long} steps: {fidelity['tau']:.2f} "
            f"(random genomes only: {fidelity['tau_random']:.2f})")
    plot = plot_fidelity(ctx, fidelity)
    best = max(one["per_hour"], two["per_hour"])
    return SectionResult(
        key="throughput", title="Throughput and fidelity of the proxy budget",
        text=[
            f"Throughput: the same {len(genomes)} random genomes, enqueued in a fresh Optuna "
            f"study (SQLite), evaluated at {budget.steps} steps (batch {budget.batch_size} x "
            f"{budget.patch_size}px) on `{Path(clip).name}` by one worker process, then by two "
            "sharing the study; one torch thread each. Wall time from starting the worker "
            "processes to the last one exiting (imports, frame-cache load, training, "
            "evaluation, latency measurement and study writes included).",
            f"Fidelity: {len(fidelity['names'])} candidates trained from scratch (seed 0) for "
            f"{short} and for {long} steps; Kendall's tau between the two rankings by "
            "held-out PSNR on the clip.",
        ],
        tables=[
            Table("Candidates per hour", ["worker processes", "candidates", "seconds",
                                          "candidates / hour"],
                  [[r["workers"], r["candidates"], fmt(r["seconds"], 0), fmt(r["per_hour"], 0)]
                   for r in (one, two)] + [["2 vs 1", "", "", f"{speedup:.2f}x"]]),
            Table(f"Ranking at {short} and {long} steps", ["candidate", "architecture",
                                                          "GMACs", f"PSNR @{short}",
                                                          f"PSNR @{long}"],
                  [[n, f"`{lab}`", fmt(m / 1e9), fmt(a), fmt(b)] for n, lab, m, a, b in zip(
                      fidelity["names"], fidelity["labels"], fidelity["macs"],
                      fidelity["short"], fidelity["long"], strict=True)],
                  note=f"Kendall tau {fidelity['tau']:.2f} over all, "
                       f"{fidelity['tau_random']:.2f} over the random genomes alone"),
        ],
        plots=[plot],
        targets=[
            Target("candidates per hour at the default proxy budget (2 cores)", ">= 200",
                   f"{best:.0f}", best >= 200),
            Target(f"Kendall tau, {short} vs {long} steps ({long // short}x; the target "
                   "asks 10x)", ">= 0.7", f"{fidelity['tau']:.2f}", fidelity["tau"] >= 0.7),
            Target("2 workers vs 1", ">= 1.8x", f"{speedup:.2f}x", speedup >= 1.8),
        ],
        figures={"per_hour_1": one["per_hour"], "per_hour_2": two["per_hour"],
                 "speedup": speedup, "tau": fidelity["tau"],
                 "tau_random": fidelity["tau_random"]},
        seconds=clock.seconds, cold_seconds=fidelity["cold_seconds"],
    )


def plot_fidelity(ctx: BenchContext, fidelity: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short, long = fidelity["steps"]
    fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=110)
    ax.scatter(fidelity["short"], fidelity["long"], c="tab:blue")
    for name, x, y in zip(fidelity["names"], fidelity["short"], fidelity["long"], strict=True):
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"held-out PSNR after {short} steps (dB)")
    ax.set_ylabel(f"held-out PSNR after {long} steps (dB)")
    ax.set_title(f"Rank fidelity: Kendall tau {fidelity['tau']:.2f}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.plot_dir / "fidelity.png")
    plt.close(fig)
    return "fidelity.png"
