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

    def run() -> None:
        worker = app.WorkController(
            pool_cls="solo", concurrency=1, without_mingle=True, without_gossip=True,
            without_heartbeat=True, hostname="embedded@studio", loglevel="INFO",
        )
        log.info("embedded Celery worker started (in-memory transport)")
        try:
            worker.start()
        except BaseException:
            log.exception("the embedded Celery worker stopped: searches will not run")
            raise

    threading.Thread(target=run, name="embedded-celery-worker", daemon=True).start()
