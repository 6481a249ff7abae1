"""The benchmark runner: sections in order, each printing its figures, then one report.

`make bench` writes BENCHMARKS.md (+ plots in docs/bench/) at the repository root; `--quick`
runs the same code on toy sizes and writes to runs/bench-quick/ (CI's smoke test).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench.cache import Cache
from bench.common import REPO_ROOT, BenchContext, SectionResult, Target

# Order matters: later sections reuse what earlier ones hand over (ctx.shared).
SECTIONS = {
    "search": "bench.search_quality",
    "models": "bench.found_vs_handcrafted",
    "fidelity": "bench.fidelity",
    "throughput": "bench.throughput",
    "loader": "bench.loader",
    "deployment": "bench.deployment",
    "live": "bench.live_path",
    "bodies": "bench.request_bodies",
    "jobs": "bench.job_latency",
    "load": "bench.live_load",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="toy sizes, same code paths (CI's smoke test); a few minutes")
    parser.add_argument("--full", action="store_true",
                        help="also x4 super-resolution and denoising (sigma 25)")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)})")
    parser.add_argument("--out", type=Path,
                        help="report folder (default: the repository root, or "
                             "runs/bench-quick with --quick)")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "bench",
                        help="trained checkpoints and search runs, keyed by configuration")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="search seeds of the search section (default 0 1 2; each pair "
                             "of a default and a random search is about 30 CPU-minutes)")
    parser.add_argument("--fresh", action="store_true",
                        help="recompute cached checkpoints and searches (a cold run)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or (REPO_ROOT / "runs" / "bench-quick" if args.quick else REPO_ROOT)
    plot_dir = out / "docs" / "bench" if out == REPO_ROOT else out / "plots"
    cache_root = args.cache / "quick" if args.quick else args.cache
    ctx = BenchContext(quick=args.quick, full=args.full, out_dir=out, plot_dir=plot_dir,
                       cache=Cache(cache_root, fresh=args.fresh), seeds=args.seeds)
    plot_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in SECTIONS if not args.only or n in args.only]
    command = " ".join(["python -m bench", shlex.join(sys.argv[1:] if argv is None else argv)])
    command = command.strip()
    started = time.time()
    results: list[SectionResult] = []
    failed: list[str] = []
    for name in names:
        ctx.log(f"== {name} ==")
        try:
            module = importlib.import_module(SECTIONS[name])
            result = module.run(ctx)
        except Exception as error:  # one broken section must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            result = SectionResult(
                key=name, title=f"{name} (failed)",
                text=[f"This section failed in this run: `{type(error).__name__}: {error}`"],
                targets=[Target(name, "runs", "failed", False)])
        results.append(result)
        for target in result.targets:
            mark = {True: "met", False: "MISSED", None: "not measured"}[target.met]
            ctx.log(f"  target {target.name}: {target.measured} (goal {target.goal}) {mark}")
        ctx.log(f"  section {name}: {result.seconds:.0f} s")
    wall = time.time() - started
    from bench.report import (
        current_commit,
        earlier_records,
        section_record,
        write_report,
        write_results,
    )

    commit = current_commit()
    records = earlier_records(ctx) if args.only else {}
    records.update({r.key: section_record(ctx, r, command, commit) for r in results})
    ordered = [records[name] for name in SECTIONS if name in records]
    report = write_report(ctx, ordered, ran=set(names), command=command, wall_seconds=wall,
                          partial=bool(args.only))
    write_results(ctx, ordered, command, wall)
    ctx.log(f"report: {report} ({wall / 60:.1f} min)")
    if failed:
        ctx.log(f"failed sections: {', '.join(failed)}")
        return 1
    return 0
