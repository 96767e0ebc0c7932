"""Posting to a room from any Django code: a WebSocket view, a view, a signal, a command."""

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from realtime.broker import publish
from realtime.envelope import envelope

from .forms import MessageForm, NickForm, errors_detail
from .models import ROOM_NAME_PATTERN, Message, Room

HISTORY_ON_JOIN = 50
# A client resuming from further back than this many messages gets `resync` and recent history.
RESUME_LIMIT = 1000


def room_channel(room_name):
    return f"chat:{room_name}"


def validate_room_name(room_name):
    if not re.fullmatch(ROOM_NAME_PATTERN, room_name or ""):
        raise ValidationError("A room name is 1-64 of a-z, 0-9, '-' and '_'.")
    return room_name


def post_message(room_name, text, name, color):
    """Validate, store and publish a chat message; returns the stored Message.

    Raises ValidationError for bad input, and BrokerUnavailable when the message was stored but
    could not be published (clients get it from history when they resume).
    """
    validate_room_name(room_name)
    message_form, nick_form = MessageForm({"text": text}), NickForm({"name": name, "color": color})
    for form in (message_form, nick_form):
        if not form.is_valid():
            raise ValidationError(errors_detail(form))
    with transaction.atomic():
        room, _ = Room.objects.get_or_create(name=room_name)
        message = Message.objects.create(room=room, text=message_form.cleaned_data["text"], **nick_form.cleaned_data)
        # Published only once committed, or a client could fetch history that lacks it.
        transaction.on_commit(lambda: publish(room_channel(room_name), envelope("message", message.as_event_data())))
    return message


def backlog(room, since=None):
    """(messages to send on join, resync reason or None): the last 50, or everything after `since`."""
    if since is None:
        return list(reversed(room.messages.order_by("-id")[:HISTORY_ON_JOIN])), None
    missed = list(room.messages.filter(id__gt=since).order_by("id")[: RESUME_LIMIT + 1])
    if len(missed) > RESUME_LIMIT:
        return list(reversed(room.messages.order_by("-id")[:HISTORY_ON_JOIN])), "too_far_behind"
    return missed, None
