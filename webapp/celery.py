"""The Celery app: Redis in the scaled mode, the in-memory transport in the embedded one."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

# Its task class makes `delay_on_commit` (how a request starts a job) fail fast with a 503
# and undo the job's rows when the broker is down (webapp.studio.dispatch).
app = Celery("webapp", task_cls="webapp.studio.dispatch:RequestStartedTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _start_watchdog(**_: object) -> None:
    """Every worker process watches for searches whose workers died (webapp.studio.watchdog):
    the first worker up after a crash takes them up again."""
    from webapp.studio.watchdog import start_watchdog

    start_watchdog()
