"""Sending to a search's channel group from any thread.

channels-redis is safe from sync code (a Celery worker). The in-memory layer of the embedded
mode lives in the server's event loop and is not safe to call from another thread's loop, so
there the coroutine is handed to the server's loop (recorded when the ASGI app first runs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

log = logging.getLogger(__name__)
_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop() -> None:
    """Called from inside the ASGI app: the loop the in-memory layer's queues belong to."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if isinstance(layer, InMemoryChannelLayer):
            loop = _server_loop
            if loop is None or loop.is_closed():
                return  # no server in this process: nobody can be listening
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.create_task(layer.group_send(group, message))
            else:
                asyncio.run_coroutine_threadsafe(layer.group_send(group, message),
                                                 loop).result(timeout=5)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # a broadcast failure must never fail the search; rows are persisted
        log.exception("broadcast to %s failed", group)
