"""The search page's WebSocket: ownership check, a snapshot on connect, then increments.

The consumer joins the group before reading the snapshot, and the client drops events whose
`seq` is not newer than the snapshot's, so nothing falls between the two.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webapp.studio.models import Search


@database_sync_to_async
def load_snapshot(search_id: int, user_id: int) -> dict[str, Any] | None:
    search = Search.objects.filter(pk=search_id, owner_id=user_id).first()
    if search is None:
        return None
    return {"search": search.to_dict(), "trials": [t.to_dict() for t in search.trials.all()]}


class SearchConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        self.search_id = int(self.scope["url_route"]["kwargs"]["search_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        exists = await load_snapshot(self.search_id, user.pk)
        if exists is None:  # someone else's search, or none: same answer
            await self.close(code=4403)
            return
        self.group = f"search-{self.search_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await load_snapshot(self.search_id, user.pk)
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def search_event(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "event", "event": message["event"]})
