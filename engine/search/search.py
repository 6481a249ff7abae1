"""run_search(config, sink): one multi-objective architecture search on one clip.

Optuna's study is the source of truth: each trial stores only its genome params plus a result
record in user attributes, so a report (or a web page) can be rebuilt from the study alone,
and several processes can share one study through an RDB storage (Optuna's own distributed
pattern). Only trained (or failed) trials count toward `n_trials`; genomes that break a
constraint are told to Optuna as infeasible without training, and duplicates reuse the
earlier result.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled

from engine.config import Constraints, SearchConfig
from engine.data.dataset import FramePair, make_pairs, split_frames
from engine.data.enhancement import EnhancementTask, make_task
from engine.data.frame_cache import CachedFrames, FrameCache, default_cache_root
from engine.events import (
    BaselineFinished,
    NullSink,
    ProgressSink,
    SearchFinished,
    SearchStarted,
    TrialFinished,
)
from engine.nets.search_space import BASELINE_SEED_NAMES, baseline_seed_genomes
from engine.search.baseline_jobs import (
    baselines_of,
    missing_baselines,
    pending_baselines,
    run_baseline_job,
)
from engine.search.evaluation import Evaluator, SearchCancelled
from engine.search.report import (
    build_report,
    candidate_records,
    front_of,
    trial_record,
    verdict_pool,
    write_report,
)
from engine.search.scheduler import (
    RungState,
    candidate_of,
    is_surplus,
    next_job,
    read_state,
    rung_of,
)
from engine.search.space_bounds import SpaceBounds, space_bounds
from engine.search.strategies import make_sampler
from engine.search.study import open_study
from engine.train.baselines import non_learned_baseline
from engine.train.device import resolve_device
from engine.train.prototype import prototype_outputs

TrialState = optuna.trial.TrialState
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# The worker loop is ask/tell and runs Optuna's heartbeat thread itself (see _work).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


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
    device: str = "cpu"
    teacher: list[np.ndarray] | None = None  # the teacher's outputs on the training frames


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
    device = resolve_device(config.device)
    teacher = None
    if config.teacher:  # once per training frame, cached on disk: never once per step
        keys = [f"{frames.key[:24]}-{config.task}-frame{frames.indices[i]}" for i in train_pos]
        teacher = prototype_outputs(task.scale, [pairs[i].degraded for i in train_pos],
                                    (cache_root or default_cache_root()) / "prototype", keys,
                                    device=device, threads=config.budget.threads)
    return SearchData(
        config, task, frames,
        [frames.indices[i] for i in train_pos], [frames.indices[i] for i in eval_pos],
        [pairs[i] for i in train_pos], [pairs[i] for i in eval_pos], bounds,
        device=device, teacher=teacher,
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


def counted_trials(study: optuna.Study) -> int:
    """First-rung candidates that finished a training budget: trained, or failed by a
    diverging loss. Not rejected or duplicate genomes, not promotions, and not a trial whose
    worker died (Optuna fails it as stale, and its genome is proposed again)."""
    return counted_of(study.get_trials(deepcopy=False))


def counted_of(trials: list[optuna.trial.FrozenTrial]) -> int:
    """counted_trials over trials already read (one study read per evaluation is enough)."""
    done = (TrialState.COMPLETE, TrialState.FAIL)
    return sum(1 for t in trials
               if t.state in done and t.user_attrs.get("counted") and rung_of(t) == 0)


def reference_baselines(study: optuna.Study, data: SearchData, sink: ProgressSink) -> None:
    """The no-learning reference (bicubic / identity), once per study: it is the floor every
    result must beat, and the value a rejected genome is told."""
    if study.user_attrs.get("baselines") is None:
        reference = non_learned_baseline(data.task, data.eval_pairs)
        study.set_user_attr("baselines", [reference])
        sink.emit(BaselineFinished(baseline=reference))


def seed_study(study: optuna.Study, config: SearchConfig, scale: int) -> None:
    """Enqueue the genomes nearest to each handcrafted baseline, once per study, so the
    first generation holds them; marked `anchor`, they are promoted to the top rung (engine.
    search.promotion), so a search never ends below the nets it is compared with."""
    if study.user_attrs.get("seeded") or config.resume and study.get_trials(deepcopy=False):
        return
    study.set_user_attr("seeded", True)
    seeds = zip(BASELINE_SEED_NAMES, baseline_seed_genomes(scale), strict=True)
    for name, genome in list(seeds)[: config.n_trials]:
        study.enqueue_trial(genome.to_params(), user_attrs={"anchor": name},
                            skip_if_exists=True)


def start_search(
    config: SearchConfig, sink: ProgressSink | None = None, cache_root: Path | None = None,
    worker: int = 0,
) -> tuple[SearchData, optuna.Study, list[dict]]:
    """Everything before the first trial: load and degrade frames, open (or create) the
    study, score the no-learning reference and seed the study. A launcher calls this before
    fanning out workers. The learned baselines are jobs the workers take (see run_search)."""
    sink = sink or NullSink()
    data = prepare(config, cache_root)
    study = open_study(config, data.frames.key, worker)
    seed_study(study, config, data.task.scale)  # before the plan: the seeds are its anchors
    state = read_state(study, config)
    sink.emit(SearchStarted(
        study_name=study.study_name, n_trials=config.n_trials,
        already_finished=counted_trials(study), train_frames=data.train_frames,
        eval_frames=data.eval_frames, macs_range=(data.bounds.min_macs, data.bounds.max_macs),
        rung_steps=list(config.rung_steps), evaluations_planned=state.evaluations()[1],
        device=data.device,
    ))
    reference_baselines(study, data, sink)
    return data, study, baselines_of(study, data)


def run_search(
    config: SearchConfig, sink: ProgressSink | None = None, cache_root: Path | None = None,
    should_stop: Callable[[], bool] | None = None, worker: int = 0,
) -> dict:
    """Run (or resume) the search and return its report; writes it when `config.out_dir`.

    A worker loop over the study's rung state (engine.search.scheduler): promote what can
    move up, else start a new candidate, else train a pending baseline, else stop. Several
    processes may run this on one RDB storage with `resume=True`: they share the study and
    the work. `should_stop` is asked every few training steps (cancellation: the current
    evaluation is dropped, uncounted, and a resume redoes it). `worker` numbers the
    processes of a shared study (0, 1, ...): each samples with its own seed.
    """
    sink = sink or NullSink()
    started = time.time()
    data, study, _ = start_search(config, sink, cache_root, worker)
    cache_root = cache_root or default_cache_root()
    with _state_dir(config) as state_dir:
        evaluator = Evaluator(data, study.user_attrs["baselines"][0]["psnr"], sink, state_dir,
                              should_stop, worker)
        token = f"{os.getpid()}-{worker}-{time.time()}"
        try:
            _work(study, data, evaluator, sink, should_stop, token, cache_root)
        except SearchCancelled:
            pass
    state = read_state(study, config)
    # Complete: nothing more to start, run or promote. A cancel in the first trial leaves the
    # rungs settled (nothing under way) with candidates still wanted: not complete.
    complete = (state.settled() and not state.wants_new()
                and not missing_baselines(study, config))
    report = build_report(study, data, baselines_of(study, data),
                          wall_seconds=time.time() - started, complete=complete)
    report_path = ""
    if config.out_dir:
        report_path = str(write_report(report, Path(config.out_dir)))
    sink.emit(SearchFinished(report_path=report_path, hypervolume=report["hypervolume"],
                             n_finished=counted_trials(study), complete=complete))
    return report


def _work(study: optuna.Study, data: SearchData, evaluator: Evaluator, sink: ProgressSink,
          should_stop: Callable[[], bool] | None, token: str, cache_root: Path) -> None:
    config = data.config
    heartbeat = is_heartbeat_enabled(study._storage)
    while not (should_stop is not None and should_stop()):
        if heartbeat:  # a killed worker's evaluation becomes promotable (or new) again
            optuna.storages.fail_stale_trials(study)
        state = read_state(study, config)
        job = next_job(state, pending_baselines(study, config, token))
        if job is None:
            return
        if job.kind == "baseline":
            run_baseline_job(study, data, job.baseline, sink, token, cache_root, should_stop)
            continue
        if job.kind == "promote":
            params = _params_of(study, job.candidate)
            study.enqueue_trial(params, user_attrs={"candidate": job.candidate,
                                                    "rung": job.rung})
        trial = study.ask()  # a queued promotion or seed first, else the sampler's proposal
        if "candidate" not in trial.user_attrs and is_surplus(
                study.get_trials(deepcopy=False), trial.number, config.n_trials):
            trial.set_user_attr("outcome", "surplus")  # another worker took the last slot
            study.tell(trial, state=TrialState.FAIL)
            continue
        try:
            with get_heartbeat_thread(trial._trial_id, study._storage):
                evaluator(study, trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            # On SQLite two workers can pop the same queued trial; the same genome, seed and
            # state give the same result, so the first to finish it stands.
            continue
        frozen = study._storage.get_trial(trial._trial_id)
        _announce(study, frozen, data, sink)


def _params_of(study: optuna.Study, candidate: int) -> dict:
    trial = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
        study._study_id, candidate))
    return dict(trial.params)


def _announce(study: optuna.Study, frozen: optuna.trial.FrozenTrial, data: SearchData,
              sink: ProgressSink) -> None:
    config = data.config
    candidate = candidate_of(frozen)
    trials = study.get_trials(deepcopy=False)
    records = candidate_records(trials)
    record = next((r for r in records if r["number"] == candidate), trial_record(frozen))
    reference = study.user_attrs["baselines"][0]["psnr"]
    top = len(config.rung_steps) - 1
    front = front_of(verdict_pool(records, top, reference), config.objectives[1])
    state = RungState(config, trials)
    done, planned = state.evaluations()
    sink.emit(TrialFinished(
        trial=record, finished=counted_of(trials), n_trials=config.n_trials,
        on_front=any(t["number"] == candidate for t in front),
        counted=bool(frozen.user_attrs.get("counted")) and rung_of(frozen) == 0,
        rung=rung_of(frozen), evaluations_done=done, evaluations_planned=planned,
        front=[t["number"] for t in front],
    ))


@contextmanager
def _state_dir(config: SearchConfig) -> Iterator[Path]:
    """Saved training states live beside the checkpoints, so any worker sharing the output
    folder continues any candidate; without an output folder, for this run only."""
    if config.out_dir:
        path = Path(config.out_dir) / "states"
        path.mkdir(parents=True, exist_ok=True)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="pixel-states-") as tmp:
            yield Path(tmp)
