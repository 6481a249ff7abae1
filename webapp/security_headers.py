"""Content-Security-Policy on every response, without 'unsafe-inline'.

Django 5.2 has no CSP of its own (it arrives in 6.0), so this one small middleware sets it.
The studio's pages carry no inline script, style attribute or event handler: every script
and stylesheet is a file under /static/, so the policy can forbid inline code outright, and
an injected `<script>` or `onerror=` would not run even if escaping ever failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

# 'self' covers ws:/wss: of the same host in CSP Level 3 (the WebSocket of the live page).
# img-src data:/blob: and media-src blob: are the canvases' and players' own object URLs;
# nothing is loaded from another origin ("no request leaves loopback").
DEFAULT_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy_header(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in policy.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy (settings.STUDIO_CSP, a dict of directives) unless a view set one.
    Sync and async alike, so the ASGI handler never switches threads for it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.header = policy_header(getattr(settings, "STUDIO_CSP", DEFAULT_POLICY))
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        return self._mark(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._mark(await self.get_response(request))

    def _mark(self, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
