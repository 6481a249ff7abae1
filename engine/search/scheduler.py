"""The rung state of a search, read from its Optuna study, and the next job of a worker.

Every evaluation is an Optuna trial: a candidate's first one (rung 0) is sampled (or enqueued
as a seed); each promotion is a trial enqueued with the same params and the user attributes
`candidate` (the first trial's number) and `rung`. The study is therefore the whole rung state:
a killed worker's trial goes stale and is failed by Optuna's heartbeat, the promotion it was
running becomes promotable again, and any number of workers on one storage read the same
state. A worker never waits for a rung to fill (ASHA): it promotes when it can, else starts a
new candidate, else trains a pending baseline, else stops.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import optuna

from engine.config import SearchConfig
from engine.search.promotion import RungEntry, promotable

TrialState = optuna.trial.TrialState
COST_FIELDS = {"macs": "macs", "params": "params", "latency": "latency_ms"}
_PENDING = (TrialState.WAITING, TrialState.RUNNING)


def rung_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs.get("rung", 0))


def candidate_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs.get("candidate", trial.number))


def is_trained(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and trial.user_attrs.get("outcome") == "trained"


def holds_slot(trial: optuna.trial.FrozenTrial) -> bool:
    """The evaluation is done, under way or queued: a diverged one (failed, counted) holds
    its slot too; a killed worker's (failed, not counted) does not."""
    if trial.state in _PENDING or is_trained(trial):
        return True
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("counted"))


@dataclass(frozen=True)
class Job:
    kind: str  # "waiting" (run a queued promotion), "promote", "new" or "baseline"
    candidate: int | None = None
    rung: int = 0
    baseline: str | None = None


@dataclass
class RungState:
    """A snapshot of the study: evaluations per rung, what can move up, what is left."""

    config: SearchConfig
    trials: list[optuna.trial.FrozenTrial]
    entries: dict[int, list[RungEntry]] = field(default_factory=lambda: defaultdict(list))
    holders: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    pending: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    started: int = 0  # first-rung candidates done or under way (seeds still queued excluded)
    anchors: set[int] = field(default_factory=set)  # seeds that move up every rung
    waiting_promotions: int = 0  # enqueued by a worker that then ran another waiting trial

    def __post_init__(self) -> None:
        quality, cost = self.config.objectives
        cost_field = COST_FIELDS[cost]
        for trial in self.trials:
            rung = rung_of(trial)
            fresh_seed = trial.state == TrialState.WAITING and "candidate" not in trial.user_attrs
            live = trial.user_attrs.get("outcome") not in ("rejected", "duplicate")
            if rung == 0 and not fresh_seed and live and holds_slot(trial):
                self.started += 1
            if rung == 0 and "anchor" in trial.user_attrs and live and (
                    trial.state in _PENDING or is_trained(trial)):
                self.anchors.add(trial.number)
            if trial.state in _PENDING and not fresh_seed:
                self.pending[rung] += 1
            if trial.state == TrialState.WAITING and rung > 0:
                self.waiting_promotions += 1
            if holds_slot(trial):
                self.holders[rung].add(candidate_of(trial))
            if is_trained(trial):
                result = trial.user_attrs["result"]
                self.entries[rung].append(
                    RungEntry(candidate_of(trial), float(result[quality]),
                              float(result[cost_field])))

    @property
    def top(self) -> int:
        return len(self.config.rung_steps) - 1

    def closed(self, rung: int) -> bool:
        """No more results can arrive at `rung`: everything below it is settled."""
        if self.pending[rung]:
            return False
        if rung == 0:
            return self.started >= self.config.n_trials
        return self.closed(rung - 1) and not self.promotable(rung - 1)

    def promotable(self, rung: int) -> list[int]:
        if rung >= self.top:
            return []
        promoted = self.holders[rung + 1]
        eta = self.config.rungs.eta if self.config.rungs else 2
        return promotable(self.entries[rung], promoted, eta, self.closed(rung),
                          frozenset(self.anchors))

    def next_promotion(self) -> Job | None:
        for rung in range(self.top - 1, -1, -1):  # the highest rung first (ASHA)
            ready = self.promotable(rung)
            if ready:
                return Job("promote", candidate=ready[0], rung=rung + 1)
        return None

    def wants_new(self) -> bool:
        return self.started < self.config.n_trials

    def settled(self) -> bool:
        """No evaluation is queued or running and nothing more can move up."""
        return not any(self.pending.values()) and self.next_promotion() is None

    def evaluations(self) -> tuple[int, int]:
        """(evaluations done, evaluations planned) over all rungs: the unit of progress."""
        done = sum(len(v) for v in self.entries.values())
        # The anchors this study really has (a seed a constraint rejects is not one).
        planned = (self.config.rungs.planned(self.config.n_trials, len(self.anchors))
                   if self.config.rungs else [self.config.n_trials])
        return done, max(done, sum(planned))


def is_surplus(trials: list[optuna.trial.FrozenTrial], trial_number: int,
               n_trials: int) -> bool:
    """A first-rung trial one worker asked for while another took the last free candidate
    slot (both read `started < n_trials` before either asked): the lower trial numbers keep
    the slots, so every worker reaches the same verdict and a search never starts more than
    `n_trials` candidates."""
    earlier = 0
    for trial in trials:
        if trial.number >= trial_number or rung_of(trial) != 0:
            continue
        if trial.user_attrs.get("outcome") in ("rejected", "duplicate", "surplus"):
            continue
        if trial.state in _PENDING or holds_slot(trial):
            earlier += 1
    return earlier >= n_trials


def read_state(study: optuna.Study, config: SearchConfig) -> RungState:
    return RungState(config, study.get_trials(deepcopy=False))


def next_job(state: RungState, baselines_pending: list[str]) -> Job | None:
    """Promotions first (highest rung first), then new candidates; the learned baselines are
    taken once half the candidates have started (their verdict needs the top rung anyway),
    or when nothing else is left."""
    if state.waiting_promotions:
        return Job("waiting")
    job = state.next_promotion()
    if job is not None:
        return job
    if baselines_pending and state.started >= max(1, state.config.n_trials // 2):
        return Job("baseline", baseline=baselines_pending[0])
    if state.wants_new():
        return Job("new")
    if baselines_pending:
        return Job("baseline", baseline=baselines_pending[0])
    return None
