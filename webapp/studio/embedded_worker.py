"""The embedded mode's worker: a Celery worker in a thread of the web process, consuming the
in-memory transport, so a running search never blocks a page and nothing else must start."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
_started = threading.Event()
INTERRUPTED_REASON = "the server stopped while this search ran: resume it to continue"


def interrupt_orphans() -> None:
    """This process is the embedded mode's only worker and the in-memory queue starts empty,
    so a search still queued or running now was cut short by the last shutdown: mark it
    interrupted (resumable) instead of leaving it 'running' for ever."""
    from django.db import connection

    from webapp.studio.models import Search
    from webapp.studio.progress import announce

    try:
        active = (Search.Status.QUEUED, Search.Status.RUNNING)
        for pk in Search.objects.filter(status__in=active).values_list("pk", flat=True):
            Search.objects.filter(pk=pk, status__in=active).update(
                status=Search.Status.INTERRUPTED, error=INTERRUPTED_REASON)
            announce(pk, "search_interrupted", {"reason": INTERRUPTED_REASON})
        # Full trainings too, so they stop counting against their owner's limits.
        from webapp.studio.limits import end_orphaned_full_trainings

        end_orphaned_full_trainings("the server stopped while it ran: full-train it again "
                                    "to resume")
    except Exception:  # no table yet (before migrate), or no database access at all
        log.exception("could not mark interrupted searches")
    finally:
        connection.close()


def start_embedded_worker() -> None:
    if _started.is_set():
        return
    _started.set()
    from webapp.celery import app

    interrupt_orphans()  # before the server takes its first request

    from celery import Celery
    from django.conf import settings

    def run(queue: str) -> None:
        # One Celery app per consumer: a worker selects its queues on its app (what -Q does),
        # so two workers of one app in one process would end up on the same queues. The
        # in-memory transport's state is per process, so every app sees every message.
        own = app if queue == settings.STUDIO_QUEUES[0] else Celery(
            f"webapp-{queue}", set_as_current=False)
        if own is not app:
            own.config_from_object("django.conf:settings", namespace="CELERY")
        worker = own.WorkController(
            pool_cls="solo", concurrency=1, without_mingle=True, without_gossip=True,
            without_heartbeat=True, hostname=f"embedded-{queue}@studio", loglevel="INFO",
            queues=[queue],
        )
        log.info("embedded Celery worker started for queue %r (in-memory transport)", queue)
        try:
            worker.start()
        except BaseException:
            log.exception("the embedded Celery worker of queue %r stopped: its jobs will not "
                          "run", queue)
            raise

    # Every task registered before any consumer starts: each worker snapshots the registry
    # when it starts.
    app.loader.import_default_modules()
    assert "webapp.studio.previews.render_preview_task" in app.tasks
    for queue in settings.STUDIO_QUEUES:  # one consumer per queue: previews never wait
        threading.Thread(target=run, args=(queue,), name=f"embedded-celery-{queue}",
                         daemon=True).start()
