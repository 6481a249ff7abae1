"""Request-body limits enforced in front of Django, before any byte of a body is read.

Django's ASGI handler reads a whole body (spooled to disk) before a view runs, so no limit in
a view can act in time. This ASGI middleware knows each route's limit: small bodies for every
form and JSON endpoint, anonymous ones included; the upload limit only for the upload route
and only with a signed-in session. A declared Content-Length over the limit is answered 413
at once, and nothing is read; a chunked body is counted as it arrives and answered 413 as
soon as its running total passes the limit (the application then sees the client leave).
A chunked body within its limit is handed to Django with its length (LengthKnownASGIHandler).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler, ASGIRequest

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATH = "/clips/upload/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


@database_sync_to_async
def _signed_in(scope: Scope) -> bool:
    """Whether the request's session cookie names a live session of a user."""
    from http.cookies import SimpleCookie

    from django.contrib.sessions.backends.base import SessionBase
    from django.utils.module_loading import import_string

    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie") or "")
    except Exception:  # a malformed cookie header: no session
        return False
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return False
    store: type[SessionBase] = import_string(settings.SESSION_ENGINE + ".SessionStore")
    return bool(store(morsel.value).get("_auth_user_id"))


async def body_limit(scope: Scope) -> tuple[int, str]:
    """(bytes allowed, what to say when a body is larger) for this request."""
    small = settings.STUDIO_MAX_FORM_BYTES
    if scope["path"] == UPLOAD_PATH and await _signed_in(scope):
        from webapp.studio.uploads import MULTIPART_SLACK, too_large_message

        limit = settings.STUDIO_MAX_UPLOAD_BYTES
        return limit + MULTIPART_SLACK, too_large_message(limit)
    if scope["path"] == UPLOAD_PATH:
        return small, "sign in to upload a clip"
    return small, (f"the request body is too large: this page takes at most {small // 1024} KB "
                   "(only a clip upload, signed in, may be larger)")


async def refuse(scope: Scope, send: Send, message: str, status: int = 413) -> None:
    """JSON for scripts (the upload page's XMLHttpRequest, API clients); a short page for a
    browser's plain form post."""
    if "text/html" in (_header(scope, b"accept") or ""):
        body = (f"<!doctype html><title>Request refused</title><h1>Request refused</h1>"
                f"<p>{html.escape(message[:1].upper() + message[1:])}.</p>"
                f"<p><a href=\"/\">Back to the studio</a></p>").encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body, content_type = json.dumps({"error": message}).encode(), b"application/json"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, message = await body_limit(scope)
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                await refuse(scope, send, "the Content-Length header is not a number", 400)
                return
            if too_large:
                await refuse(scope, send, message)
                return
        state = {"read": 0, "refused": False}

        async def counted_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                state["read"] += len(event.get("body", b""))
                if state["read"] > limit:  # a chunked body past the limit: stop here
                    state["refused"] = True
                    await refuse(scope, send, message)
                    return {"type": "http.disconnect"}
            return event

        async def guarded_send(event: Message) -> None:
            if not state["refused"]:  # the 413 went out: the application has nothing to say
                await send(event)

        await self.app(scope, counted_receive, guarded_send)


class LengthKnownRequest(ASGIRequest):
    """Django's ASGI request, given the length a chunked body (Transfer-Encoding: chunked)
    does not declare: without one Django's multipart parser reads nothing, so a chunked upload
    lost its CSRF field and got 403. ASGIHandler.read_body has spooled the whole body (within
    the limit above) before the request is made, so its length is known."""

    def __init__(self, scope: Scope, body_file: Any) -> None:
        super().__init__(scope, body_file)
        if "CONTENT_LENGTH" not in self.META:
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                self.META["CONTENT_LENGTH"] = str(size)


class LengthKnownASGIHandler(ASGIHandler):
    """django.core.asgi.get_asgi_application()'s handler with LengthKnownRequest."""

    request_class = LengthKnownRequest
