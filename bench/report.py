"""BENCHMARKS.md: a generated header (command, commit, machine), the headline figures and
every target as measured, then each section's setup, tables and plots.

Each section is kept as a *record* (its rendered markdown, targets, figures and the run that
measured it: command, commit, time) in results.json. A partial run (`--only`) replaces the
records of the sections it ran and keeps the others, so `make bench BENCH_ARGS="--only live"`
updates one section of BENCHMARKS.md instead of dropping the five it did not run; the report
names, per section, the commit and command that measured it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchContext, SectionResult, Table, fmt

Record = dict[str, Any]  # one section as measured: see section_record()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import cv2
    import onnxruntime
    import torch

    return (f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads available), "
            f"onnxruntime {onnxruntime.__version__}, OpenCV {cv2.__version__}")


def current_commit() -> str:
    """Short hash of HEAD, marked when the measured code (engine, bench, webapp) is edited."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "engine", "bench", "webapp", "static")
    return commit + (" (with uncommitted changes)" if dirty else "")


def render_table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return lines + [""]


def render_section(result: SectionResult, plots_rel: str) -> str:
    """A section's body (below its heading): setup text, tables, plots, its time."""
    lines: list[str] = []
    for paragraph in result.text:
        lines += [paragraph, ""]
    for table in result.tables:
        lines += render_table(table)
    for plot in result.plots:
        lines += [f"![{plot}]({plots_rel}/{plot})", ""]
    lines.append(f"_Section time in this run: {result.seconds / 60:.1f} min"
                 + (f"; its cached parts cost {result.cold_seconds / 60:.0f} process-minutes "
                    "when computed_" if result.cold_seconds else "_"))
    return "\n".join(lines)


def section_record(ctx: BenchContext, result: SectionResult, command: str,
                   commit: str) -> Record:
    plots_rel = os.path.relpath(ctx.plot_dir, ctx.out_dir)
    return {"key": result.key, "title": result.title,
            "markdown": render_section(result, plots_rel),
            "targets": [t.__dict__ for t in result.targets], "figures": result.figures,
            "command": command, "commit": commit, "quick": ctx.quick, "full": ctx.full,
            "generated": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"}


def results_path(ctx: BenchContext) -> Path:
    return ctx.out_dir / ("docs/bench/results.json" if ctx.out_dir == REPO_ROOT
                          else "bench-results.json")


def earlier_records(ctx: BenchContext) -> dict[str, Record]:
    """The sections an earlier run left in this report's results.json (same mode only:
    quick figures never sit beside real ones)."""
    path = results_path(ctx)
    try:
        records = json.loads(path.read_text()).get("records", {})
    except (OSError, ValueError):
        return {}
    return {key: r for key, r in records.items() if r.get("quick") == ctx.quick}


def write_results(ctx: BenchContext, records: list[Record], command: str,
                  wall_seconds: float) -> Path:
    """results.json: per section its figures and targets (flat, for scripts) and its record."""
    path = results_path(ctx)
    path.write_text(json.dumps(
        {"command": command, "wall_seconds": wall_seconds,
         "sections": {r["key"]: r["figures"] for r in records},
         "targets": [t | {"section": r["key"], "commit": r["commit"]}
                     for r in records for t in r["targets"]],
         "records": {r["key"]: r for r in records}},
        indent=1, default=str))
    return path


def write_report(ctx: BenchContext, records: list[Record], ran: set[str], command: str,
                 wall_seconds: float, partial: bool) -> Path:
    """BENCHMARKS.md (or report.md outside the repository root) from section records in
    report order; `ran` names those this run measured, the rest come from earlier runs."""
    name = "BENCHMARKS.md" if ctx.out_dir == REPO_ROOT else "report.md"
    cache = ctx.cache
    kept = [r for r in records if r["key"] not in ran]
    ran_names = ", ".join(r["key"] for r in records if r["key"] in ran)
    lines = [
        "# Benchmarks",
        "",
        "<!-- generated by `make bench` (bench/report.py); do not edit by hand -->",
        f"- Command: `{command}`{' (a partial run: only some sections)' if partial else ''}"
        f"{' (quick mode: toy sizes, not figures to quote)' if ctx.quick else ''}",
        f"- Commit: `{current_commit()}`; generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- This run: {wall_seconds / 60:.1f} min; {len(cache.hits)} cached artefacts reused "
        f"(trained checkpoints and search runs, keyed by configuration and source), "
        f"{len(cache.misses)} computed. Those reused took {cache.hit_seconds / 60:.0f} "
        f"process-minutes when computed (two processes at a time), so a cold run takes about "
        f"{(wall_seconds + cache.hit_seconds / 2) / 60:.0f} min; `--fresh` forces one.",
    ]
    if kept:
        lines.append(
            f"- This run measured {ran_names}. The other sections are kept from earlier runs "
            f"on this machine; each names the commit and command that measured it, and so "
            f"does the targets table.")
    lines += ["", "## Targets", "", "| section | target | goal | measured | | commit |",
              "|---|---|---|---|---|---|"]
    for record in records:
        for t in record["targets"]:
            mark = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
            lines.append(f"| {record['key']} | {t['name']} | {t['goal']} | {t['measured']} "
                         f"| {mark} | `{record['commit'].split()[0]}` |")
    lines.append("")
    for record in records:
        lines += [f"## {record['title']}", ""]
        if record["key"] not in ran:
            lines += [f"_Kept from an earlier run: `{record['command']}` at commit "
                      f"`{record['commit']}`, {record['generated']}._", ""]
        lines += [record["markdown"], ""]
    path = ctx.out_dir / name
    path.write_text("\n".join(lines))
    return path
