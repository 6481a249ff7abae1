"""Typed search configuration: the one home of the engine's defaults.

Frozen dataclasses with `to_dict` / `from_dict`, so a config travels as JSON into a report,
an Optuna study's user attributes and a Celery task, and comes back identical.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# One output frame at this size is the unit of cost (the SR literature's convention).
DEFAULT_RESOLUTION: tuple[int, int] = (1280, 720)

QUALITY_OBJECTIVES = ("psnr", "ssim")
COST_OBJECTIVES = ("macs", "params", "latency")


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says what to change."""


@dataclass(frozen=True)
class TrainBudget:
    """Proxy training budget of one trial, counted in optimizer steps, never in seconds:
    on a shared machine a seconds budget ranks models by the neighbours' CPU use."""

    steps: int = 600
    batch_size: int = 16
    patch_size: int = 32  # input (low-quality) patch side; targets are patch_size * scale
    learning_rate: float = 2e-3
    threads: int = 1  # torch threads; under load 2 threads can run 7-30x slower than 1
    # Warmup-stable-decay: a constant rate, then a linear decay over this last fraction of
    # any budget. A run stopped before its decay can be continued to a longer budget and
    # ends exactly where one run to that budget would (see engine.train.trainer).
    decay_fraction: float = 0.2

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "patch_size", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (0 < self.learning_rate < 1):
            raise ConfigError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not (0 <= self.decay_fraction <= 1):
            raise ConfigError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")


@dataclass(frozen=True)
class Rungs:
    """Multi-fidelity budgets: every candidate trains `min_steps`, the best 1/eta of a rung
    (non-dominated sorting, then crowding) continue to eta times as many steps, up to
    `max_steps`. Verdicts (front, hypervolume, baselines) are read at the top rung only."""

    min_steps: int = 300
    max_steps: int = 4800
    eta: int = 4

    def __post_init__(self) -> None:
        if self.min_steps < 1:
            raise ConfigError(f"min_steps must be at least 1, got {self.min_steps}")
        if self.max_steps < self.min_steps:
            raise ConfigError(f"max_steps ({self.max_steps}) must be at least min_steps "
                              f"({self.min_steps})")
        if self.eta < 2:
            raise ConfigError(f"eta must be at least 2, got {self.eta}")
        if len(self.steps) > 8:
            raise ConfigError(f"{len(self.steps)} rungs from {self.min_steps} to "
                              f"{self.max_steps} steps at eta {self.eta}: raise eta or "
                              "min_steps (at most 8 rungs)")

    @property
    def steps(self) -> tuple[int, ...]:
        """Steps of each rung: min_steps * eta^k below max_steps, then max_steps."""
        rungs, steps = [], self.min_steps
        while steps < self.max_steps and len(rungs) < 9:
            rungs.append(steps)
            steps *= self.eta
        return (*rungs, self.max_steps)

    def planned(self, n_candidates: int, anchors: int = 0) -> list[int]:
        """Evaluations per rung when `n_candidates` start, `anchors` of them seeds that move
        up every rung: once a rung is closed, the best ceil(n / eta) of the others move up
        (see engine.search.promotion)."""
        anchors = min(anchors, n_candidates)
        counts, others = [n_candidates], n_candidates - anchors
        for _ in self.steps[1:]:
            others = -(-others // self.eta)
            counts.append(others + anchors)
        return counts


@dataclass(frozen=True)
class Constraints:
    """Hard limits; a genome that breaks one is rejected before any training."""

    max_macs: int | None = None  # one output frame at the search's resolution
    max_params: int | None = None
    max_latency_ms: float | None = None  # one output frame, 1 thread, median

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value <= 0:
                raise ConfigError(f"{f.name} must be positive, got {value}")


@dataclass(frozen=True)
class SearchSpec:
    """What is searched: the task with its options, what the data and the training are,
    objectives, rungs, constraints, resolution and seed. Two runs with one spec produce the
    same numbers for the same genome, so its `to_dict()` is the study fingerprint: a study
    resumes only under the spec it was created with."""

    task: str
    objectives: tuple[str, str]
    budget: TrainBudget
    rungs: Rungs | None
    constraints: Constraints
    resolution: tuple[int, int]
    seed: int
    n_frames: int
    eval_fraction: float
    skip_near_duplicates: bool
    teacher: str | None
    teacher_weight: float
    noise_sigma: float
    jpeg_quality: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunPlace:
    """Where a search runs: its clip, its study's storage and name, and its output folder.
    None of it changes a result, so a search can move (another storage, another folder)."""

    clip: str
    storage: str | None
    study_name: str | None
    resume: bool
    out_dir: str | None
    clip_name: str | None


# Seeds of every search, the genomes nearest to ESPCN and FSRCNN (engine.nets.search_space.
# BASELINE_SEED_NAMES); in a multi-fidelity search they are promoted to the top rung.
ANCHOR_SEEDS = 2


@dataclass(frozen=True)
class SearchConfig:
    clip: str
    task: str = "sr_x2"
    n_trials: int = 32  # candidates started at the first rung
    strategy: str = "nsga2"
    objectives: tuple[str, str] = ("psnr", "macs")
    budget: TrainBudget = field(default_factory=TrainBudget)
    # None: single fidelity, every trial trains `budget.steps` (the pre-rung mode, kept to
    # compare against).
    rungs: Rungs | None = field(default_factory=Rungs)
    constraints: Constraints = field(default_factory=Constraints)
    resolution: tuple[int, int] = DEFAULT_RESOLUTION  # output (width, height) for costs
    seed: int = 0
    n_frames: int = 16  # frames sampled over the clip
    eval_fraction: float = 0.2  # a contiguous tail of the sampled frames is held out
    skip_near_duplicates: bool = False
    # ESPCN and FSRCNN trained beside the trials; a benchmark comparing strategies over many
    # searches turns them off (they do not depend on the strategy).
    learned_baselines: bool = True
    # SR reports show the pretrained prototype (IMDN) as a reference row: its PSNR on the
    # same held-out frames, its MACs and latency (computed once per clip and cached).
    prototype_reference: bool = True
    # Distillation: "imdn" adds teacher_weight x L1 to the pretrained prototype's outputs
    # (computed once per training frame and cached), SR tasks only.
    teacher: str | None = None
    teacher_weight: float = 1.0
    device: str = "auto"  # auto: CUDA when torch sees one, else the CPU
    noise_sigma: float = 25.0  # denoise: Gaussian sigma on the 0-255 scale
    jpeg_quality: int = 20  # deblock: JPEG quality of the degraded input
    storage: str | None = None  # Optuna RDB URL; None keeps the study in memory
    study_name: str | None = None
    resume: bool = False
    out_dir: str | None = None
    # The clip's name as its owner knows it (the studio stores uploads under a random name);
    # None: the file's own name. Only reports and plots show it.
    clip_name: str | None = None

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ConfigError(f"n_trials must be at least 1, got {self.n_trials}")
        if len(self.objectives) != 2:
            raise ConfigError(
                f"objectives must be two names, quality then cost, got {self.objectives}"
            )
        quality, cost = self.objectives
        if quality not in QUALITY_OBJECTIVES or cost not in COST_OBJECTIVES:
            raise ConfigError(
                f"unknown objectives {quality},{cost}: the first must be one of "
                f"{', '.join(QUALITY_OBJECTIVES)}, the second one of {', '.join(COST_OBJECTIVES)}"
            )
        if self.n_frames < 2:
            raise ConfigError("n_frames must be at least 2 (one to train on, one to evaluate)")
        if not (0 < self.eval_fraction < 1):
            raise ConfigError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        width, height = self.resolution
        if width < 16 or height < 16:
            raise ConfigError(f"resolution must be at least 16x16, got {width}x{height}")
        if not (1 <= self.jpeg_quality <= 100):
            raise ConfigError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.teacher not in (None, "imdn"):
            raise ConfigError(f"unknown teacher {self.teacher!r}: the only teacher is imdn")
        if self.teacher is not None and not self.task.startswith("sr_"):
            raise ConfigError(f"a teacher needs a super-resolution task; {self.task} has "
                              "no pretrained prototype: drop --teacher")
        if self.teacher_weight < 0:
            raise ConfigError(f"teacher_weight must be at least 0, got {self.teacher_weight}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"unknown device {self.device!r}: use auto, cpu or cuda")
        if self.noise_sigma <= 0:
            raise ConfigError(f"noise_sigma must be positive, got {self.noise_sigma}")

    @property
    def rung_steps(self) -> tuple[int, ...]:
        """Steps of each rung; one rung of `budget.steps` in single-fidelity mode."""
        return self.rungs.steps if self.rungs is not None else (self.budget.steps,)

    @property
    def spec(self) -> SearchSpec:
        """What is searched (the study fingerprint); the rest of the config says how much
        (n_trials), how (strategy, device, baselines shown) and where (`place`)."""
        return SearchSpec(**{f.name: getattr(self, f.name) for f in fields(SearchSpec)})

    @property
    def place(self) -> RunPlace:
        return RunPlace(**{f.name: getattr(self, f.name) for f in fields(RunPlace)})

    @property
    def planned_evaluations(self) -> list[int]:
        """Evaluations planned at each rung (the unit of a search's progress): the seeds
        nearest to the handcrafted baselines are anchors that reach the top rung."""
        if self.rungs is None:
            return [self.n_trials]
        return self.rungs.planned(self.n_trials, ANCHOR_SEEDS)

    @property
    def top_steps(self) -> int:
        """The final budget: verdicts and baselines are read there."""
        return self.rung_steps[-1]

    def with_changes(self, **changes: Any) -> SearchConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        data = dict(data)
        data["budget"] = TrainBudget(**data.get("budget", {}))
        data["constraints"] = Constraints(**data.get("constraints", {}))
        # A stored config without `rungs` predates them: it was a single-fidelity search.
        rungs = data.get("rungs")
        data["rungs"] = Rungs(**rungs) if rungs is not None else None
        if "objectives" in data:
            data["objectives"] = tuple(data["objectives"])
        if "resolution" in data:
            data["resolution"] = tuple(data["resolution"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)


_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_count(text: str) -> int:
    """'5G' -> 5_000_000_000, '50K' -> 50_000, '1.5M' -> 1_500_000 (decimal suffixes)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)\s*", str(text))
    if not match:
        raise ConfigError(f"cannot read {text!r} as a count: write e.g. 5G, 50K, 1.5M or 2000")
    value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if value <= 0 or not math.isfinite(value):
        raise ConfigError(f"{text!r} must be a positive count")
    return int(round(value))


def format_count(value: float) -> str:
    """2_600_000_000 -> '2.60G' for messages and tables."""
    for suffix, unit in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= unit:
            return f"{value / unit:.2f}{suffix}"
    return f"{value:.0f}"
