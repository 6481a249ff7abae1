"""run_search(config, sink): one multi-objective architecture search on one clip.

Optuna's study is the source of truth: each trial stores only its genome params plus a result
record in user attributes, so a report (or a web page) can be rebuilt from the study alone,
and several processes can share one study through an RDB storage (Optuna's own distributed
pattern). Only trained (or failed) trials count toward `n_trials`; genomes that break a
constraint are told to Optuna as infeasible without training, and duplicates reuse the
earlier result.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from engine.config import Constraints, SearchConfig
from engine.data.dataset import FramePair, PatchSampler, make_pairs, split_frames
from engine.data.enhancement import EnhancementTask, make_task
from engine.data.frame_cache import CachedFrames, FrameCache, default_cache_root
from engine.events import (
    BaselineFinished,
    NullSink,
    ProgressSink,
    SearchFinished,
    SearchStarted,
    TrainingProgress,
    TrialFinished,
    TrialStarted,
)
from engine.nets.builder import build_network
from engine.nets.search_space import sample_genome
from engine.search.report import build_report, front_of, trial_record, write_report
from engine.search.space_bounds import SpaceBounds, space_bounds
from engine.search.strategies import make_sampler
from engine.search.study import open_study
from engine.train.baselines import LEARNED_BASELINES, learned_baseline, non_learned_baseline
from engine.train.checkpoint import checkpoint_path, save_checkpoint
from engine.train.cost import count_macs, count_params, measure_latency
from engine.train.trainer import TrainingDiverged, evaluate, train

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class SearchError(RuntimeError):
    """A search that cannot start; the message says what to do."""


@dataclass
class SearchData:
    """Everything the trials of one search share, prepared once."""

    config: SearchConfig
    task: EnhancementTask
    frames: CachedFrames
    train_frames: list[int]  # clip frame indices
    eval_frames: list[int]
    train_pairs: list[FramePair]
    eval_pairs: list[FramePair]
    bounds: SpaceBounds


def prepare(config: SearchConfig, cache_root: Path | None = None) -> SearchData:
    """Validate names, load (or reuse) the decoded frames, degrade them, check constraints."""
    task = make_task(config.task, config.noise_sigma, config.jpeg_quality)
    make_sampler(config.strategy, config.seed, config.n_trials)  # unknown name: fail now
    frames = FrameCache(cache_root or default_cache_root()).load(
        config.clip, config.n_frames, config.skip_near_duplicates
    )
    train_pos, eval_pos = split_frames(frames.indices, config.eval_fraction)
    pairs = make_pairs(task, frames.frames, config.seed)
    smallest_side = min(pairs[0].degraded.shape[:2])
    if smallest_side < config.budget.patch_size:
        raise SearchError(
            f"the clip's degraded frames are {smallest_side}px on their short side, smaller "
            f"than the {config.budget.patch_size}px training patches: use a larger clip or "
            "lower the patch size"
        )
    bounds = space_bounds(task.scale, config.resolution)
    check_constraints(config.constraints, bounds, config.resolution)
    return SearchData(
        config, task, frames,
        [frames.indices[i] for i in train_pos], [frames.indices[i] for i in eval_pos],
        [pairs[i] for i in train_pos], [pairs[i] for i in eval_pos], bounds,
    )


def check_constraints(
    constraints: Constraints, bounds: SpaceBounds, resolution: tuple[int, int]
) -> None:
    where = f"at {resolution[0]}x{resolution[1]} output"
    if constraints.max_macs is not None and constraints.max_macs < bounds.min_macs:
        raise SearchError(
            f"no architecture in the space meets max MACs {constraints.max_macs:,}: the smallest "
            f"the space allows {where} is {bounds.min_macs:,} MACs; raise --max-macs"
        )
    if constraints.max_params is not None and constraints.max_params < bounds.min_params:
        raise SearchError(
            f"no architecture in the space meets max params {constraints.max_params:,}: the "
            f"smallest has {bounds.min_params:,} parameters; raise --max-params"
        )
    if (constraints.max_latency_ms is not None
            and constraints.max_latency_ms < bounds.min_latency_ms):
        raise SearchError(
            f"no architecture in the space meets max latency {constraints.max_latency_ms} ms: "
            f"the fastest measured {bounds.min_latency_ms:.1f} ms per frame {where} on this "
            "machine; raise --max-latency-ms"
        )


def _violations(constraints: Constraints, macs: int, params: int,
                latency_ms: float | None) -> dict[str, float]:
    """Relative excess per constraint (> 0 breaks it), as Optuna's set_constraint wants."""
    def excess(value: float | None, limit: float | None) -> float:
        return -1.0 if limit is None or value is None else value / limit - 1.0

    return {
        "macs": excess(macs, constraints.max_macs),
        "params": excess(params, constraints.max_params),
        "latency": excess(latency_ms, constraints.max_latency_ms),
    }


class Objective:
    """Samples a genome, rejects it cheaply if it breaks a constraint, reuses a duplicate's
    result, else trains and evaluates it. Returns (quality, cost) for Optuna."""

    def __init__(self, data: SearchData, baseline_psnr: float, sink: ProgressSink) -> None:
        self.data, self.sink = data, sink
        self.config = data.config
        self.baseline_psnr = baseline_psnr

    def values(self, result: dict) -> tuple[float, float]:
        quality, cost = self.config.objectives
        cost_key = "latency_ms" if cost == "latency" else cost
        return float(result[quality]), float(result[cost_key])

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        config, task = self.config, self.data.task
        genome = sample_genome(trial)
        trial.set_user_attr("genome", genome.to_dict())
        trial.set_user_attr("arch", genome.key())
        net = build_network(genome, task.scale)
        inference = net.deploy()
        macs = count_macs(inference, config.resolution, task.scale)
        params = count_params(inference)
        latency = None
        pre = _violations(config.constraints, macs, params, None)
        if max(pre.values()) <= 0:  # measure only what could still be accepted
            latency = measure_latency(inference, config.resolution, task.scale)
        cost = {"macs": macs, "params": params,
                "latency_ms": latency.median_ms if latency else None,
                "latency_min_ms": latency.min_ms if latency else None}
        violations = _violations(config.constraints, macs, params, cost["latency_ms"])
        for key, value in violations.items():
            trial.set_constraint(key, value)
        if max(violations.values()) > 0:
            broken = [k for k, v in violations.items() if v > 0]
            trial.set_user_attr("outcome", "rejected")
            trial.set_user_attr("reason", "breaks the " + ", ".join(broken) + " constraint")
            result = {"psnr": self.baseline_psnr, "ssim": 0.0, **cost}
            if result["latency_ms"] is None:
                result["latency_ms"] = math.inf
            trial.set_user_attr("result", {**cost})
            return self.values(result)

        earlier = self._trained_twin(trial.study, genome.key())
        if earlier is not None:
            trial.set_user_attr("outcome", "duplicate")
            trial.set_user_attr("duplicate_of", earlier.number)
            trial.set_user_attr("result", earlier.user_attrs["result"])
            return self.values(earlier.user_attrs["result"])

        self.sink.emit(TrialStarted(number=trial.number, genome=genome.to_dict(), macs=macs))
        sampler = PatchSampler(task, self.data.train_pairs, config.budget.patch_size,
                               config.budget.batch_size, config.seed)
        steps = config.budget.steps

        def progress(step: int, loss: float) -> None:
            self.sink.emit(TrainingProgress(number=trial.number, step=step, steps=steps,
                                            loss=loss))

        try:
            stats = train(net, sampler, config.budget, config.seed, progress,
                          progress_every=max(1, steps // 10))
        except TrainingDiverged as error:
            trial.set_user_attr("counted", True)
            trial.set_user_attr("outcome", "failed")
            trial.set_user_attr("reason", str(error))
            raise
        quality = evaluate(net, self.data.eval_pairs, task, config.budget.threads)
        if config.out_dir:  # previews, full training and export start from these weights
            save_checkpoint(checkpoint_path(config.out_dir, f"trial-{trial.number}"), net,
                            task.scale, {"trial": trial.number, "steps": stats.steps})
        result = {
            "psnr": quality.psnr, "ssim": quality.ssim, **cost,
            "steps": stats.steps, "train_seconds": stats.train_seconds,
            "final_loss": stats.final_loss, "per_frame_psnr": quality.per_frame_psnr,
        }
        trial.set_user_attr("result", result)
        trial.set_user_attr("outcome", "trained")
        trial.set_user_attr("counted", True)  # set last: a killed worker's trial never counts
        return self.values(result)

    @staticmethod
    def _trained_twin(study: optuna.Study, key: str) -> optuna.trial.FrozenTrial | None:
        for past in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if past.user_attrs.get("arch") == key and past.user_attrs.get("outcome") == "trained":
                return past
        return None


def counted_trials(study: optuna.Study) -> int:
    """Trials that finished a training budget: trained, or failed by a diverging loss. Not
    rejected or duplicate genomes, and not a trial whose worker died (Optuna fails it as
    stale, and its genome is proposed again)."""
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False, states=done)
               if t.user_attrs.get("counted"))


def ensure_baselines(study: optuna.Study, data: SearchData, sink: ProgressSink) -> list[dict]:
    """Train the baselines once per study (a resumed or shared study reuses them)."""
    baselines = study.user_attrs.get("baselines")
    if baselines is None:
        config = data.config
        baselines = [non_learned_baseline(data.task, data.eval_pairs)]
        sink.emit(BaselineFinished(baseline=baselines[0]))
        for name in LEARNED_BASELINES if config.learned_baselines else ():
            save_to = (checkpoint_path(config.out_dir, f"baseline-{name}")
                       if config.out_dir else None)
            baseline = learned_baseline(name, data.task, data.train_pairs, data.eval_pairs,
                                        config.budget, config.resolution, config.seed,
                                        save_to=save_to)
            baselines.append(baseline)
            sink.emit(BaselineFinished(baseline=baseline))
        study.set_user_attr("baselines", baselines)
    return baselines


def start_search(
    config: SearchConfig, sink: ProgressSink | None = None, cache_root: Path | None = None,
    worker: int = 0,
) -> tuple[SearchData, optuna.Study, list[dict]]:
    """Everything before the first trial: load and degrade frames, open (or create) the
    study, train the baselines once. A launcher calls this before fanning out workers, so
    workers that share the study find the baselines ready."""
    sink = sink or NullSink()
    data = prepare(config, cache_root)
    study = open_study(config, data.frames.key, worker)
    sink.emit(SearchStarted(
        study_name=study.study_name, n_trials=config.n_trials,
        already_finished=counted_trials(study), train_frames=data.train_frames,
        eval_frames=data.eval_frames, macs_range=(data.bounds.min_macs, data.bounds.max_macs),
    ))
    return data, study, ensure_baselines(study, data, sink)


def run_search(
    config: SearchConfig, sink: ProgressSink | None = None, cache_root: Path | None = None,
    should_stop: Callable[[], bool] | None = None, worker: int = 0,
) -> dict:
    """Run (or resume) the search and return its report; writes it when `config.out_dir`.

    Several processes may run this on one RDB storage with `resume=True`: they share the
    study and stop together once `n_trials` trials are counted. `should_stop` is asked after
    every trial (cancellation: the search stops within one trial). `worker` numbers the
    processes of a shared study (0, 1, ...): each samples with its own seed.
    """
    sink = sink or NullSink()
    started = time.time()
    data, study, baselines = start_search(config, sink, cache_root, worker)
    already = counted_trials(study)
    objective = Objective(data, baselines[0]["psnr"], sink)

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        finished = counted_trials(study)
        record = trial_record(frozen)
        front = front_of([trial_record(t) for t in study.get_trials(deepcopy=False)],
                         config.objectives[1])
        sink.emit(TrialFinished(trial=record, finished=finished, n_trials=config.n_trials,
                                on_front=any(t["number"] == frozen.number for t in front),
                                counted=bool(frozen.user_attrs.get("counted"))))
        if finished >= config.n_trials or (should_stop is not None and should_stop()):
            study.stop()

    remaining = config.n_trials - already
    if remaining > 0 and not (should_stop is not None and should_stop()):
        # Rejected and duplicate genomes are cheap but must not loop forever.
        study.optimize(objective, n_trials=20 * remaining + 50, callbacks=[after_trial],
                       catch=(TrainingDiverged,), gc_after_trial=False)
    report = build_report(study, data, baselines, wall_seconds=time.time() - started)
    report_path = ""
    if config.out_dir:
        report_path = str(write_report(report, Path(config.out_dir)))
    sink.emit(SearchFinished(report_path=report_path, hypervolume=report["hypervolume"],
                             n_finished=counted_trials(study)))
    return report
