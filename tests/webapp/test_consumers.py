"""The search WebSocket (webapp.asgi's stack: origin check, session auth, consumer) driven by
channels' WebsocketCommunicator: who may connect, the snapshot, then increments in order as
the progress sink persists and broadcasts (through broadcast.py's hand-off to the loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from engine.events import TrainingProgress, TrialFinished, TrialStarted
from webapp.studio.models import Clip, Search, Trial
from webapp.studio.progress import StudioSink, announce, record_event

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads from its thread
ORIGIN = (b"origin", b"http://testserver")
GENOME = {"key": "c16-b2-relu", "channels": 16, "blocks": 2}


def application() -> Any:
    """webapp.asgi's application, without starting the embedded worker in the test run."""
    with override_settings(STUDIO_INPROCESS_WORKER=False):
        from webapp.asgi import application as app
    return app


def session_cookie(user: User) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return b"cookie", f"sessionid={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def connect_outcome(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any]:
    async def attempt() -> tuple[bool, Any]:
        communicator = WebsocketCommunicator(application(), path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def record(number: int, psnr: float, macs: int) -> dict[str, Any]:
    return {"number": number, "state": "complete", "genome": GENOME, "arch": GENOME["key"],
            "psnr": psnr, "ssim": 0.9, "macs": macs, "params": 2300, "latency_ms": 1.5,
            "steps": 10, "train_seconds": 0.2}


@pytest.fixture
def search(user: User, make_clip: Callable[..., Clip],
           make_search: Callable[..., Search]) -> Search:
    return make_search(make_clip(user))


def test_anonymous_is_refused(search: Search) -> None:
    connected, code = connect_outcome(f"/ws/searches/{search.pk}/", [ORIGIN])
    assert not connected and code == 4401


def test_a_foreign_origin_is_refused(search: Search, user: User) -> None:
    headers = [(b"origin", b"http://evil.example"), session_cookie(user)]
    connected, _ = connect_outcome(f"/ws/searches/{search.pk}/", headers)
    assert not connected


def test_another_users_search_is_refused_like_a_missing_one(search: Search,
                                                             other_user: User) -> None:
    headers = [ORIGIN, session_cookie(other_user)]
    assert connect_outcome(f"/ws/searches/{search.pk}/", headers) == (False, 4403)
    assert connect_outcome(f"/ws/searches/{search.pk + 1000}/", headers) == (False, 4403)


def test_an_id_past_the_databases_range_is_refused_cleanly(search: Search, user: User) -> None:
    headers = [ORIGIN, session_cookie(user)]
    assert connect_outcome(f"/ws/searches/{'9' * 120}/", headers) == (False, 4403)


def test_a_malformed_message_gets_an_error_and_the_socket_stays_open(
        search: Search, user: User, caplog: pytest.LogCaptureFixture) -> None:
    headers = [ORIGIN, session_cookie(user)]

    async def scenario() -> list[dict[str, Any]]:
        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/",
                                             headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        replies = [await communicator.receive_json_from(timeout=5)]  # the snapshot
        for text in ("not json {", '{"type": "shout"}', "[1, 2]"):
            await communicator.send_to(text_data=text)
            replies.append(await communicator.receive_json_from(timeout=5))
        await communicator.send_to(text_data='{"type": "ping"}')
        replies.append(await communicator.receive_json_from(timeout=5))
        await communicator.disconnect()
        return replies

    with caplog.at_level("INFO"):
        replies = async_to_sync(scenario)()
    assert replies[0]["type"] == "snapshot"
    assert [r["type"] for r in replies[1:]] == ["error", "error", "error", "pong"]
    assert "ping" in replies[1]["message"]
    assert not [r for r in caplog.records if r.exc_info]  # a log line, never a traceback


def test_owner_gets_a_snapshot_then_every_increment_in_order(search: Search, user: User) -> None:
    # Before connecting: one trial started (persisted), so the snapshot has a trial row.
    record_event(search.pk, "trial_started", {"number": 0, "genome": GENOME, "macs": 5000,
                                              "at": 1.0})
    sink = StudioSink(search.pk)

    def progress() -> None:
        sink.emit(TrialFinished(trial=record(0, 30.0, 5000), finished=1, n_trials=3,
                                on_front=True, front=[0]))
        sink.emit(TrialStarted(number=1, genome=GENOME, macs=9000))
        sink.emit(TrainingProgress(number=1, step=5, steps=10, loss=0.1))
        sink.emit(TrialFinished(trial=record(1, 31.0, 9000), finished=2, n_trials=3,
                                on_front=True, front=[0, 1]))
        announce(search.pk, "cancel_requested", {})

    headers = [ORIGIN, session_cookie(user)]

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/",
                                             headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        await sync_to_async(progress)()
        messages = [await communicator.receive_json_from(timeout=5) for _ in range(5)]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()
        return snapshot, messages

    snapshot, messages = async_to_sync(scenario)()

    assert snapshot["type"] == "snapshot"
    assert snapshot["search"]["id"] == search.pk and snapshot["search"]["seq"] == 1
    assert [(t["number"], t["state"]) for t in snapshot["trials"]] == [(0, "running")]
    assert {m["type"] for m in messages} == {"event"}
    events = [m["event"] for m in messages]
    assert [e["kind"] for e in events] == ["trial_finished", "trial_started",
                                           "training_progress", "trial_finished",
                                           "cancel_requested"]
    assert [e["seq"] for e in events] == [2, 3, None, 4, 5]  # progress is transient
    assert [e["finished"] for e in events if e["kind"] == "trial_finished"] == [1, 2]
    assert events[0]["trial"]["psnr"] == 30.0 and events[2]["step"] == 5
    # What was broadcast was persisted first: rows and the event sequence agree.
    search.refresh_from_db()
    assert search.event_seq == 5 and search.finished_trials == 2
    assert [(t.number, t.state, t.on_front) for t in search.trials.all()] == [
        (0, "complete", True), (1, "complete", True)]


def test_a_closed_socket_leaves_the_group(search: Search, user: User) -> None:
    headers = [ORIGIN, session_cookie(user)]

    async def scenario() -> None:
        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/",
                                             headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        assert len(layer.groups.get(f"search-{search.pk}", {})) == 1
        await communicator.disconnect()
        assert not layer.groups.get(f"search-{search.pk}")

    async_to_sync(scenario)()


def _snapshot(path: str, user: User) -> dict[str, Any]:
    headers = [ORIGIN, session_cookie(user)]

    async def scenario() -> dict[str, Any]:
        communicator = WebsocketCommunicator(application(), path, headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        snapshot = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return snapshot

    return async_to_sync(scenario)()


def test_the_snapshot_is_read_once_with_slim_rows(search: Search, user: User,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One read per connect (it also checks the owner), and rows without their genome: the
    page reads a genome when a trial's detail opens."""
    from webapp.studio import consumers

    record_event(search.pk, "trial_started", {"number": 0, "genome": GENOME, "macs": 5000,
                                              "at": 1.0})
    calls: list[int | None] = []
    real = consumers.live_snapshot

    def counted(s: Search, after: int | None = None) -> dict[str, Any]:
        calls.append(after)
        return real(s, after)

    monkeypatch.setattr(consumers, "live_snapshot", counted)
    snapshot = _snapshot(f"/ws/searches/{search.pk}/", user)
    assert calls == [None]
    assert "partial" not in snapshot
    [row] = snapshot["trials"]
    assert "genome" not in row
    trial = search.trials.get()
    assert row == trial.to_dict(genome=False) and set(row) == set(Trial.ROW_FIELDS)
    assert trial.to_dict()["genome"] == GENOME


def test_after_n_sends_only_rows_changed_since(search: Search, user: User) -> None:
    """`?after=N` (the page embeds a snapshot at seq N): the search as it is now, and only
    the rows that events after N changed."""
    record_event(search.pk, "trial_started", {"number": 0, "genome": GENOME, "macs": 5000,
                                              "at": 1.0})
    record_event(search.pk, "trial_started", {"number": 1, "genome": GENOME, "macs": 6000,
                                              "at": 1.0})
    record_event(search.pk, "trial_finished", {"trial": record(0, 30.0, 5000), "finished": 1,
                                               "n_trials": 3, "on_front": True})
    snapshot = _snapshot(f"/ws/searches/{search.pk}/?after=2", user)
    assert snapshot["partial"] is True and snapshot["after"] == 2
    assert snapshot["search"]["seq"] == 3
    assert [(t["number"], t["state"], t["seq"]) for t in snapshot["trials"]] == [
        (0, "complete", 3)]
    assert _snapshot(f"/ws/searches/{search.pk}/?after=3", user)["trials"] == []
    # A client ahead of the database, or a malformed N: the whole snapshot.
    for after in ("99", "x", "-1"):
        snapshot = _snapshot(f"/ws/searches/{search.pk}/?after={after}", user)
        assert "partial" not in snapshot and len(snapshot["trials"]) == 2


def started(number: int) -> dict[str, Any]:
    return {"number": number, "genome": GENOME, "macs": 5000 + number, "at": 1.0}


def test_a_reconnect_after_n_gets_exactly_the_missed_events(search: Search, user: User) -> None:
    """The page's socket drops after event 2; events 3-4 happen meanwhile. Reopened with
    `?after=2`, its snapshot carries events 3 and 4, in order, and then only newer events
    arrive: an event broadcast before the snapshot was read is never sent again."""
    headers = [ORIGIN, session_cookie(user)]
    for number in (0, 1):
        record_event(search.pk, "trial_started", started(number))

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/?after=2",
                                             headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        snapshot = await communicator.receive_json_from(timeout=5)
        # Event 4, as if broadcast between the group join and the snapshot's read: the
        # snapshot has it, the socket must not send it again.
        from channels.layers import get_channel_layer

        stale = {"seq": 4, "kind": "trial_started", **started(3)}
        await get_channel_layer().group_send(f"search-{search.pk}",
                                             {"type": "search.event", "event": stale})
        await sync_to_async(announce)(search.pk, "cancel_requested", {})  # event 5, live
        messages = [await communicator.receive_json_from(timeout=5)]
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return snapshot, messages

    for number in (2, 3):  # while the page was away
        record_event(search.pk, "trial_started", started(number))
    snapshot, messages = async_to_sync(scenario)()
    assert snapshot["partial"] is True and snapshot["search"]["seq"] == 4
    assert [(e["seq"], e["kind"], e["number"]) for e in snapshot["events"]] == [
        (3, "trial_started", 2), (4, "trial_started", 3)]
    assert snapshot["events"] == [e.to_dict() for e in search.events.filter(seq__in=(3, 4))]
    assert [(t["number"], t["seq"]) for t in snapshot["trials"]] == [(2, 3), (3, 4)]
    assert [(m["type"], m["event"]["seq"], m["event"]["kind"]) for m in messages] == [
        ("event", 5, "cancel_requested")]
    # No `after`: a full snapshot, no events in it.
    assert "events" not in _snapshot(f"/ws/searches/{search.pk}/", user)


def test_too_many_missed_events_send_the_changed_rows_only(
        search: Search, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.studio import consumers

    monkeypatch.setattr(consumers, "REPLAY_MAX", 2)
    for number in range(3):
        record_event(search.pk, "trial_started", started(number))
    assert len(_snapshot(f"/ws/searches/{search.pk}/?after=1", user)["events"]) == 2
    snapshot = _snapshot(f"/ws/searches/{search.pk}/?after=0", user)
    assert "events" not in snapshot and len(snapshot["trials"]) == 3


def test_a_ping_joins_the_group_again_and_answers_the_seq(search: Search, user: User) -> None:
    """A Redis restart can wipe a live socket's group membership: a ping restores it."""
    headers = [ORIGIN, session_cookie(user)]
    record_event(search.pk, "trial_started", started(0))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/",
                                             headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)
        group = f"search-{search.pk}"
        [channel] = list(layer.groups[group])
        await layer.group_discard(group, channel)  # what a wiped Redis forgets
        await communicator.send_to(text_data='{"type": "ping"}')
        pong = await communicator.receive_json_from(timeout=5)
        await sync_to_async(announce)(search.pk, "cancel_requested", {})
        event = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return pong, event

    pong, event = async_to_sync(scenario)()
    assert pong == {"type": "pong", "seq": 1}
    assert event["event"]["kind"] == "cancel_requested" and event["event"]["seq"] == 2


def test_a_failing_channel_layer_closes_with_1012_and_one_log_line(
        search: Search, user: User, caplog: pytest.LogCaptureFixture) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    headers = [ORIGIN, session_cookie(user)]

    async def scenario() -> dict[str, Any]:
        from channels.layers import get_channel_layer

        communicator = WebsocketCommunicator(application(), f"/ws/searches/{search.pk}/",
                                             headers=headers)
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)

        async def down(*_: object) -> None:
            raise RedisConnectionError("Connection closed by server.")

        get_channel_layer().group_add = down  # the layer's instance only, for this test
        await communicator.send_to(text_data='{"type": "ping"}')
        closed = await communicator.receive_output(timeout=5)
        await communicator.wait(timeout=5)
        return closed

    with caplog.at_level("INFO"):
        closed = async_to_sync(scenario)()
    assert closed == {"type": "websocket.close", "code": 1012}
    assert [r.getMessage() for r in caplog.records if "channel layer failed" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info]
