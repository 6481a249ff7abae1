"""ASGI entry point (webapp.serve runs it): HTTP through the body limits and Django,
WebSockets through Channels.

In the embedded mode it also starts the in-process Celery worker thread, and remembers the
server's event loop so that worker can broadcast through the in-memory channel layer.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, for our own handler

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from webapp.body_limits import BodyLimitMiddleware, LengthKnownASGIHandler  # noqa: E402
from webapp.studio.broadcast import remember_server_loop  # noqa: E402
from webapp.studio.routing import websocket_urlpatterns  # noqa: E402

django_asgi = LengthKnownASGIHandler()  # a chunked upload is parsed like any other
router = ProtocolTypeRouter({
    "http": BodyLimitMiddleware(django_asgi),
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})


async def application(scope, receive, send):  # noqa: ANN001  # the ASGI signature
    remember_server_loop()
    await router(scope, receive, send)


if settings.STUDIO_INPROCESS_WORKER:
    from webapp.studio.embedded_worker import start_embedded_worker

    start_embedded_worker()
