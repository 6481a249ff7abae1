"""Thin Celery tasks: take primary keys, load rows, call the engine with a StudioSink.

`launch_search` prepares the shared Optuna study (frames, baselines) and fans out
`search_worker` tasks; each worker runs ask/evaluate/tell on the shared study (Optuna's own
distributed pattern), so the same code serves one process or many machines.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.config import ConfigError, SearchConfig
from engine.data.video_io import ClipError
from engine.registry import UnknownNameError
from engine.search.report import trial_record
from engine.search.search import SearchError, run_search, start_search
from engine.search.study import StudyError, make_storage
from webapp.studio.models import Search, Trial
from webapp.studio.progress import StudioSink, announce, trial_defaults

log = logging.getLogger(__name__)
USER_ERRORS = (ConfigError, ClipError, SearchError, StudyError, UnknownNameError)
ORPHANED = "its worker stopped mid-trial; not counted, the genome may be retried"


def engine_config(search: Search) -> SearchConfig:
    """The engine's config for a search row: the shared study, resumable by any worker."""
    return SearchConfig.from_dict({
        **search.config,
        "clip": search.clip.file.path,
        "storage": settings.STUDIO_OPTUNA_STORAGE,
        # The creation time keeps a study apart from an older database's search of same pk.
        "study_name": f"studio-search-{search.pk}-{search.created_at:%Y%m%dT%H%M%S%f}",
        "resume": True,
        "out_dir": str(Path(settings.MEDIA_ROOT) / "searches" / str(search.pk)),
    })


def fail(search_id: int, error: Exception | str) -> None:
    message = str(error)
    Search.objects.filter(pk=search_id).update(status=Search.Status.FAILED, error=message,
                                               finished_at=timezone.now())
    announce(search_id, "search_failed", {"error": message})


def sync_trials(search: Search, study: optuna.Study) -> None:
    """Rows left 'running' by a killed worker take the state Optuna now has for them."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for row in search.trials.filter(state="running"):
        trial = by_number.get(row.number)
        if trial is not None and trial.state != optuna.trial.TrialState.RUNNING:
            record = trial_record(trial)
            if record["state"] == "failed" and not record.get("reason"):
                record["reason"] = ORPHANED
            Trial.objects.filter(pk=row.pk).update(**trial_defaults(record))


@shared_task
def launch_search(search_id: int) -> None:
    search = Search.objects.select_related("clip").get(pk=search_id)
    if search.cancel_requested:
        Search.objects.filter(pk=search_id).update(status=Search.Status.CANCELLED)
        announce(search_id, "search_cancelled", {"finished": search.finished_trials})
        return
    try:
        config = engine_config(search)
        _, study, _ = start_search(config, StudioSink(search_id), settings.STUDIO_CACHE_DIR)
    except USER_ERRORS as error:
        fail(search_id, error)
        return
    except Exception as error:
        log.exception("search %s could not start", search_id)
        fail(search_id, f"internal error while starting: {error}")
        return
    sync_trials(search, study)
    for worker in range(max(1, search.workers)):
        search_worker.delay(search_id, worker)


def _cancel_requested(search_id: int) -> bool:
    return Search.objects.filter(pk=search_id, cancel_requested=True).exists()


@shared_task(acks_late=True)
def search_worker(search_id: int, worker: int = 0) -> None:
    search = Search.objects.select_related("clip").get(pk=search_id)
    if not search.is_active:
        return
    from webapp.studio.live_preview import LivePreviewSink  # imports render: keep it lazy

    try:  # engine_config too: a stored config the engine refuses fails the search, visibly
        config = engine_config(search)
        sink = LivePreviewSink(search_id, config)
        report = run_search(config, sink, settings.STUDIO_CACHE_DIR,
                            should_stop=lambda: _cancel_requested(search_id), worker=worker)
    except USER_ERRORS as error:
        fail(search_id, error)
        return
    except Exception as error:
        log.exception("search %s failed", search_id)
        fail(search_id, f"internal error: {error}")
        return
    finish(search_id, report, sink.n_finished)


def finish(search_id: int, report: dict, counted: int | None = None) -> None:
    """Store the report; the search is finished, cancelled, or still running elsewhere.

    `counted` is the engine's own count (`counted_trials`); the report's `trained_trials`
    also counts a killed worker's trial once Optuna has failed it as stale. A worker can
    also end short of `n_trials` when its proposals run out (most genomes broke a constraint
    or repeated one): the search is then finished unless another worker still runs trials."""
    if counted is None:
        counted = report["timing"]["trained_trials"]
    search = Search.objects.get(pk=search_id)
    short = counted < search.n_trials and not search.cancel_requested
    others_busy = short and search.workers > 1 and _trials_running(search)
    with transaction.atomic():
        search = Search.objects.select_for_update().get(pk=search_id)
        search.report = report
        if counted >= search.n_trials:
            search.status = Search.Status.FINISHED
        elif search.cancel_requested:
            search.status = Search.Status.CANCELLED
        elif not others_busy:
            search.status = Search.Status.FINISHED
        search.finished_trials = counted
        if search.status != Search.Status.RUNNING:
            search.finished_at = timezone.now()
        search.save(update_fields=["report", "status", "finished_trials", "finished_at"])
    if search.status != Search.Status.RUNNING:
        settle_trials(search)
    kind = {"finished": "search_done", "cancelled": "search_cancelled"}.get(search.status)
    if kind:
        payload = {"finished": counted, "status": search.status}
        if counted < search.n_trials and kind == "search_done":
            payload["reason"] = (f"stopped after {counted} of {search.n_trials} trials: the "
                                 "proposals ran out (constraints or repeated genomes)")
        announce(search_id, kind, payload)


def _study(search: Search) -> optuna.Study:
    config = engine_config(search)
    return optuna.load_study(study_name=config.study_name, storage=make_storage(config.storage))


def _trials_running(search: Search) -> bool:
    """Whether a live worker still runs a trial of the search (stale ones are failed first)."""
    try:
        study = _study(search)
        optuna.storages.fail_stale_trials(study)
        return bool(study.get_trials(deepcopy=False,
                                     states=(optuna.trial.TrialState.RUNNING,)))
    except Exception:
        log.exception("search %s: cannot read its study", search.pk)
        return False


def settle_trials(search: Search) -> None:
    """No row of a search that has ended stays 'running'.

    Optuna fails a killed worker's trial only once its heartbeat is older than the grace
    period (engine/search/study.py), and a resumed search can end before that. Rows whose
    trial Optuna has finished take its state; with one worker, a trial still RUNNING when
    that worker ends belonged to a worker that died: its row reads 'failed' (never counted;
    Optuna itself marks it failed after the grace period, at the study's next opening)."""
    if not search.trials.filter(state="running").exists():
        return
    try:
        study = _study(search)
        optuna.storages.fail_stale_trials(study)
        sync_trials(search, study)
    except Exception:  # settling is cosmetic: it must never fail a finished search
        log.exception("search %s: could not settle its running trials", search.pk)
        return
    if search.workers <= 1:
        search.trials.filter(state="running").update(state="failed", reason=ORPHANED)


# Celery autodiscovery reads tasks.py only: import these so workers register their tasks.
from webapp.studio import full_training, previews  # noqa: E402,F401
