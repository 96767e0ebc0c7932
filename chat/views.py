from django.http import Http404
from django.shortcuts import redirect, render

from . import conf
from .forms import OpenRoomForm
from .models import Room
from .services import LOBBY, may_create_room


def room(request, room=LOBBY):
    """A room's page. The "Open a room" form comes here too (GET /chat/?name=<room>: every other
    path under /chat/ may be a room's): it goes to that room's page, whose join opens a new room for
    a logged-in user; a guest asking for one that does not exist stays here, told why."""
    open_form, status = OpenRoomForm(user=request.user), 200
    if "name" in request.GET:
        open_form = OpenRoomForm(request.GET, user=request.user)
        if open_form.is_valid():
            return redirect("chat:room", room=open_form.cleaned_data["name"])
        status = 400
    # The page joins the room's topic: show it only where the join will be let in (which creates
    # the room), rather than a page whose room never answers.
    if not (may_create_room(room, request.user) or Room.objects.filter(name=room).exists()):
        raise Http404(f"No room named {room!r}: log in to open a new room.")
    context = {
        "room": room,
        "open_form": open_form,
        # The page's outbox gives up on a message after the window in which the server recognises a resend.
        "outbox_max_age": conf.get("CHAT_NONCE_WINDOW"),
    }
    return render(request, "chat/room.html", context, status=status)
