"""Fair queues in embedded mode (issue 10, part 3): the in-process worker runs one consumer
per queue, so an interactive job (a preview) starts while a long one (a search) still runs.
A fresh process: the embedded worker is started once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROBE = r'''
import os, threading, time
import django
django.setup()
from celery import shared_task
events = []

@shared_task(name="probe.long")
def long_job():
    events.append("long started")
    time.sleep(8)
    events.append("long ended")

@shared_task(name="probe.preview")
def preview_job():
    events.append("preview ran on " + threading.current_thread().name)

from webapp.celery import app
app.conf.task_routes = {**app.conf.task_routes, "probe.preview": {"queue": "interactive"}}
from webapp.studio.embedded_worker import start_embedded_worker
start_embedded_worker()
long_job.delay()
deadline = time.time() + 30
while "long started" not in events and time.time() < deadline:
    time.sleep(0.1)
preview_job.delay()
while not any(e.startswith("preview") for e in events) and time.time() < deadline:
    time.sleep(0.1)
import json
print("EVENTS", json.dumps(events))
'''


def test_a_preview_runs_while_a_long_job_holds_the_other_consumer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="webapp.settings", STUDIO_DATA_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=90)
    line = next((x for x in done.stdout.splitlines() if x.startswith("EVENTS")), "")
    assert line, done.stdout + done.stderr[-3000:]
    events = json.loads(line[len("EVENTS "):])
    assert events[:2] == ["long started", "preview ran on embedded-celery-interactive"], events
