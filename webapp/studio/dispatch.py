"""Starting a job from a request: one path that sends a Celery task, fails fast when the
broker (Redis in scaled mode) is down, and undoes what the request had prepared for it.

Without this, a request that starts a job while Redis is down waited for kombu's default
connection retries, answered 500, and left a search "queued" that no worker would ever run.
Here the send uses its own short-timeout connection and at most one quick retry (a Redis
that restarts answers again within a second), then raises QueueDown: the job's rows are
undone (UNDO: a new search is removed, a resumed one, a preview or a full training is
failed with QUEUE_DOWN) and the view (`refuses_when_queue_down`) answers 503.

Every job a request starts goes through `delay_on_commit` (searches, resumes, previews, full
trainings; exports run in the request itself): the app's task class (webapp/celery.py) is
`RequestStartedTask`, whose `delay_on_commit` is this path. The send still waits for the
transaction's commit: a worker must never read a row that is not committed yet. Workers'
own sends (`.delay`, `.apply_async`) keep Celery's patient default retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

from celery import Task
from celery.contrib.django.task import DjangoTask
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from kombu.exceptions import KombuError

log = logging.getLogger(__name__)

QUEUE_DOWN = ("The job queue (Redis) is not answering: nothing was started; "
              "try again in a minute.")
RETRY_AFTER_S = 60
# A refused connection fails in milliseconds; a Redis that accepts and never answers is cut
# off by the socket timeout: with one retry, a request waits about 5 s at worst.
TRANSPORT_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}
RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.3,
                "interval_max": 0.5}
BROKER_ERRORS = (KombuError, ConnectionError, TimeoutError, OSError)


class QueueDown(Exception):
    """The broker did not take the job; nothing was queued."""

    def __init__(self, message: str = QUEUE_DOWN) -> None:
        super().__init__(message)
        self.message = message


def send(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue `task(*args, **kwargs)` now, or raise QueueDown within seconds."""
    app = task.app
    options = {**(app.conf.broker_transport_options or {}), **TRANSPORT_TIMEOUTS}
    try:
        # Its own connection: the app's pooled one keeps kombu's long default retries.
        with app.connection_for_write(transport_options=options) as connection, \
                connection.Producer() as producer:
            task.apply_async(args, kwargs or None, producer=producer, retry=True,
                             retry_policy=RETRY_POLICY)
    except BROKER_ERRORS as error:
        log.warning("could not queue %s%r: the broker is not answering (%s)", task.name, args,
                    error)
        raise QueueDown() from error


def send_on_commit(task: Task, *args: Any, undo: Callable[[], None] | None = None,
                   **kwargs: Any) -> None:
    """Queue `task(*args, **kwargs)` once the current transaction commits (at once outside
    one). When the broker refuses, `undo()` runs (the rows are committed by then: it deletes
    or fails them) and QueueDown propagates out of the commit, to the view."""

    def start() -> None:
        try:
            send(task, *args, **kwargs)
        except QueueDown:
            if undo is not None:
                undo()
            raise

    transaction.on_commit(start)


def queue_down_response(request: HttpRequest, back: str = "") -> HttpResponse:
    """503 with the message: JSON for API clients, a short page for a browser's form post."""
    if request.headers.get("accept", "").startswith("application/json"):
        response: HttpResponse = JsonResponse({"error": QUEUE_DOWN}, status=503)
    else:
        response = render(request, "studio/queue_down.html",
                          {"message": QUEUE_DOWN, "back": back}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def refuses_when_queue_down(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A view that starts a job answers QUEUE_DOWN (503) when the broker refused it."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except QueueDown:
            back = (reverse("studio:search_detail", kwargs={"search_id": kwargs["search_id"]})
                    if "search_id" in kwargs else request.path)
            return queue_down_response(request, back)

    return wrapper


# ---------------------------------------------------------------- undoing a refused start
def _undo_search(search_id: int) -> None:
    from webapp.studio.models import Search
    from webapp.studio.tasks import fail

    # A search that never ran (no event yet) is rolled back; a resumed one reads failed, and
    # can be resumed again once the queue answers.
    if not Search.objects.filter(pk=search_id, event_seq=0).delete()[0]:
        fail(search_id, QUEUE_DOWN)


def _undo_preview(preview_id: int) -> None:
    from webapp.studio.models import Preview
    from webapp.studio.progress import announce

    preview = Preview.objects.filter(pk=preview_id).first()
    if preview is not None:
        Preview.objects.filter(pk=preview_id).update(status=Preview.Status.FAILED,
                                                     error=QUEUE_DOWN)
        announce(preview.search_id, "preview_failed", {"preview": preview_id,
                                                       "error": QUEUE_DOWN})


def _undo_full_training(search_id: int, candidate: str, steps: int) -> None:
    from webapp.studio.progress import announce

    # Its queued event (if any) is ended by this one: nothing is counted as waiting.
    announce(search_id, "full_training_failed", {"candidate": f"full-{candidate}",
                                                 "error": QUEUE_DOWN})


UNDO: dict[str, Callable[..., None]] = {
    "webapp.studio.tasks.launch_search": _undo_search,
    "webapp.studio.previews.render_preview_task": _undo_preview,
    "webapp.studio.full_training.full_train_task": _undo_full_training,
}


def undo_start(name: str, args: tuple[Any, ...]) -> None:
    handler = UNDO.get(name)
    if handler is None:
        return
    try:
        handler(*args)
    except Exception:  # the 503 still goes out; the log says what was left
        log.exception("could not undo the refused start of %s%r", name, args)


class RequestStartedTask(DjangoTask):
    """The app's task class: `delay_on_commit` (how requests start jobs) sends through
    `send_on_commit`, with the task's own undo."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        send_on_commit(self, *args, undo=partial(undo_start, self.name, args), **kwargs)
