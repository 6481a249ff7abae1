"""Searches whose workers died are taken up again, with no one pressing anything.

A worker running a search beats (`beat`, at most every BEAT_EVERY_S, from its progress and
cancel checks). Every worker process also runs a watchdog thread (`start_watchdog`): every
WATCH_EVERY_S it looks for running searches whose last beat is older than STALE_AFTER_S and
queues them again (`launch_search`, the same path as "resume"). The engine then continues
them: finished rungs are kept, a killed worker's evaluation is failed once its Optuna
heartbeat is past the grace period and its genome is evaluated again.

Why not the broker alone: with Redis, a killed worker's unacknowledged task comes back only
after the visibility timeout (an hour here, since a search task may legitimately run that
long), so a dead worker would otherwise be noticed after an hour, or by a person.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from webapp.studio.transient import is_transient

log = logging.getLogger(__name__)

# Settings (env STUDIO_HEARTBEAT_S, STUDIO_STALE_AFTER_S, STUDIO_WATCH_EVERY_S); defaults:
# a beat every 10 s, stale after 30 s (3 beats: a busy machine may delay one), a look
# every 10 s: a dead worker is noticed within 40 s, training again within a minute (the
# jobs benchmark measured 56 s with 45 s / 15 s, too near the 60 s target).
BEAT_EVERY_S = float(getattr(settings, "STUDIO_HEARTBEAT_S", 10))
STALE_AFTER_S = float(getattr(settings, "STUDIO_STALE_AFTER_S", 30))
WATCH_EVERY_S = float(getattr(settings, "STUDIO_WATCH_EVERY_S", 10))
REVIVED_REASON = ("its worker stopped answering (killed or lost); it was taken up again "
                  "automatically")

_last_beat: dict[int, float] = {}
_watchdog_started = threading.Event()


def beat(search_id: int, force: bool = False) -> None:
    """This process still works on the search (rate-limited: one UPDATE per BEAT_EVERY_S).
    A failed beat is only logged: the next one will do."""
    now = time.monotonic()
    if not force and now - _last_beat.get(search_id, -BEAT_EVERY_S) < BEAT_EVERY_S:
        return
    _last_beat[search_id] = now
    from webapp.studio.models import Search

    try:
        Search.objects.filter(pk=search_id).update(heartbeat_at=timezone.now())
    except Exception as error:
        if not is_transient(error):
            raise
        log.warning("search %s: heartbeat not written (%s)", search_id, type(error).__name__)


def revive_stale(stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Queue again every running search whose workers stopped beating; returns their ids.
    Each is claimed with a conditional UPDATE, so several watchdogs revive it once."""
    from webapp.studio.models import Search
    from webapp.studio.progress import announce
    from webapp.studio.tasks import launch_search

    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    running = Search.objects.filter(status=Search.Status.RUNNING, cancel_requested=False)
    revived = []
    for pk, last in running.values_list("pk", "heartbeat_at"):
        if last is not None and last > cutoff:
            continue
        if last is None:  # from before heartbeats, or not yet beaten: start its clock now
            Search.objects.filter(pk=pk, heartbeat_at__isnull=True).update(heartbeat_at=now)
            continue
        # Queued, as a resume does: the watchdog looks at running searches only, so one
        # revival waits in the queue behind other jobs without being revived again.
        claimed = Search.objects.filter(pk=pk, status=Search.Status.RUNNING,
                                        heartbeat_at=last).update(
            heartbeat_at=now, status=Search.Status.QUEUED)
        if not claimed:
            continue  # another watchdog took it, or a worker beat meanwhile
        silent = (now - last).total_seconds()
        log.warning("search %s: no worker beat for %.0f s; queued again", pk, silent)
        announce(pk, "search_revived", {"reason": REVIVED_REASON, "silent_seconds": silent})
        launch_search.delay(pk)
        revived.append(pk)
    return revived


def revive_stale_previews(stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Queue again every running preview whose worker stopped rendering (a preview beats
    at every frame, each well under a second); returns their ids. It renders anew: its
    files are written to temporary names and renamed, so nothing half-written stays."""
    from webapp.studio.models import Preview
    from webapp.studio.previews import render_preview_task
    from webapp.studio.progress import announce

    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    revived = []
    for pk, search_id, last in Preview.objects.filter(
            status=Preview.Status.RUNNING, cancel_requested=False).filter(
            models.Q(heartbeat_at__lt=cutoff) | models.Q(heartbeat_at__isnull=True)).values_list(
            "pk", "search_id", "heartbeat_at"):
        claimed = Preview.objects.filter(pk=pk, status=Preview.Status.RUNNING,
                                         heartbeat_at=last).update(
            status=Preview.Status.QUEUED, frames_done=0, heartbeat_at=now)
        if not claimed:
            continue
        log.warning("preview %s: no frame for over %.0f s; queued again", pk, stale_after_s)
        announce(search_id, "preview_revived", {"preview": pk, "reason": REVIVED_REASON})
        render_preview_task.delay(pk)
        revived.append(pk)
    return revived


def watch_forever(every_s: float = WATCH_EVERY_S) -> None:
    while True:
        try:
            revive_stale()
            revive_stale_previews()
        except Exception as error:  # the database may be restarting: try again next round
            if is_transient(error):
                log.warning("watchdog: %s; next look in %.0f s", type(error).__name__, every_s)
            else:
                log.exception("watchdog round failed")
        finally:
            connection.close()  # a thread's own connection: do not hold it between rounds
        time.sleep(every_s)


def start_watchdog() -> None:
    """One watchdog thread per process (idempotent)."""
    if _watchdog_started.is_set():
        return
    _watchdog_started.set()
    threading.Thread(target=watch_forever, name="search-watchdog", daemon=True).start()
    log.info("search watchdog started (stale after %.0f s, every %.0f s)", STALE_AFTER_S,
             WATCH_EVERY_S)
