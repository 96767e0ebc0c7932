"""WEBSOCKET_URLCONF: the routes the websocket worker serves (reverse them with {% websocket_url %})."""

from django.urls import path, re_path

from chat.models import ROOM_NAME_PATTERN
from chat.sockets import chat_room
from demos import sockets as demos
from jobs.sockets import job_feed

urlpatterns = [
    path("echo/", demos.echo, name="echo"),
    path("ping/", demos.ping, name="ping"),
    path("time/", demos.clock, name="time"),
    path("jobs/", job_feed, name="jobs"),
    path("chat/", chat_room, name="chat"),
    re_path(rf"^chat/(?P<room>{ROOM_NAME_PATTERN})/$", chat_room, name="chat_room"),
]
