from django.shortcuts import render


def room(request, room="lobby"):
    return render(request, "chat/room.html", {"room": room})
