"""Section 4: throughput of first-rung evaluations, their overhead, and two workers against one.

A fixed list of candidates (the two seed genomes every search enqueues first, then random
genomes of the space) is evaluated at the first rung of the default schedule by one worker
process, then by two sharing one Optuna study (SQLite; the studio's scale-out pattern: each
worker asks, trains, tells), one torch thread each. The study's rungs are the default first
rung and the default top (latency is measured at the top rung only, as in a default search);
promotion is held back so that only first-rung evaluations run, and both runs do exactly the
same work.

Overhead: inside the one-worker run every evaluation is timed from the worker's own events
(study I/O before training: read the rung state, ask, sample, build, count MACs; training;
then held-out evaluation, timed inside `evaluate`, and the study I/O of telling the result),
and the worker's start (process spawn and imports, then frames from the cache and the study
opened) is spread over its evaluations. Latency is measured by a default search only for the
candidates that reach the top rung; its cost (timed here for each candidate at the search's
resolution) is spread over the first-rung evaluations at the default plan's rate.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt
from engine.config import Rungs, SearchConfig, TrainBudget
from engine.nets.search_space import sample_genome

DEFAULTS = SearchConfig(clip="")
PER_HOUR_GOAL = 200.0
OVERHEAD_GOAL = 0.20
SPEEDUP_GOAL = 1.8


class _FixedChoices:
    """Draws a genome from Python's random module (a stand-in for an Optuna trial)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name: str, choices: tuple) -> object:
        return self.rng.choice(choices)


def random_genomes(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [sample_genome(_FixedChoices(rng)).to_dict() for _ in range(n)]


def macs_of(genome: dict[str, Any], scale: int = 2,
            resolution: tuple[int, int] = (1280, 720)) -> int:
    from engine.nets.builder import build_network
    from engine.nets.genome import Genome
    from engine.train.cost import count_macs

    return count_macs(build_network(Genome.from_dict(genome), scale).deploy(), resolution,
                      scale)


def spread_genomes(n: int, seed: int, scale: int = 2, span: tuple[float, float] = (0.1, 0.9),
                   macs_range: tuple[float, float] | None = None, pool_size: int = 60,
                   resolution: tuple[int, int] = (1280, 720)) -> list[dict[str, Any]]:
    """`n` random genomes spread over the 10th-90th percentile of the space's MACs (sorted by
    MACs): typical candidates, without the rare giants. With `macs_range`, only genomes in
    that range are drawn from, spread evenly over log MACs."""
    import math

    costed = sorted(((macs_of(g, scale, resolution), g)
                     for g in random_genomes(pool_size, seed)),
                    key=lambda p: p[0])
    if macs_range is not None:
        inside = [p for p in costed if macs_range[0] <= p[0] <= macs_range[1]]
        if not inside:
            return []
        low, high = math.log10(inside[0][0]), math.log10(inside[-1][0])
        chosen: list[int] = []
        for k in range(min(n, len(inside))):
            want = low + (high - low) * k / max(1, n - 1)
            best = min((i for i in range(len(inside)) if i not in chosen),
                       key=lambda i: abs(math.log10(inside[i][0]) - want))
            chosen.append(best)
        return [inside[i][1] for i in sorted(chosen)]
    low, high = span[0] * (len(costed) - 1), span[1] * (len(costed) - 1)
    step = (high - low) / max(1, n - 1)
    return [costed[round(low + k * step)][1] for k in range(n)]


def plan(ctx: BenchContext) -> dict[str, Any]:
    if ctx.quick:
        return {"clip": ctx.data("video", "city_tiny.mp4"), "candidates": 3,
                "budget": TrainBudget(steps=10, batch_size=8, patch_size=24),
                "rungs": (10, 160), "resolution": (320, 180)}
    # 12 candidates (2 seeds + 10 random) at 300 steps: ~10 min for one worker here.
    return {"clip": ctx.data("video", "city_full.mp4"), "candidates": 12,
            "budget": DEFAULTS.budget,
            "rungs": (DEFAULTS.rung_steps[0], DEFAULTS.top_steps), "resolution": (1280, 720)}


def throughput_config(setup: dict[str, Any], storage: str, name: str) -> SearchConfig:
    """First rung and top rung of the default schedule; an eta above the number of
    candidates keeps every promotion back while the rung is open, and the workers stop
    before the one that would follow its closing."""
    first, top = setup["rungs"]
    eta = max(setup["candidates"] + 1, -(-top // first))  # two rungs: first, then top
    return SearchConfig(clip=str(setup["clip"]), task="sr_x2", n_trials=setup["candidates"],
                        strategy="random", budget=setup["budget"],
                        rungs=Rungs(first, top, eta=eta),
                        resolution=setup["resolution"], storage=storage, study_name=name,
                        learned_baselines=False, prototype_reference=False)


class _Timeline:
    """The worker's events as (kind, perf_counter time), and the time spent in `evaluate`."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def emit(self, event: Any) -> None:
        kind = event.kind
        if kind == "training_progress" and event.step != event.steps:
            return
        if kind == "training_progress":
            kind = "trained"
        self.marks.append((kind, time.time()))


def _worker(args: tuple[dict[str, Any], int, float]) -> dict[str, Any]:
    """One worker process: run the shared search until the first rung is done."""
    started = time.time()
    import optuna

    import engine.search.evaluation as evaluation
    from engine.search.search import counted_trials, run_search

    config_dict, worker, submitted = args
    config = SearchConfig.from_dict(config_dict)
    timeline = _Timeline()
    inner = evaluation.evaluate

    def timed_evaluate(*a: Any, **k: Any) -> Any:  # the held-out evaluation, timed
        start = time.time()
        try:
            return inner(*a, **k)
        finally:
            timeline.marks.append(("evaluate", time.time() - start))

    evaluation.evaluate = timed_evaluate
    study = optuna.load_study(study_name=config.study_name, storage=config.storage)
    training = [False]

    class Sink:
        def emit(self, event: Any) -> None:
            if event.kind == "trial_started":
                training[0] = True
            elif event.kind == "trial_finished":
                training[0] = False
            timeline.emit(event)

    def first_rung_done() -> bool:
        return not training[0] and counted_trials(study) >= config.n_trials

    imported = time.time()
    run_search(config, Sink(), worker=worker, should_stop=first_rung_done)
    # The process's whole CPU time, imports included (as the wall time includes them).
    return {"worker": worker, "submitted": submitted, "started": started,
            "imported": imported, "ended": time.time(), "marks": timeline.marks,
            "cpu_seconds": time.process_time(), "pid": os.getpid()}


def measure_workers(ctx: BenchContext, setup: dict[str, Any], genomes: list[dict[str, Any]],
                    workers: int) -> dict[str, Any]:
    """Wall time for `workers` processes to run the first rung of the same candidates."""
    from engine.nets.genome import Genome
    from engine.search.search import counted_trials, start_search
    from engine.search.study import open_study

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        config = throughput_config(setup, f"sqlite:///{Path(tmp) / 'study.db'}",
                                   f"throughput-{workers}")
        _, study, _ = start_search(config)  # the frames are decoded and cached here
        for genome in genomes:
            study.enqueue_trial(Genome.from_dict(genome).to_params())
        shared = config.with_changes(resume=True).to_dict()
        start = time.time()
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            done = list(pool.map(_worker, [(shared, w, start) for w in range(workers)]))
        wall = time.time() - start
        counted = counted_trials(open_study(config.with_changes(resume=True), "unused"))
    per_hour = 3600.0 * counted / wall
    ctx.log(f"  {workers} worker(s): {counted} first-rung evaluations in {wall:.0f} s = "
            f"{per_hour:.0f} per hour")
    return {"workers": workers, "evaluations": counted, "seconds": wall,
            "per_hour": per_hour, "runs": done}


def breakdown(run: dict[str, Any]) -> dict[str, Any]:
    """Per-evaluation seconds of one worker, from its timeline: study I/O before training,
    training, held-out evaluation, study I/O after; plus its start (spawn, imports, search
    start)."""
    marks = run["marks"]
    before, train, after, evaluate = [], [], [], [e for k, e in marks if k == "evaluate"]
    last = next((t for k, t in marks if k == "search_started"), run["imported"])
    started_at = trained_at = None
    for kind, at in marks:
        if kind == "trial_started":
            before.append(at - last)
            started_at = at
        elif kind == "trained" and started_at is not None:
            train.append(at - started_at)
            trained_at = at
        elif kind == "trial_finished":
            if trained_at is not None:
                after.append(at - trained_at)
            last, started_at, trained_at = at, None, None
    n = len(train)
    search_started = next((t for k, t in marks if k == "search_started"), run["imported"])
    start = {"spawn and imports": run["imported"] - run["submitted"],
             "search start (frames, study)": search_started - run["imported"]}
    evaluation = sum(evaluate) / len(evaluate) if evaluate else 0.0
    return {"n": n, "train": sum(train) / n if n else 0.0,
            "before": sum(before) / n if n else 0.0, "evaluate": evaluation,
            "after": (sum(after) / n if n else 0.0) - evaluation, "start": start,
            "start_per_evaluation": sum(start.values()) / n if n else 0.0}


def cpu_per_evaluation(run: dict[str, Any]) -> float:
    """CPU seconds the workers spent per evaluation (start-up included)."""
    return sum(w["cpu_seconds"] for w in run["runs"]) / max(1, run["evaluations"])


def cpu_share(run: dict[str, Any]) -> float:
    """The share of their cores the workers got: CPU seconds over wall seconds x workers."""
    return sum(w["cpu_seconds"] for w in run["runs"]) / (run["seconds"] * run["workers"])


def latency_cost(setup: dict[str, Any], genomes: list[dict[str, Any]]) -> float:
    """Mean seconds `measure_latency` takes for these genomes at the search's resolution."""
    from engine.nets.builder import build_network
    from engine.nets.genome import Genome
    from engine.train.cost import measure_latency

    times = []
    for genome in genomes:
        net = build_network(Genome.from_dict(genome), 2).deploy()
        start = time.perf_counter()
        measure_latency(net, setup["resolution"], 2)
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    setup = plan(ctx)
    from engine.nets.search_space import baseline_seed_genomes

    n = setup["candidates"]
    seeds = [g.to_dict() for g in baseline_seed_genomes(2)]
    genomes = (spread_genomes(n - len(seeds), seed=7, span=(0.0, 0.2)) if ctx.quick
               else random_genomes(n - len(seeds), seed=7))
    load_before = os.getloadavg()[0]
    one = measure_workers(ctx, setup, genomes, 1)
    two = measure_workers(ctx, setup, genomes, 2)
    load_after = os.getloadavg()[0]
    speedup = two["per_hour"] / one["per_hour"]
    parts = breakdown(one["runs"][0])
    per_eval = one["seconds"] / max(1, one["evaluations"])
    planned = DEFAULTS.planned_evaluations
    top_rate = planned[-1] / planned[0]  # latency timings per first-rung evaluation
    latency = latency_cost(setup, seeds + genomes)
    rows = [["process spawn and imports (once per worker)",
             fmt(parts["start"]["spawn and imports"] / max(1, parts["n"]), 2)],
            ["search start: frames from the cache, study opened (once per worker)",
             fmt(parts["start"]["search start (frames, study)"] / max(1, parts["n"]), 2)],
            ["study I/O before training (rung state, ask, sample, build, MACs)",
             fmt(parts["before"], 2)],
            ["held-out evaluation (`evaluate`)", fmt(parts["evaluate"], 2)],
            ["study I/O after (states, tell, announce)", fmt(parts["after"], 2)],
            [f"latency measurement, top rung only ({latency:.2f} s x {planned[-1]}/"
             f"{planned[0]})", fmt(latency * top_rate, 2)]]
    overhead = (parts["start_per_evaluation"] + parts["before"] + parts["evaluate"]
                + parts["after"] + latency * top_rate)
    share = overhead / (parts["train"] + overhead) if parts["train"] + overhead else 0.0
    rows += [["training (first rung)", fmt(parts["train"], 2)],
             ["overhead share of a first-rung evaluation", f"{100 * share:.1f}%"]]
    first, top = setup["rungs"]
    budget = setup["budget"]
    return SectionResult(
        key="throughput", title="Throughput of first-rung evaluations",
        text=[
            f"{n} candidates (the 2 seed genomes, then {n - 2} random genome"
            f"{'s' if n - 2 != 1 else ''} of the space), "
            f"each evaluated once at the first rung ({first} steps of batch "
            f"{budget.batch_size} x {budget.patch_size}px) on `{Path(setup['clip']).name}`, "
            f"by one worker process, then by two sharing the study; one torch thread each. "
            "Wall time from starting the worker processes to the last one exiting (spawn, "
            "imports, frame-cache load, training, evaluation and study writes included).",
            __doc__.split("\n\n")[1].replace("\n", " "),
            __doc__.split("\n\n")[2].replace("\n", " "),
            f"The machine's 1-minute load average was {load_before:.2f} before the runs and "
            f"{load_after:.2f} after ({os.cpu_count()} cores; the benchmark's own workers "
            "count in it). Wall-clock rates fall when other jobs share the cores.",
        ],
        tables=[
            Table("First-rung evaluations per hour", [
                "worker processes", "evaluations", "seconds", "evaluations / hour",
                "per worker-hour", "CPU s per evaluation", "CPU share of their cores"],
                [[r["workers"], r["evaluations"], fmt(r["seconds"], 0), fmt(r["per_hour"], 0),
                  fmt(r["per_hour"] / r["workers"], 0), fmt(cpu_per_evaluation(r), 1),
                  f"{100 * cpu_share(r):.0f}%"] for r in (one, two)]
                + [["2 vs 1", "", "", f"{speedup:.2f}x", "", "", ""]],
                note="CPU share: the workers' CPU seconds over their wall time times their "
                     "number; below 100% the cores were shared with other jobs (wall-clock "
                     "rates fall with it, CPU seconds per evaluation do not)"),
            Table("Where one worker's time goes, per first-rung evaluation",
                  ["part", "seconds"], rows,
                  note=f"one worker, {one['evaluations']} evaluations, {per_eval:.1f} s each on "
                       "average (wall); start-up parts spread over its evaluations"),
        ],
        targets=[
            Target("first-rung evaluations per worker-hour (one worker, one thread)",
                   f">= {PER_HOUR_GOAL:.0f}", f"{one['per_hour']:.0f}",
                   one["per_hour"] >= PER_HOUR_GOAL),
            Target("per-evaluation overhead (start, held-out evaluation, latency, study I/O) "
                   "/ a first-rung evaluation", f"<= {100 * OVERHEAD_GOAL:.0f}%",
                   f"{100 * share:.1f}%", share <= OVERHEAD_GOAL),
            Target("2 workers vs 1", f">= {SPEEDUP_GOAL}x", f"{speedup:.2f}x",
                   speedup >= SPEEDUP_GOAL),
        ],
        figures={"per_hour_1": one["per_hour"], "per_hour_2": two["per_hour"],
                 "speedup": speedup, "overhead_share": share,
                 "seconds_per_evaluation": per_eval, "breakdown": {
                     k: v for k, v in parts.items() if k != "start"} | parts["start"],
                 "latency_seconds": latency, "load": [load_before, load_after],
                 "cpu_seconds_per_evaluation": [cpu_per_evaluation(one),
                                                cpu_per_evaluation(two)],
                 "cpu_share": [cpu_share(one), cpu_share(two)],
                 "first_rung_steps": first},
        seconds=clock.seconds,
    )
