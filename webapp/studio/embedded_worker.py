"""The embedded mode's worker: a Celery worker in a thread of the web process, consuming the
in-memory transport, so a running search never blocks a page and nothing else must start."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)
_started = threading.Event()


def start_embedded_worker() -> None:
    if _started.is_set():
        return
    _started.set()
    from webapp.celery import app

    def run() -> None:
        worker = app.WorkController(
            pool_cls="solo", concurrency=1, without_mingle=True, without_gossip=True,
            without_heartbeat=True, hostname="embedded@studio", loglevel="INFO",
        )
        log.info("embedded Celery worker started (in-memory transport)")
        worker.start()

    threading.Thread(target=run, name="embedded-celery-worker", daemon=True).start()
