"""One evaluation of a search: a candidate trained to one rung, scored and told to the study.

A first-rung trial samples (or is seeded with) a genome, is rejected cheaply if it breaks a
constraint, reuses an identical genome's result, or trains `rung_steps[0]` steps. A promotion
trial carries the candidate's params and continues the candidate's saved constant-rate state
to the next rung (engine.train.trainer: the result equals one run to that budget), then
overwrites the candidate's checkpoint with the longer-trained weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import torch

from engine.config import Constraints
from engine.data.dataset import PatchSampler
from engine.events import ProgressSink, TrainingProgress, TrialStarted
from engine.nets.builder import build_network
from engine.nets.search_space import sample_genome
from engine.search.scheduler import candidate_of, holds_slot, is_trained, rung_of
from engine.train.checkpoint import checkpoint_path, partial_state_path, save_checkpoint, state_path
from engine.train.cost import count_macs, count_params, measure_latency
from engine.train.trainer import TrainingDiverged, evaluate, train

if TYPE_CHECKING:
    from engine.search.search import SearchData

TrialState = optuna.trial.TrialState
CHECK_EVERY = 25  # steps between cancel checks (a few seconds at most on a CPU)
# Steps between saves of an evaluation's partial state (weights, optimizer, data stream):
# a killed or cancelled evaluation loses at most this many. A save of these small nets
# takes milliseconds, against seconds for the steps.
PARTIAL_EVERY = 100


class SearchCancelled(RuntimeError):
    """The search was asked to stop mid-evaluation; that evaluation is not counted."""


def violations(constraints: Constraints, macs: int, params: int,
               latency_ms: float | None) -> dict[str, float]:
    """Relative excess per constraint (> 0 breaks it), as Optuna's set_constraint wants."""
    def excess(value: float | None, limit: float | None) -> float:
        return -1.0 if limit is None or value is None else value / limit - 1.0

    return {
        "macs": excess(macs, constraints.max_macs),
        "params": excess(params, constraints.max_params),
        "latency": excess(latency_ms, constraints.max_latency_ms),
    }


class Evaluator:
    """Runs one trial popped by `study.ask()` and tells the study its outcome."""

    def __init__(self, data: SearchData, reference_psnr: float, sink: ProgressSink,
                 state_dir: Path, should_stop: Callable[[], bool] | None = None,
                 worker: int = 0) -> None:
        self.data, self.sink, self.state_dir = data, sink, state_dir
        self.worker = worker
        self.config = data.config
        self.reference_psnr = reference_psnr
        self.should_stop = should_stop

    def values(self, result: dict) -> tuple[float, float]:
        quality, cost = self.config.objectives
        cost_key = "latency_ms" if cost == "latency" else cost
        return float(result[quality]), float(result[cost_key])

    def __call__(self, study: optuna.Study, trial: optuna.Trial) -> None:
        genome = sample_genome(trial)  # an enqueued trial gets its fixed params back
        trial.set_user_attr("genome", genome.to_dict())
        trial.set_user_attr("arch", genome.key())
        trial.set_user_attr("worker", self.worker)
        if "candidate" in trial.user_attrs:  # a promotion
            self._promote(study, trial, genome)
        else:
            trial.set_user_attr("rung", 0)
            trial.set_user_attr("candidate", trial.number)
            self._first_rung(study, trial, genome)

    def _first_rung(self, study: optuna.Study, trial: optuna.Trial, genome) -> None:
        config, task = self.config, self.data.task
        net = build_network(genome, task.scale)
        inference = net.deploy()
        macs = count_macs(inference, config.resolution, task.scale)
        params = count_params(inference)
        latency = None
        if (self._latency_now(0)
                and max(violations(config.constraints, macs, params, None).values()) <= 0):
            latency = measure_latency(inference, config.resolution, task.scale)
        cost = {"macs": macs, "params": params,
                "latency_ms": latency.median_ms if latency else None,
                "latency_min_ms": latency.min_ms if latency else None}
        broken = violations(config.constraints, macs, params, cost["latency_ms"])
        for key, value in broken.items():
            trial.set_constraint(key, value)
        if max(broken.values()) > 0:
            names = [k for k, v in broken.items() if v > 0]
            trial.set_user_attr("outcome", "rejected")
            trial.set_user_attr("reason", "breaks the " + ", ".join(names) + " constraint")
            trial.set_user_attr("result", {**cost})
            result = {"psnr": self.reference_psnr, "ssim": 0.0, **cost}
            if result["latency_ms"] is None:
                result["latency_ms"] = math.inf
            study.tell(trial, self.values(result))
            return
        twin = self._trained_twin(study, genome.key())
        if twin is not None:
            trial.set_user_attr("outcome", "duplicate")
            trial.set_user_attr("duplicate_of", twin.number)
            trial.set_user_attr("result", twin.user_attrs["result"])
            study.tell(trial, self.values(twin.user_attrs["result"]))
            return
        self._train_and_tell(study, trial, genome, trial.number, 0, cost)

    def _latency_now(self, rung: int) -> bool:
        """Latency is measured where it is needed: on the first rung when it is an objective
        or a constraint, else once a candidate reaches the top rung (a measurement takes
        seconds for a large net at 720p: more than a whole first-rung evaluation)."""
        config = self.config
        return (rung == len(config.rung_steps) - 1 or config.objectives[1] == "latency"
                or config.constraints.max_latency_ms is not None)

    def _promote(self, study: optuna.Study, trial: optuna.Trial, genome) -> None:
        candidate, rung = int(trial.user_attrs["candidate"]), int(trial.user_attrs["rung"])
        trials = study.get_trials(deepcopy=False)
        if any(t.number < trial.number and candidate_of(t) == candidate and rung_of(t) == rung
               and holds_slot(t) for t in trials):  # two workers queued the same promotion
            trial.set_user_attr("outcome", "duplicate_promotion")
            study.tell(trial, state=TrialState.FAIL)
            return
        parent = next(t for t in trials if candidate_of(t) == candidate
                      and rung_of(t) == rung - 1 and is_trained(t))
        result = parent.user_attrs["result"]
        cost = {k: result.get(k) for k in ("macs", "params", "latency_ms", "latency_min_ms")}
        self._train_and_tell(study, trial, genome, candidate, rung, cost)

    def _train_and_tell(self, study: optuna.Study, trial: optuna.Trial, genome,
                        candidate: int, rung: int, cost: dict) -> None:
        config, task, data = self.config, self.data.task, self.data
        steps = config.rung_steps[rung]
        self.sink.emit(TrialStarted(number=candidate, genome=genome.to_dict(),
                                    macs=cost["macs"], rung=rung, steps=steps))
        torch.manual_seed(config.seed)  # one genome, one initialisation, in every process
        net = build_network(genome, task.scale).to(data.device)
        sampler = PatchSampler(task, data.train_pairs, config.budget.patch_size,
                               config.budget.batch_size, config.seed, teacher=data.teacher)
        emit_every = max(CHECK_EVERY, steps // 10)

        def progress(step: int, loss: float) -> None:
            if self.should_stop is not None and self.should_stop():
                raise SearchCancelled(f"cancelled at step {step} of {steps}")
            if step % emit_every < CHECK_EVERY or step == steps:
                self.sink.emit(TrainingProgress(number=candidate, step=step, steps=steps,
                                                loss=loss))

        start_from = state_path(self.state_dir, candidate, rung - 1) if rung else None
        try:
            stats = train(net, sampler, config.budget, config.seed, progress,
                          progress_every=CHECK_EVERY, steps=steps, start_from=start_from,
                          stable_state=state_path(self.state_dir, candidate, rung),
                          state_file=partial_state_path(self.state_dir, genome.key(), rung),
                          save_every=PARTIAL_EVERY,
                          teacher_weight=config.teacher_weight if data.teacher else 0.0)
        except TrainingDiverged as error:
            trial.set_user_attr("counted", True)
            trial.set_user_attr("outcome", "failed")
            trial.set_user_attr("reason", str(error))
            study.tell(trial, state=TrialState.FAIL)
            return
        except SearchCancelled as error:  # not counted: a resumed search redoes it
            trial.set_user_attr("outcome", "cancelled")
            trial.set_user_attr("reason", str(error))
            study.tell(trial, state=TrialState.FAIL)
            raise
        quality = evaluate(net, data.eval_pairs, task, config.budget.threads)
        if cost["latency_ms"] is None and self._latency_now(rung):
            latency = measure_latency(build_network(genome, task.scale).deploy(),
                                      config.resolution, task.scale)
            cost = {**cost, "latency_ms": latency.median_ms, "latency_min_ms": latency.min_ms}
        if config.out_dir:  # previews, full training and export start from these weights
            save_checkpoint(checkpoint_path(config.out_dir, f"trial-{candidate}"), net,
                            task.scale, {"trial": candidate, "steps": stats.steps,
                                         "rung": rung})
        result = {
            "psnr": quality.psnr, "ssim": quality.ssim, **cost,
            "steps": stats.steps, "start_step": stats.start_step,
            "train_seconds": stats.train_seconds, "final_loss": stats.final_loss,
            "per_frame_psnr": quality.per_frame_psnr,
        }
        trial.set_user_attr("result", result)
        trial.set_user_attr("outcome", "trained")
        trial.set_user_attr("counted", True)  # set last: a killed worker's trial never counts
        study.tell(trial, self.values(result))

    @staticmethod
    def _trained_twin(study: optuna.Study, key: str) -> optuna.trial.FrozenTrial | None:
        for past in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if (past.user_attrs.get("arch") == key and is_trained(past)
                    and rung_of(past) == 0):
                return past
        return None
