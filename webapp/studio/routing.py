from django.urls import path

from webapp.studio.consumers import SearchConsumer

websocket_urlpatterns = [
    path("ws/searches/<int:search_id>/", SearchConsumer.as_asgi()),
]
