"""The search page's WebSocket: ownership check, a snapshot on connect, then increments.

The consumer joins the group before reading the snapshot, and the client drops events whose
`seq` is not newer than the snapshot's, so nothing falls between the two.

The snapshot's trial rows are slim (`Trial.to_dict(genome=False)`: what the table and the
chart show); the page reads a trial's genome on demand (api.trial_data). The page itself
embeds a snapshot in its HTML (views.search_detail) and connects with `?after=N`, N its
`search.seq`: the socket's snapshot then holds only the rows changed by events after N
(`"partial": true`), and the search as it is now.

Reconnects (the page retries with backoff, `?after=N`, N the last event it applied) get the
same partial snapshot with the persisted events after N in it (`events`, in order, when at
most REPLAY_MAX: beyond that the rows are the shorter catch-up), and the socket never sends
an event the snapshot already covered: each event reaches a client once across reconnects.

When the channel layer (Redis) fails under an open socket, the socket closes with 1012
(service restart) and one log line, and the page reconnects. A Redis restart can also wipe
the group membership of a socket that survived it: each {"type": "ping"} (the page sends one
every 20 s) joins the group again and answers the search's current `seq`, so a page that
missed events reads them back.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from webapp.studio.models import Search, Trial

log = logging.getLogger(__name__)
MAX_ID = 2**63 - 1  # the database's largest key: a longer id names no search
REPLAY_MAX = 500  # missed events sent on a reconnect; more: the changed rows only
LAYER_ERRORS = (RedisError, OSError)  # the channel layer's server went away


def live_snapshot(search: Search, after: int | None = None) -> dict[str, Any]:
    """The search and its slim trial rows (only rows changed after event `after`, if given).

    The search is read before the rows, so the rows are at least as new as its `seq`."""
    trials = search.trials.all()
    if after is not None:
        trials = trials.filter(seq__gt=after)
    # Trial.to_dict(genome=False), read as plain values: no model instance per row.
    snapshot: dict[str, Any] = {"search": search.to_dict(),
                                "trials": list(trials.values(*Trial.ROW_FIELDS))}
    if after is not None:
        snapshot.update(partial=True, after=after)
    return snapshot


@database_sync_to_async
def load_snapshot(search_id: int, user_id: int,
                  after: int | None = None) -> dict[str, Any] | None:
    """The user's search's snapshot, or None when it is someone else's or none: the
    ownership check is the query on the owner that reads the search."""
    search = Search.objects.filter(pk=search_id, owner_id=user_id).first()
    if search is None:
        return None
    if after is not None and after > search.event_seq:
        after = None  # the client is ahead of this database: give it everything
    snapshot = live_snapshot(search, after)
    if after is not None:
        # Read after the search: every event up to its seq is committed (record_event).
        missed = list(search.events.filter(seq__gt=after, seq__lte=search.event_seq)
                      .order_by("seq")[:REPLAY_MAX + 1])
        if len(missed) <= REPLAY_MAX:
            snapshot["events"] = [event.to_dict() for event in missed]
    return snapshot


@database_sync_to_async
def current_seq(search_id: int) -> int | None:
    return Search.objects.filter(pk=search_id).values_list("event_seq", flat=True).first()


def _after(scope: dict[str, Any]) -> int | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after")
    try:
        after = int(values[0]) if values else None
    except ValueError:
        return None
    return after if after is not None and after >= 0 else None


class SearchConsumer(AsyncJsonWebsocketConsumer):
    snapshot_seq = 0  # the seq of the snapshot sent: events up to it are in there

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A channel layer that fails (Redis restarted) closes the socket with 1012 and one
        log line, instead of a traceback and 1011: the page reconnects and catches up."""
        try:
            await super().__call__(scope, receive, send)
        except LAYER_ERRORS as error:
            log.warning("search socket closed: the channel layer failed (%s)", error)
            try:
                await send({"type": "websocket.close", "code": 1012})
            except Exception:  # the client is gone already
                pass

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.search_id = int(self.scope["url_route"]["kwargs"]["search_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if self.search_id > MAX_ID:  # no such search: the same answer as someone else's
            await self.close(code=4403)
            return
        # Join the group before reading the snapshot (nothing falls between the two); one
        # read checks the owner and loads the snapshot; accept and snapshot leave together.
        group = f"search-{self.search_id}"
        await self.channel_layer.group_add(group, self.channel_name)
        snapshot = await load_snapshot(self.search_id, user.pk, _after(self.scope))
        if snapshot is None:  # someone else's search, or none: same answer
            await self.channel_layer.group_discard(group, self.channel_name)
            await self.close(code=4403)
            return
        self.group = group
        self.snapshot_seq = snapshot["search"]["seq"]
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None,
                      **kwargs: Any) -> None:
        """The page only listens; a client may send {"type": "ping"}. Anything else gets an
        error message back and the socket stays open (one log line, no traceback)."""
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "ping":
            # Join again: a Redis restart may have wiped this socket's group membership.
            await self.channel_layer.group_add(self.group, self.channel_name)
            await self.send_json({"type": "pong", "seq": await current_seq(self.search_id)})
            return
        log.info("search %s socket: ignored a malformed or unknown message", self.search_id)
        await self.send_json({"type": "error", "message": (
            'this socket only sends progress; the one message it takes is {"type": "ping"} '
            "as JSON text")})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def search_event(self, message: dict[str, Any]) -> None:
        if not hasattr(self, "group"):  # refused: it was in the group for a moment
            return
        event = message["event"]
        if event.get("seq") is not None and event["seq"] <= self.snapshot_seq:
            return  # broadcast between joining the group and reading: the snapshot has it
        await self.send_json({"type": "event", "event": event})
