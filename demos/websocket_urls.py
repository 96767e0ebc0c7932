"""The demos' WebSocket routes, on the same paths as their pages (project/urls.py)."""

from django.urls import path

from . import sockets

urlpatterns = [
    path("echo/", sockets.echo, name="echo"),
    path("ping/", sockets.ping, name="ping"),
    path("time/", sockets.clock, name="time"),
]
