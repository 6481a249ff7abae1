"""One facade over a search's life cycle, for callers that drive searches (the web app's
Celery tasks): prepare, run as a worker, status, settle, export. Callers never open the
Optuna study or read its trials themselves: the rung logic lives behind these calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from engine.config import SearchConfig
from engine.events import ProgressSink
from engine.search.report import candidate_records
from engine.search.scheduler import read_state
from engine.search.search import counted_trials, run_search, start_search
from engine.search.study import make_storage

TrialState = optuna.trial.TrialState


@dataclass(frozen=True)
class SearchStatus:
    counted: int  # first-rung candidates that spent a budget
    evaluations_done: int  # over all rungs
    evaluations_planned: int
    running: int  # evaluations under way in live workers (stale ones are failed first)
    settled: bool  # nothing queued, running or promotable: the search's work is done


def prepare(config: SearchConfig, sink: ProgressSink | None = None,
            cache_root: Path | None = None) -> str:
    """Frames, study, reference and seeds, before workers fan out; returns the study name."""
    _, study, _ = start_search(config, sink, cache_root)
    return study.study_name


def run_worker(config: SearchConfig, sink: ProgressSink | None = None,
               cache_root: Path | None = None, should_stop: Callable[[], bool] | None = None,
               worker: int = 0) -> dict:
    """Take jobs of the shared study until none is left (or `should_stop`); the report."""
    return run_search(config, sink, cache_root, should_stop=should_stop, worker=worker)


def _load(config: SearchConfig) -> optuna.Study:
    if config.storage is None or config.study_name is None:
        raise ValueError("a stored search needs config.storage and config.study_name")
    study = optuna.load_study(study_name=config.study_name, storage=make_storage(config.storage))
    optuna.storages.fail_stale_trials(study)  # a killed worker's evaluation is not running
    return study


def status(config: SearchConfig) -> SearchStatus:
    study = _load(config)
    state = read_state(study, config)
    done, planned = state.evaluations()
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    return SearchStatus(counted_trials(study), done, planned, running, state.settled())


def settle(config: SearchConfig) -> list[dict]:
    """The candidates as the study has them now (stale evaluations failed): what a caller
    copies into its own rows when a worker died or a search ended."""
    return candidate_records(_load(config).get_trials(deepcopy=False))


def export(checkpoint: Path, out: Path, task_name: str | None = None, clip: Path | None = None,
           resolution: tuple[int, int] = (1280, 720)) -> dict:
    """ONNX + TorchScript + model card bundle of a candidate's checkpoint (parity checked)."""
    from engine.deploy.export import export_bundle  # onnx is slow to import: only here

    return export_bundle(checkpoint, out, task_name=task_name, clip=clip,
                         resolution=resolution)
