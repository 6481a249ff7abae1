"""Section 3: rank fidelity of promotion. Does the PSNR a candidate reaches at the top rung
through promotion rank candidates as much longer training does?

Genomes: at least 10 spread evenly over log MACs across the range the default searches'
top-rung Pareto front spans (section 1's searches on its clip, every seed together; the
fronts of every rung when the top one has a single cost), taken from the candidates those
searches evaluated, topped up with random genomes of the space in that range when too few
fall in it.

Each genome is trained as a search trains it (same frames, initialisation seed, patch
stream and warmup-stable-decay schedule; one thread): through the rungs as promotions do
(each rung continues the constant-rate state the rung below left), scored on the clip's
held-out frames at every rung; and from scratch in one run to twice the top budget. Kendall's
tau between the two rankings is the target. A promotion is by construction the run to that
budget in one go: the cheapest genomes are also trained to the top budget in one go, and the
mean |promoted - one go| says how exactly that holds.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from bench import search_quality
from bench.common import BenchContext, SectionResult, Stopwatch, Table, Target, fmt
from bench.throughput import macs_of, spread_genomes
from bench.training import TrainingSpec, train_many
from engine.nets.genome import Genome
from engine.search.pareto import non_dominated

TAU_GOAL = 0.8


def plan(ctx: BenchContext) -> dict[str, Any]:
    if ctx.quick:
        return {"genomes": 4, "one_go_checks": 2}
    return {"genomes": 10, "one_go_checks": 3}


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def fronts_macs_range(runs: list[dict[str, Any]]) -> tuple[float, float] | None:
    """Cheapest and costliest MACs on the runs' top-rung Pareto front (the front a search
    reports; all runs together). When that front has a single cost, the fronts of every rung
    (those the promotions picked from) give the range instead."""
    def front_macs(rungs: range) -> list[float]:
        macs: list[float] = []
        for run in runs:
            for rung in rungs:
                scored = [(e["psnr"], t["macs"]) for t in run["trials"]
                          for e in (t.get("rungs") or []) if e.get("rung") == rung
                          and e.get("psnr") is not None and e["psnr"] > run["bicubic_psnr"]]
                macs += [scored[i][1] for i in non_dominated(scored)]
        return macs

    depth = max(len(run["rung_steps"]) for run in runs) if runs else 0
    macs = front_macs(range(depth - 1, depth))
    if len(set(macs)) < 2:
        macs = front_macs(range(depth))
    return (min(macs), max(macs)) if macs else None


def pick_genomes(runs: list[dict[str, Any]], n: int, macs_range: tuple[float, float],
                 scale: int = 2, resolution: tuple[int, int] = (1280, 720),
                 ) -> list[dict[str, Any]]:
    """`n` genomes spread over log MACs in `macs_range`: evaluated candidates of the runs
    first (one per architecture), random genomes of the space to fill in. Each comes back
    as {"genome", "arch", "macs", "source"}, cheapest first."""
    pool: dict[str, dict[str, Any]] = {}
    for run in runs:
        for t in run["trials"]:
            if (t.get("genome") and t.get("macs") and t["state"] in ("complete", "failed")
                    and macs_range[0] <= t["macs"] <= macs_range[1]):
                pool.setdefault(t["arch"], {"genome": t["genome"], "arch": t["arch"],
                                            "macs": t["macs"], "source": "searched"})
    items = sorted(pool.values(), key=lambda g: g["macs"])
    low, high = (math.log10(m) for m in macs_range)
    chosen: list[dict[str, Any]] = []
    for k in range(min(n, len(items))):
        want = low + (high - low) * k / max(1, n - 1)
        left = [g for g in items if g not in chosen]
        chosen.append(min(left, key=lambda g: abs(math.log10(g["macs"]) - want)))
    seed = 11
    while len(chosen) < n and seed < 15:  # a few draws of random genomes in the range
        extra = spread_genomes(n - len(chosen), seed=seed, scale=scale, macs_range=macs_range,
                               pool_size=60, resolution=resolution)
        known = {g["arch"] for g in chosen}
        for genome in extra:
            arch = Genome.from_dict(genome).key()
            if arch not in known and len(chosen) < n:
                chosen.append({"genome": genome, "arch": arch, "source": "random",
                               "macs": macs_of(genome, scale, resolution)})
                known.add(arch)
        seed += 1
    return sorted(chosen, key=lambda g: g["macs"])


def run(ctx: BenchContext) -> SectionResult:
    clock = Stopwatch()
    setup = search_quality.plan(ctx)
    own = plan(ctx)
    runs = ctx.shared.get("search_runs") or search_quality.default_searches(
        ctx, [search_quality.default_config(setup, setup["clip"], setup["task"], s)
              for s in setup["seeds"]])
    rung_steps = tuple(runs[0]["rung_steps"])
    top = rung_steps[-1]
    macs_range = fronts_macs_range(runs)
    if macs_range is None:  # nothing above bicubic: the whole space's typical range
        macs_range = (min(t["macs"] for r in runs for t in r["trials"] if t.get("macs")),
                      max(t["macs"] for r in runs for t in r["trials"] if t.get("macs")))
    genomes = pick_genomes(runs, own["genomes"], macs_range, resolution=setup["resolution"])
    budget = setup["budget"]
    common = {"clip": str(setup["clip"]), "task": setup["task"],
              "patch_size": budget.patch_size, "batch_size": budget.batch_size,
              "learning_rate": budget.learning_rate, "resolution": setup["resolution"]}
    promoted_specs = [TrainingSpec.for_genome(g["genome"], steps=top, rungs=rung_steps,
                                              **common) for g in genomes]
    long_specs = [TrainingSpec.for_genome(g["genome"], steps=2 * top, **common)
                  for g in genomes]
    checks = genomes[: own["one_go_checks"]]  # the cheapest
    check_specs = [TrainingSpec.for_genome(g["genome"], steps=top, **common) for g in checks]
    ctx.log(f"  {len(genomes)} genomes over {macs_range[0] / 1e9:.2f}-"
            f"{macs_range[1] / 1e9:.2f} GMACs: promoted to {top} steps, one go to {2 * top}, "
            f"{len(checks)} also one go to {top}")
    promoted = train_many(ctx.cache, promoted_specs, workers=2, log=ctx.log)
    long = train_many(ctx.cache, long_specs, workers=2, log=ctx.log)
    one_go = train_many(ctx.cache, check_specs, workers=2, log=ctx.log)

    at_top = [r["psnr_clip"] for r in promoted]
    at_long = [r["psnr_clip"] for r in long]
    at_first = [r["rung_psnr"][0] for r in promoted]
    tau = kendall_tau(at_top, at_long)
    tau_first = kendall_tau(at_first, at_top)
    exact = [abs(p["psnr_clip"] - o["psnr_clip"]) for p, o in zip(promoted, one_go,
                                                                   strict=False)]
    mean_exact = statistics.mean(exact) if exact else None
    ctx.log(f"  Kendall tau promoted@{top} vs one go@{2 * top}: {tau:.2f}; first rung vs top "
            f"{tau_first:.2f}; mean |promoted - one go@{top}| {fmt(mean_exact, 4)} dB")
    rows = []
    for i, (g, p, lg) in enumerate(zip(genomes, promoted, long, strict=True)):
        check = fmt(one_go[i]["psnr_clip"]) if i < len(one_go) else "-"
        rows.append([f"`{g['arch']}`", g["source"], fmt(g["macs"] / 1e9)]
                    + [fmt(v) for v in p["rung_psnr"]] + [check, fmt(lg["psnr_clip"])])
    rung_cols = [f"PSNR @{s} (rung {k})" for k, s in enumerate(rung_steps)]
    plot = plot_fidelity(ctx, at_top, at_long, top, tau)
    cold = sum(r["seconds"] for r in promoted + long + one_go)
    return SectionResult(
        key="fidelity", title="Rank fidelity of promotion",
        text=[p.replace("\n", " ") for p in __doc__.split("\n\n")[1:]] + [
            f"Here: {len(genomes)} genomes over {macs_range[0] / 1e9:.2f}-"
            f"{macs_range[1] / 1e9:.2f} GMACs ({sum(g['source'] == 'searched' for g in genomes)}"
            f" evaluated by the searches, the rest random), rungs "
            f"{' -> '.join(f'{s:,}' for s in rung_steps)}, one go to {2 * top:,} steps; "
            f"`{Path(setup['clip']).name}`, batch {budget.batch_size} x {budget.patch_size}px."],
        tables=[Table("PSNR on the held-out frames", ["genome", "from", "GMACs"] + rung_cols
                      + [f"one go @{top}", f"one go @{2 * top}"], rows,
                      note=f"Kendall tau (promoted @{top} vs one go @{2 * top}) {tau:.2f}; "
                           f"first rung vs top rung {tau_first:.2f}; mean |promoted - one go "
                           f"@{top}| over {len(exact)} genomes {fmt(mean_exact, 4)} dB")],
        plots=[plot],
        targets=[
            Target(f"Kendall tau, top rung through promotion ({top:,} steps) vs one go to "
                   f"{2 * top:,} steps, {len(genomes)} genomes over the front's MACs",
                   f">= {TAU_GOAL}", f"{tau:.2f}", tau >= TAU_GOAL),
            Target(f"mean absolute PSNR difference, promoted vs one go to {top:,} steps "
                   f"({len(exact)} genomes)",
                   "~0 dB (by construction)", f"{fmt(mean_exact, 4)} dB",
                   None if mean_exact is None else mean_exact < 0.01),
        ],
        figures={"tau": tau, "tau_first_rung_vs_top": tau_first,
                 "mean_abs_promoted_vs_one_go_db": mean_exact, "genomes": len(genomes),
                 "macs_range": list(macs_range), "top_steps": top},
        seconds=clock.seconds, cold_seconds=cold,
    )


def plot_fidelity(ctx: BenchContext, at_top: list[float], at_long: list[float], top: int,
                  tau: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=110)
    ax.scatter(at_top, at_long, c="tab:blue")
    for k, (x, y) in enumerate(zip(at_top, at_long, strict=True)):
        ax.annotate(str(k + 1), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"held-out PSNR, promoted to {top} steps (dB)")
    ax.set_ylabel(f"held-out PSNR, one go to {2 * top} steps (dB)")
    ax.set_title(f"Rank fidelity: Kendall tau {tau:.2f}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.plot_dir / "fidelity.png")
    plt.close(fig)
    return "fidelity.png"
