"""The jobs feed's WebSocket route (included by the root WEBSOCKET_URLCONF under jobs/)."""

from django.urls import path

from .sockets import job_feed

urlpatterns = [
    path("", job_feed, name="jobs"),
]
