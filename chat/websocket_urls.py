"""The chat's WebSocket routes (included by the root WEBSOCKET_URLCONF under chat/)."""

from django.urls import path, re_path

from .models import ROOM_NAME_PATTERN
from .sockets import chat_room

urlpatterns = [
    path("", chat_room, name="chat"),
    re_path(rf"^(?P<room>{ROOM_NAME_PATTERN})/$", chat_room, name="chat_room"),
]
