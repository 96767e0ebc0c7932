from django.http import Http404
from django.shortcuts import render

from . import conf
from .models import Room
from .services import LOBBY, may_create_room


def room(request, room=LOBBY):
    # The page opens the room's socket: show it only where the socket will be let in (which
    # creates the room), rather than a page that reconnects forever.
    if not (may_create_room(room, request.user) or Room.objects.filter(name=room).exists()):
        raise Http404(f"No room named {room!r}: log in to open a new room.")
    # The page's outbox gives up on a message after the window in which the server recognises a resend.
    outbox_max_age = round(conf.get("CHAT_NONCE_WINDOW") * 1000)
    return render(request, "chat/room.html", {"room": room, "outbox_max_age": outbox_max_age})
