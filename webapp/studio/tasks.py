"""Thin Celery tasks: take primary keys, load rows, call the engine with a StudioSink.

`launch_search` prepares the shared Optuna study (frames, reference, seeds) and fans out
`search_worker` tasks; each worker runs the engine's job loop on the shared study (new
candidates, promotions to longer rungs, learned baselines: Optuna's own distributed pattern),
so the same code serves one process or many machines. Everything goes through the engine's
life-cycle facade (engine.search.lifecycle): the rung logic and the study stay behind it.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.config import ConfigError, SearchConfig
from engine.data.video_io import ClipError
from engine.registry import UnknownNameError
from engine.safe_files import DiskFull, first_line, log_disk_full, public_message
from engine.search import lifecycle
from engine.search.search import SearchError
from engine.search.study import GRACE_SECONDS, HEARTBEAT_SECONDS, StudyError
from webapp.studio.deletion import purge_if_deleted
from webapp.studio.models import Search, Trial
from webapp.studio.progress import StudioSink, announce, reference_psnr, trial_defaults
from webapp.studio.transient import is_transient, reset_connection, retrying
from webapp.studio.watchdog import beat

log = logging.getLogger(__name__)
# DiskFull: a full disk fails the search with its own message (what to do), no traceback.
USER_ERRORS = (ConfigError, ClipError, SearchError, StudyError, UnknownNameError, DiskFull)
ORPHANED = "its worker stopped mid-trial; not counted, the genome may be retried"
# A killed worker's evaluation is freed once its heartbeat is older than the grace period:
# a follow-up worker starts after that, a few times at most.
FOLLOW_UP_S = GRACE_SECONDS + HEARTBEAT_SECONDS
MAX_FOLLOW_UPS = 3
# A worker that loses the database or the broker mid-run (a restart) runs again after a
# pause, up to this many times in a row: the engine continues the shared study.
MAX_TRANSIENT_RESTARTS = 6


def engine_config(search: Search) -> SearchConfig:
    """The engine's config for a search row: the shared study, resumable by any worker."""
    return SearchConfig.from_dict({
        **search.config,
        "clip": search.clip.file.path,
        "clip_name": search.clip.original_name,  # the file's own name is a random one
        "storage": settings.STUDIO_OPTUNA_STORAGE,
        # The creation time keeps a study apart from an older database's search of same pk.
        "study_name": f"studio-search-{search.pk}-{search.created_at:%Y%m%dT%H%M%S%f}",
        "resume": True,
        "out_dir": str(Path(settings.MEDIA_ROOT) / "searches" / str(search.pk)),
    })


def fail(search_id: int, error: Exception | str) -> None:
    if isinstance(error, DiskFull):  # the page says what to do; the log says what failed
        log_disk_full(f"search {search_id}", error)
    message = str(error)
    if not Search.objects.filter(pk=search_id).update(
            status=Search.Status.FAILED, error=message, finished_at=timezone.now()):
        return  # deleted meanwhile (deletion.py): no row to fail, no events to record
    announce(search_id, "search_failed", {"error": message})


def sync_trials(search: Search, candidates: list[dict[str, Any]]) -> None:
    """Rows left 'running' by a killed worker take the state the engine now has for their
    candidate (lifecycle.settle: a promotion killed with its worker leaves the candidate at
    its last completed rung)."""
    records = {r["number"]: r for r in candidates}
    reference = reference_psnr(search.baselines)
    for row in search.trials.filter(state="running"):
        record = records.get(row.number)
        if record is None or record["state"] == "running" or record["promoting"] is not None:
            continue  # still under way (or queued) as far as Optuna knows
        if record["state"] == "failed" and not record.get("reason"):
            record = {**record, "reason": ORPHANED}
        Trial.objects.filter(pk=row.pk).update(**trial_defaults(record, reference))


@shared_task
def launch_search(search_id: int) -> None:
    search = retrying(lambda: Search.objects.select_related("clip").filter(pk=search_id).first(),
                      f"search {search_id}: loading it")
    if search is None:
        return  # deleted before it started (deletion.py)
    if not search.is_active:
        return  # cancelled while it waited (api.search_cancel ended it then)
    beat(search_id, force=True)
    if search.cancel_requested:
        if Search.objects.filter(pk=search_id, status__in=(
                Search.Status.QUEUED, Search.Status.RUNNING)).update(
                status=Search.Status.CANCELLED):
            announce(search_id, "search_cancelled", {"finished": search.finished_trials})
        return
    try:
        config = engine_config(search)
        lifecycle.prepare(config, StudioSink(search_id), settings.STUDIO_CACHE_DIR)
        candidates = lifecycle.settle(config)
    except USER_ERRORS as error:
        fail(search_id, error)
        return
    except Exception as error:
        log.exception("search %s could not start", search_id)
        fail(search_id, f"internal error while starting: {public_message(error)}")
        return
    if purge_if_deleted(search_id, search):  # deleted while its study was prepared
        return
    sync_trials(search, candidates)
    for worker in range(max(1, search.workers)):
        search_worker.delay(search_id, worker)


def _cancel_requested(search_id: int) -> bool:
    """Asked every few training steps: also this worker's heartbeat (watchdog.beat)."""
    beat(search_id)
    # A deleted search (deletion.py) stops too: no row left saying "go on".
    return retrying(lambda: not Search.objects.filter(pk=search_id,
                                                      cancel_requested=False).exists(),
                    f"search {search_id}: cancel check")


@shared_task(acks_late=True)
def search_worker(search_id: int, worker: int = 0, follow_up: int = 0) -> None:
    search = retrying(lambda: Search.objects.select_related("clip").filter(pk=search_id).first(),
                      f"search {search_id}: loading it")
    if search is None or not search.is_active:
        return  # ended, or deleted (deletion.py)
    beat(search_id, force=True)
    from webapp.studio.live_preview import LivePreviewSink  # imports render: keep it lazy

    for restart in range(MAX_TRANSIENT_RESTARTS + 1):
        try:  # engine_config too: a stored config the engine refuses fails the search
            config = engine_config(search)
            sink = LivePreviewSink(search_id, config)
            report = lifecycle.run_worker(config, sink, settings.STUDIO_CACHE_DIR,
                                          should_stop=lambda: _cancel_requested(search_id),
                                          worker=worker)
            break
        except USER_ERRORS as error:
            if not purge_if_deleted(search_id, search):
                fail(search_id, error)
            return
        except Exception as error:
            if is_transient(error) and restart < MAX_TRANSIENT_RESTARTS:
                # The database or broker went away mid-run: the study keeps what finished;
                # this worker runs again once it answers (the trial in flight is retried).
                pause = min(30.0, 2.0 * 2 ** restart)
                log.warning("search %s: %s: %s; worker runs again in %.0f s", search_id,
                            type(error).__name__, first_line(error), pause)
                reset_connection()
                time.sleep(pause)
                beat(search_id, force=True)
                continue
            if purge_if_deleted(search_id, search):  # its row went mid-run: not a failure
                return
            log.exception("search %s failed", search_id)
            message = f"internal error: {public_message(error)}"  # no server path shown
            retrying(lambda m=message: fail(search_id, m),
                     f"search {search_id}: recording its failure")
            return
    if purge_if_deleted(search_id, search):  # deleted while it ran: stopped, files removed
        return
    retrying(lambda: finish(search_id, report, sink.n_finished, worker=worker,
                            follow_up=follow_up), f"search {search_id}: recording its end")


def finish(search_id: int, report: dict, counted: int | None = None, worker: int = 0,
           follow_up: int = 0) -> None:
    """Store a worker's report; the search is finished, cancelled, or still running.

    The engine says whether the search's work is done (`report["complete"]`): a worker that
    ran out of jobs while another still trains or promotes leaves the search running, and
    the last worker to end finishes it. Work left with no live worker (a killed worker's
    evaluation, which Optuna frees only after its heartbeat grace period) is taken up by a
    follow-up worker queued for when that period has passed. `counted` is the engine's
    count of first-rung candidates (`counted_trials`)."""
    if counted is None:
        counted = report["timing"]["trained_trials"]
    complete = bool(report.get("complete", True))
    search = Search.objects.get(pk=search_id)
    left = not complete and not search.cancel_requested and search.is_active
    peers_busy = left and search.workers > 1 and _others_busy(search)
    retry = left and not peers_busy and follow_up < MAX_FOLLOW_UPS
    with transaction.atomic():
        search = Search.objects.select_for_update().get(pk=search_id)
        was_active = search.is_active
        if not was_active:  # another worker ended it: a later complete report is newer
            if complete and search.status == Search.Status.FINISHED:
                search.report = report
                search.save(update_fields=["report"])
            return
        search.report = report
        if complete:
            search.status = Search.Status.FINISHED
        elif search.cancel_requested:
            search.status = Search.Status.CANCELLED
        elif not (peers_busy or retry):
            search.status = Search.Status.INTERRUPTED
            search.error = (f"work was left after {follow_up} follow-up workers: resume it "
                            "to continue")
        search.finished_trials = counted
        if search.status != Search.Status.RUNNING:
            search.finished_at = timezone.now()
        search.save(update_fields=["report", "status", "error", "finished_trials",
                                   "finished_at"])
    if retry:
        # The follow-up is this search's next sign of life: the watchdog waits for it.
        Search.objects.filter(pk=search_id).update(
            heartbeat_at=timezone.now() + timedelta(seconds=FOLLOW_UP_S))
        search_worker.apply_async((search_id, worker, follow_up + 1), countdown=FOLLOW_UP_S)
    if search.status == Search.Status.RUNNING:
        return
    settle_trials(search)
    kind = {"finished": "search_done", "cancelled": "search_cancelled",
            "interrupted": "search_interrupted"}[search.status]
    payload = {"finished": counted, "status": search.status}
    if kind == "search_done" and counted < search.n_trials:
        payload["reason"] = (f"stopped after {counted} of {search.n_trials} candidates: the "
                             "proposals ran out (constraints or repeated genomes)")
    if kind == "search_interrupted":
        payload["reason"] = search.error
    announce(search_id, kind, payload)


def _others_busy(search: Search) -> bool:
    """Whether another live worker still runs an evaluation of the search (the engine fails
    a dead worker's stale ones first)."""
    try:
        return lifecycle.status(engine_config(search)).running > 0
    except Exception:
        log.exception("search %s: cannot read its study", search.pk)
        return False


def settle_trials(search: Search) -> None:
    """No row of a search that has ended stays 'running'.

    Optuna fails a killed worker's trial only once its heartbeat is older than the grace
    period (engine/search/study.py), and a search can end before that. Rows whose candidate
    Optuna has settled take its state; with one worker, an evaluation still RUNNING when
    that worker ends belonged to a worker that died: a candidate with a completed rung goes
    back to it (complete), one without reads 'failed' (never counted; Optuna itself fails
    the trial after the grace period, at the study's next opening)."""
    if not search.trials.filter(state="running").exists():
        return
    try:
        sync_trials(search, lifecycle.settle(engine_config(search)))
    except Exception:  # settling is cosmetic: it must never fail a finished search
        log.exception("search %s: could not settle its running trials", search.pk)
        return
    if search.workers <= 1:
        running = search.trials.filter(state="running")
        running.filter(psnr__isnull=False).update(state="complete", promoting=None)
        running.filter(psnr__isnull=True).update(state="failed", reason=ORPHANED)


# Celery autodiscovery reads tasks.py only: import these so workers register their tasks.
from webapp.studio import full_training, previews  # noqa: E402,F401
