"""Faults heal without a person (issue 10, part 8): a running search whose workers stopped
beating is queued again by the watchdog, and a transient database error mid-run is waited
out instead of failing the search.

The scenario with a real SIGKILLed worker process is in
tests/reliability/test_worker_integration.py; these pin the rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError
from django.utils import timezone

from webapp.studio import tasks, watchdog
from webapp.studio.models import Clip, Search, SearchEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """launch_search.delay replaced by a recorder (no broker in these tests)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.launch_search, "delay", lambda search_id: calls.append(search_id))
    return calls


@pytest.fixture
def running(user: User, make_clip: Callable[..., Clip],
            make_search: Callable[..., Search]) -> Callable[..., Search]:
    clip = make_clip(user)

    def make(silent_s: float | None, **fields: Any) -> Search:
        search = make_search(clip)
        beat = None if silent_s is None else timezone.now() - timedelta(seconds=silent_s)
        Search.objects.filter(pk=search.pk).update(
            status=fields.pop("status", Search.Status.RUNNING), heartbeat_at=beat, **fields)
        search.refresh_from_db()
        return search
    return make


def test_a_search_whose_workers_went_silent_is_queued_again(running: Callable[..., Search],
                                                            launched: list[int]) -> None:
    stale = running(silent_s=watchdog.STALE_AFTER_S + 5)
    assert watchdog.revive_stale() == [stale.pk]
    stale.refresh_from_db()
    assert stale.status == Search.Status.QUEUED and launched == [stale.pk]
    assert (timezone.now() - stale.heartbeat_at).total_seconds() < 5
    event = SearchEvent.objects.get(search=stale, kind="search_revived")
    assert "taken up again automatically" in event.payload["reason"]
    assert event.payload["silent_seconds"] > watchdog.STALE_AFTER_S
    # A second look (another worker's watchdog) does not queue it twice.
    assert watchdog.revive_stale() == [] and launched == [stale.pk]


def test_live_cancelled_and_ended_searches_are_left_alone(running: Callable[..., Search],
                                                          launched: list[int]) -> None:
    alive = running(silent_s=2)
    cancelling = running(silent_s=600, cancel_requested=True)
    ended = running(silent_s=600, status=Search.Status.FINISHED)
    queued = running(silent_s=600, status=Search.Status.QUEUED)  # waits for a worker
    assert watchdog.revive_stale() == [] and launched == []
    for search in (alive, cancelling, ended, queued):
        before = search.status
        search.refresh_from_db()
        assert search.status == before


def test_a_search_without_a_beat_gets_its_clock_started_not_revived(
        running: Callable[..., Search], launched: list[int]) -> None:
    search = running(silent_s=None)  # running since before heartbeats existed
    assert watchdog.revive_stale() == [] and launched == []
    search.refresh_from_db()
    assert search.heartbeat_at is not None and search.status == Search.Status.RUNNING


def test_beats_are_rate_limited(running: Callable[..., Search]) -> None:
    search = running(silent_s=100)
    watchdog.beat(search.pk, force=True)
    search.refresh_from_db()
    first = search.heartbeat_at
    assert (timezone.now() - first).total_seconds() < 5
    watchdog.beat(search.pk)  # within BEAT_EVERY_S of the forced one: no write
    search.refresh_from_db()
    assert search.heartbeat_at == first


def test_a_transient_database_error_mid_run_does_not_fail_the_search(
        running: Callable[..., Search], monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker loop meets a lost connection (as a PostgreSQL restart makes it): it waits,
    runs again, and the search ends by its report, not as failed."""
    search = running(silent_s=0)
    calls: list[str] = []
    report = {"complete": True, "timing": {"trained_trials": 3}}

    def run_worker(*_: Any, **__: Any) -> dict:
        calls.append("run")
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return report

    ended: list[tuple[int, dict]] = []
    monkeypatch.setattr(tasks.lifecycle, "run_worker", run_worker)
    monkeypatch.setattr(tasks, "finish", lambda sid, rep, *a, **k: ended.append((sid, rep)))
    monkeypatch.setattr(tasks.time, "sleep", lambda s: calls.append(f"sleep {s:g}"))
    monkeypatch.setattr("webapp.studio.live_preview.LivePreviewSink",
                        lambda search_id, config: type("Sink", (), {"n_finished": 3})())
    tasks.search_worker(search.pk)
    assert calls == ["run", "sleep 2", "run"]
    assert ended == [(search.pk, report)]
    search.refresh_from_db()
    assert search.status == Search.Status.RUNNING and not search.error


def test_a_real_error_still_fails_the_search_at_once(running: Callable[..., Search],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    search = running(silent_s=0)
    monkeypatch.setattr(tasks.lifecycle, "run_worker",
                        lambda *a, **k: (_ for _ in ()).throw(ZeroDivisionError("bug")))
    monkeypatch.setattr("webapp.studio.live_preview.LivePreviewSink",
                        lambda search_id, config: object())
    tasks.search_worker(search.pk)
    search.refresh_from_db()
    assert search.status == Search.Status.FAILED and "internal error: bug" in search.error


def test_a_preview_whose_worker_died_is_rendered_again(
        running: Callable[..., Search], monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.studio import previews
    from webapp.studio.models import Preview

    queued: list[int] = []
    monkeypatch.setattr(previews.render_preview_task, "delay", lambda pk: queued.append(pk))
    search = running(silent_s=0, status=Search.Status.FINISHED)
    old = timezone.now() - timedelta(seconds=watchdog.STALE_AFTER_S + 5)
    dead = Preview.objects.create(search=search, candidate="trial-0", frames_done=7,
                                  status=Preview.Status.RUNNING, heartbeat_at=old)
    alive = Preview.objects.create(search=search, candidate="trial-1",
                                   status=Preview.Status.RUNNING, heartbeat_at=timezone.now())
    cancelling = Preview.objects.create(search=search, candidate="trial-2", heartbeat_at=old,
                                        status=Preview.Status.RUNNING, cancel_requested=True)
    assert watchdog.revive_stale_previews() == [dead.pk] and queued == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == Preview.Status.QUEUED and dead.frames_done == 0
    assert SearchEvent.objects.filter(search=search, kind="preview_revived").count() == 1
    assert watchdog.revive_stale_previews() == []  # claimed once
    for preview in (alive, cancelling):
        preview.refresh_from_db()
        assert preview.status == Preview.Status.RUNNING
