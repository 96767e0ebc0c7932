"""WEBSOCKET_URLCONF: the routes the websocket worker serves (reverse them with {% websocket_url %})."""

from django.urls import path

from demos import sockets as demos

urlpatterns = [
    path("echo/", demos.echo, name="echo"),
    path("ping/", demos.ping, name="ping"),
]
