"""The chat WebSocket view: one ChatSession per connection.

Protocol (docs/protocol.md): the client sends `message` {"text"} and `nick` {"name", "color"};
the server sends `message` events (history first, then live), `join`/`leave`/`nick` notices,
and `error` {"code", "detail"} for bad input, after which the connection stays open.
"""

import json
import logging
import random

from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden
from django.utils import timezone

from realtime.broker import BrokerUnavailable, publish
from realtime.decorators import websocket
from realtime.envelope import ClientError, envelope, parse_envelope
from realtime.hub import get_hub

from .forms import NickForm, errors_detail
from .models import Room
from .services import backlog, post_message, room_channel

log = logging.getLogger("chat")

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#469990", "#9a6324"]


def now_iso():
    return timezone.now().isoformat().replace("+00:00", "Z")


def message_id(payload):
    """The id of a published `message` event (None for notices)."""
    return json.loads(payload)["data"].get("id")


class ChatSession:
    def __init__(self, request, ws, room):
        self.ws = ws
        self.room = room
        self.room_name = room.name
        self.channel = room_channel(room.name)
        self.last_id = 0
        # A logged-in user chats under the account name; in a private room it cannot be changed.
        self.account_name = request.user.get_username() if request.user.is_authenticated else None
        self.name = self.account_name or f"guest-{random.randrange(16**4):04x}"
        self.color = random.choice(PALETTE)
        self.query = request.GET

    def run(self):
        room = self.room
        self.ws.accept()
        with get_hub().subscribe(self.channel, self.ws, paused=True) as subscription:
            self.send_backlog(room)
            subscription.resume(skip=self.already_sent)
            subscription.on_resync = lambda: subscription.push(envelope("resync", {
                "reason": "broker_reconnected", "detail": "Messages may have been missed: reconnect with 'since'."}))
            if "name" in self.query or "color" in self.query:
                nick = {"name": self.query.get("name", self.name), "color": self.query.get("color", self.color)}
                self.reply_to_errors(self.change_nick, nick, announce=False)
            subscription.push(envelope("welcome", {"room": self.room_name, "name": self.name, "color": self.color,
                                                   "last_id": self.last_id or None}))
            self.announce("join", {"name": self.name, "color": self.color})
            try:
                while (raw := self.ws.receive()) is not None:
                    self.handle(raw)
            finally:
                self.announce("leave", {"name": self.name, "color": self.color})

    def send_backlog(self, room):
        since = self.query.get("since")
        try:
            since = int(since) if since not in (None, "") else None
        except ValueError:
            self.ws.send(ClientError("invalid_since", "'since' must be a message id (an integer).").as_event())
            since = None
        messages, resync = backlog(room, since)
        if resync:
            self.ws.send(envelope("resync", {"reason": resync, "detail": "Too many messages missed; here is recent history."}))
        for message in messages:
            self.ws.send(envelope("message", message.as_event_data()))
            self.last_id = message.id

    def already_sent(self, payload):
        """True for a live message the backlog already contained."""
        sent_id = message_id(payload)
        return sent_id is not None and sent_id <= self.last_id

    def reply_to_errors(self, action, *args, **kwargs):
        try:
            action(*args, **kwargs)
        except ClientError as error:
            self.ws.send(error.as_event())

    def handle(self, raw):
        self.reply_to_errors(self.dispatch, raw)

    def dispatch(self, raw):
        event, data = parse_envelope(raw)
        if event == "message":
            self.post(data)
        elif event == "nick":
            self.change_nick(data)
        else:
            raise ClientError("unknown_event", f"Unknown event {event!r}; expected 'message' or 'nick'.")

    def post(self, data):
        try:
            post_message(self.room_name, data.get("text"), self.name, self.color)
        except ValidationError as error:
            raise ClientError("invalid_message", " ".join(error.messages)) from None
        except BrokerUnavailable:
            raise ClientError("delivery_degraded", "Your message was saved but live delivery is degraded; "
                                                   "others will get it when they reconnect.") from None

    def change_nick(self, data, announce=True):
        form = NickForm({"name": data.get("name"), "color": data.get("color")})
        if not form.is_valid():
            raise ClientError("invalid_nick", errors_detail(form), form.errors.get_json_data())
        if self.room.private and form.cleaned_data["name"] != self.account_name:
            raise ClientError("invalid_nick", "name: In a private room your name is your account name.")
        old_name = self.name
        self.name, self.color = form.cleaned_data["name"], form.cleaned_data["color"]
        if announce:
            self.announce("nick", {"old_name": old_name, "name": self.name, "color": self.color})

    def announce(self, event, data):
        try:
            publish(self.channel, envelope(event, {"room": self.room_name, "ts": now_iso(), **data}))
        except BrokerUnavailable:
            log.warning("could not announce %s in %s: broker unavailable", event, self.room_name)


@websocket
def chat_room(request, ws, room="lobby"):
    room, _ = Room.objects.get_or_create(name=room)
    if room.private and not request.user.is_authenticated:
        return HttpResponseForbidden("This room is private: log in first.\n", content_type="text/plain; charset=utf-8")
    ChatSession(request, ws, room).run()
