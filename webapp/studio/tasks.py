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
from engine.search.study import StudyError
from webapp.studio.models import Search, Trial
from webapp.studio.progress import StudioSink, announce, trial_defaults

log = logging.getLogger(__name__)
USER_ERRORS = (ConfigError, ClipError, SearchError, StudyError, UnknownNameError)


def engine_config(search: Search) -> SearchConfig:
    """The engine's config for a search row: the shared study, resumable by any worker."""
    return SearchConfig.from_dict({
        **search.config,
        "clip": search.clip.file.path,
        "storage": settings.STUDIO_OPTUNA_STORAGE,
        "study_name": f"studio-search-{search.pk}",
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
                record["reason"] = "its worker stopped mid-trial; the genome may be retried"
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
    for _ in range(max(1, search.workers)):
        search_worker.delay(search_id)


def _cancel_requested(search_id: int) -> bool:
    return Search.objects.filter(pk=search_id, cancel_requested=True).exists()


@shared_task(acks_late=True)
def search_worker(search_id: int) -> None:
    search = Search.objects.select_related("clip").get(pk=search_id)
    if not search.is_active:
        return
    try:
        report = run_search(engine_config(search), StudioSink(search_id),
                            settings.STUDIO_CACHE_DIR,
                            should_stop=lambda: _cancel_requested(search_id))
    except USER_ERRORS as error:
        fail(search_id, error)
        return
    except Exception as error:
        log.exception("search %s failed", search_id)
        fail(search_id, f"internal error: {error}")
        return
    finish(search_id, report)


def finish(search_id: int, report: dict) -> None:
    """Store the report; the search is finished, cancelled, or still running elsewhere."""
    counted = report["timing"]["trained_trials"]
    with transaction.atomic():
        search = Search.objects.select_for_update().get(pk=search_id)
        search.report = report
        if counted >= search.n_trials:
            search.status = Search.Status.FINISHED
        elif search.cancel_requested:
            search.status = Search.Status.CANCELLED
        search.finished_trials = counted
        if search.status != Search.Status.RUNNING:
            search.finished_at = timezone.now()
        search.save(update_fields=["report", "status", "finished_trials", "finished_at"])
    kind = {"finished": "search_done", "cancelled": "search_cancelled"}.get(search.status)
    if kind:
        announce(search_id, kind, {"finished": counted, "status": search.status})
