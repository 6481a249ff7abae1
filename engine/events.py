"""Typed progress events and the ProgressSink protocol.

The engine never prints: it emits events. The CLI renders them as a progress bar; the web app
persists them and broadcasts them to a channel group. Every event has a `kind` and `to_dict()`
so it crosses process boundaries as plain JSON.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Event:
    kind: str = field(init=False, default="event")
    at: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchStarted(Event):
    kind: str = field(init=False, default="search_started")
    study_name: str
    n_trials: int
    already_finished: int
    train_frames: list[int]
    eval_frames: list[int]
    macs_range: tuple[int, int]
    rung_steps: list[int] = field(default_factory=list)  # steps of each rung, lowest first
    evaluations_planned: int = 0  # evaluations over all rungs (the unit of progress)
    device: str = "cpu"


@dataclass(frozen=True)
class BaselineFinished(Event):
    kind: str = field(init=False, default="baseline_finished")
    baseline: dict[str, Any]


@dataclass(frozen=True)
class BaselineProgress(Event):
    """A learned baseline training to the top rung (any worker may take it)."""

    kind: str = field(init=False, default="baseline_progress")
    name: str
    step: int
    steps: int


@dataclass(frozen=True)
class TrialStarted(Event):
    """A candidate starts an evaluation: its first rung, or a promotion to `rung`."""

    kind: str = field(init=False, default="trial_started")
    number: int  # the candidate (its first trial's number), whatever the rung
    genome: dict[str, Any]
    macs: int
    rung: int = 0
    steps: int = 0


@dataclass(frozen=True)
class TrainingProgress(Event):
    """Per-step training progress (multi-objective Optuna studies cannot report() values)."""

    kind: str = field(init=False, default="training_progress")
    number: int
    step: int
    steps: int
    loss: float


@dataclass(frozen=True)
class TrialFinished(Event):
    kind: str = field(init=False, default="trial_finished")
    trial: dict[str, Any]
    finished: int  # counted first-rung candidates (trained or failed) so far
    n_trials: int
    on_front: bool  # on the top-rung front (verdicts are read there only)
    counted: bool = True  # a first-rung candidate that spent a budget (not a promotion)
    rung: int = 0  # the rung this evaluation reached
    evaluations_done: int = 0
    evaluations_planned: int = 0
    front: list[int] = field(default_factory=list)  # candidates on the top-rung front now


@dataclass(frozen=True)
class SearchFinished(Event):
    kind: str = field(init=False, default="search_finished")
    report_path: str
    hypervolume: float
    n_finished: int
    complete: bool = True  # False: work is left (cancelled, or other workers still busy)


@runtime_checkable
class ProgressSink(Protocol):
    def emit(self, event: Event) -> None: ...


class NullSink:
    def emit(self, event: Event) -> None:
        pass


class ListSink:
    """Collects events in memory (tests, and callers that post-process events)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]
