"""What every benchmark section shares: its context, and the result it hands the report.

A section is a function `run(ctx: BenchContext) -> SectionResult`. It prints its figures as it
measures them (`ctx.log`), keeps expensive, load-independent artefacts (trained checkpoints,
search runs) in `ctx.cache`, and returns tables, plots and the targets it checked. Timing
figures are never cached: they are measured again in every run.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = (REPO_ROOT.parent / "shared" / "data").resolve()

Cell = str | int | float | None


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""  # one line under the table: what the columns measure, the unit


@dataclass
class Target:
    """One target of the issue, as the benchmark measured it."""

    name: str  # "loader vs bare cv2 decode loop"
    goal: str  # ">= 0.9x"
    measured: str  # "0.97x"
    met: bool | None  # None: could not be measured in this run (say why in `measured`)


@dataclass
class SectionResult:
    key: str  # short id, e.g. "loader"
    title: str  # heading in BENCHMARKS.md
    text: list[str] = field(default_factory=list)  # markdown paragraphs: setup, how measured
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # file names inside ctx.plot_dir
    targets: list[Target] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # headline numbers, JSON-able
    seconds: float = 0.0  # wall time of the section in this run
    cold_seconds: float = 0.0  # what the cached parts cost when they were computed


@dataclass
class BenchContext:
    quick: bool  # CI smoke: tiny clips and budgets, same code paths
    full: bool  # also x4 and denoise
    out_dir: Path  # BENCHMARKS.md (or the quick report) and results.json go here
    plot_dir: Path  # plots (PNG) go here; the report links them relative to out_dir
    cache: Any  # bench.cache.Cache (typed loosely to keep this module import-light)
    data_root: Path = DATA_ROOT
    # Search seeds of the search section (None: its plan's); fewer fit a shorter session.
    seeds: list[int] | None = None
    # Hand-over between sections, e.g. "models": the trained networks section 2 compared,
    # each {"name", "kind" (found/handcrafted/prototype), "checkpoint" (path), "scale",
    # "psnr" (dB, Vid4), "gain_db" (over bicubic, Vid4)}; later sections reuse them.
    shared: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    def data(self, *parts: str) -> Path:
        path = self.data_root.joinpath(*parts)
        if not path.exists():
            raise FileNotFoundError(
                f"benchmark data {path} is missing: the shared data set must be at "
                f"{self.data_root} (see ../shared/data/README.md)"
            )
        return path


def ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def fmt(value: Cell, digits: int = 2) -> str:
    """Table cell text: None -> '-', floats with `digits` decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_count(value: float | None) -> str:
    if value is None:
        return "-"
    for suffix, unit in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= unit:
            return f"{value / unit:.2f}{suffix}"
    return f"{value:.0f}"


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def python() -> str:
    """The interpreter running the benchmark (subprocesses use the same one)."""
    return sys.executable


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    """How many, median, p95 (nearest rank below) and max of request latencies, in ms."""
    ordered = sorted(samples_ms)
    return {"gets": len(ordered), "median_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max_ms": round(ordered[-1], 1)}
