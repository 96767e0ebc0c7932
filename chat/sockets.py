"""The chat WebSocket view: one ChatSession per connection.

Protocol (docs/protocol.md): the client sends `message` {"text", "nonce"}, `nick` {"name", "color"},
`members` {"after"} (the next page of the member list) and the heartbeat `ping`; the server sends
`message` events (history first, then live), `welcome`, `presence` (the member count and the first
page of who is here, in every worker), `presence_diff` (joins and leaves, coalesced per worker),
`members` pages, `resync`, `ack` {"nonce", "id"} for a stored message that carried a nonce, and
`error` {"code", "detail"} for bad input (with the `nonce` of a refused message, and `retry_after`
when it was refused for now: over the poster's budget), after which the connection stays open.
"""

import json
import random
import secrets

from django.core.exceptions import ValidationError
from django.http import HttpResponseForbidden, HttpResponseNotFound

from realtime.budgets import hold_off
from realtime.fanout.brokers import BrokerUnavailable
from realtime.db import read_user
from realtime.decorators import websocket
from realtime.envelope import ClientError, envelope, receive_events
from realtime.fanout.hub import get_hub
from realtime.presence import Page, get_presence

from .feed import RoomFeed, message_id
from .forms import NickForm, errors_detail
from .nonces import CLIENT_ID_PATTERN
from .services import LOBBY, Poster, PostingTooFast, post_message, room_channel, room_to_open, shared_backlog

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#469990", "#9a6324"]

RESYNC_DETAILS = {
    "too_far_behind": "Too many messages missed; here is recent history.",
    "unknown_since": "'since' is not a message this room still has; here is recent history.",
}


class RefusedMessage(ClientError):
    """A `message` refused, with its nonce so that the client knows which: `invalid_message` (it
    stops resending it), or `slow_down` with `retry_after` (it sends it again then)."""

    def __init__(self, detail, nonce, code="invalid_message", retry_after=None):
        super().__init__(code, detail)
        self.nonce = nonce if isinstance(nonce, str) else None
        self.retry_after = retry_after

    def as_event(self):
        data = {"code": self.code, "detail": self.detail}
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return envelope("error", data)


class ChatSession:
    def __init__(self, request, ws, room):
        self.ws = ws
        self.room = room
        self.room_name = room.name
        self.channel = room_channel(room.name)
        self.member_id = secrets.token_hex(6)  # this connection in presence lists and notices
        self.last_id = 0  # the client has every message up to this id: its resume point
        # A logged-in user chats under the account name; in a private room it cannot be changed.
        self.account_name = request.user.get_username() if request.user.is_authenticated else None
        self.name = self.account_name or f"guest-{random.randrange(16**4):04x}"
        self.color = random.choice(PALETTE)
        self.query = request.GET
        self.sender = sender_key(request, self.member_id)
        self.poster = Poster.of(request)  # whose posting budget, and account, its messages are
        self.subscription = None  # this connection's membership of the room's channel, once joined

    def run(self):
        room = self.room
        presence = get_presence()
        with get_hub().subscribe(self.channel, self.ws, paused=True) as subscription:
            # From here on a broker reconnect may drop messages for this client: the room's feed
            # in this process catches its members up (chat/feed.py).
            feed = RoomFeed.of(room)
            self.send_backlog(room)
            feed.sent_history(self.last_id)
            if "name" in self.query or "color" in self.query:
                nick = {"name": self.query.get("name", self.name), "color": self.query.get("color", self.color)}
                self.reply_to_errors(self.change_nick, nick, quietly=True)
            subscription.push(envelope("welcome", {"room": self.room_name, "last_id": self.last_id, **self.member()}))
            # Live messages only now: the client takes its resume point from the history and
            # `welcome`, so no live message may overtake them. And not after the presence query:
            # a busy room's messages and diffs pile up in the hold meanwhile, and a full hold
            # closes the client.
            subscription.resume(skip=self.already_sent)
            # Listed and given the first page in one round trip; announced in this worker's next
            # diff. The page says which diff it reflects (`seq`): the client skips older diffs.
            page = presence.join(self.channel, self.member_id, self.member(), labels={"room": self.room_name})
            subscription.push(self.presence_event(page))
            self.subscription = subscription
            try:
                for event, data in receive_events(self.ws):
                    self.reply_to_errors(self.dispatch, event, data)
            finally:
                presence.leave(self.channel, self.member_id)

    def presence_event(self, page):
        if page is None:  # the shared list is unreachable (Redis down): at least we are here
            page = Page(0, 1, None, [json.dumps(self.member())])
        return page.event("presence", {"room": self.room_name})

    def send_members_page(self, data):
        after = data.get("after")  # "": the first page (to page again after a diff left joins out)
        if not isinstance(after, str) or len(after) > 64:
            raise ClientError("invalid_cursor", "'after' must be \"\" or the 'next' of a presence or members event.")
        page = get_presence().page(self.channel, after)
        if page is None:
            raise ClientError("presence_unavailable", "The member list is unavailable for a moment; ask again later.")
        self.subscription.push(page.event("members", {"room": self.room_name}))

    def member(self):
        return {"id": self.member_id, "name": self.name, "color": self.color}

    def send_backlog(self, room):
        since = self.query.get("since")
        try:
            since = int(since) if since not in (None, "") else None
            if since is not None and since < 0:
                raise ValueError
        except ValueError:
            self.ws.send(ClientError("invalid_since", "'since' must be a message id (an integer).").as_event())
            since = None
        history = shared_backlog(room, since)
        if history.resync:
            self.ws.send(envelope("resync", {"reason": history.resync, "detail": RESYNC_DETAILS[history.resync]}))
        elif since is not None:
            self.last_id = since
        if history.messages:
            self.ws.send_frame(history.frames, messages=len(history.messages))
            self.last_id = history.messages[-1][0]

    def already_sent(self, payload):
        """True for a held live message the client already has: ids are consecutive in a room and
        committed in id order, so that is every id up to the backlog's last (or `since`)."""
        held_id = message_id(payload)
        return held_id is not None and held_id <= self.last_id

    def reply_to_errors(self, action, *args, **kwargs):
        try:
            action(*args, **kwargs)
        except ClientError as error:
            self.ws.send(error.as_event())

    def dispatch(self, event, data):
        if event == "message":
            self.post(data)
        elif event == "nick":
            self.change_nick(data)
        elif event == "members":
            self.send_members_page(data)
        else:
            raise ClientError("unknown_event",
                              f"Unknown event {event!r}; expected 'message', 'nick', 'members' or 'ping'.")

    def post(self, data):
        """Store the message. One that carries a nonce is answered with `ack` (also when it was stored
        before: a resend) or with an `error` that names the nonce (refused: resending will not help;
        or over the budget: `retry_after` says when to send it again)."""
        nonce = data.get("nonce")
        try:
            message = post_message(self.room_name, data.get("text"), self.name, self.color,
                                   nonce=nonce, sender=self.sender, poster=self.poster)
        except ValidationError as error:
            raise RefusedMessage(" ".join(error.messages), nonce) from None
        except PostingTooFast as error:
            self.ws.send(RefusedMessage(str(error), nonce, "slow_down", error.retry_after).as_event())
            hold_off(error.retry_after)  # what it sends meanwhile waits unread, at no cost to this worker
            return
        except BrokerUnavailable as error:
            self.acknowledge(nonce, error.message)
            raise ClientError("delivery_degraded", "Your message was saved but live delivery is degraded; "
                                                   "others will get it when they reconnect.") from None
        self.acknowledge(nonce, message)

    def acknowledge(self, nonce, message):
        if nonce is not None:
            self.ws.send(envelope("ack", {"nonce": nonce, "id": message.seq}))

    def change_nick(self, data, quietly=False):
        form = NickForm({"name": data.get("name"), "color": data.get("color")})
        if not form.is_valid():
            raise ClientError("invalid_nick", errors_detail(form), form.errors.get_json_data())
        if self.room.private and form.cleaned_data["name"] != self.account_name:
            raise ClientError("invalid_nick", "name: In a private room your name is your account name.")
        if (self.name, self.color) == (form.cleaned_data["name"], form.cleaned_data["color"]):
            return  # nothing changed: nothing to announce
        self.name, self.color = form.cleaned_data["name"], form.cleaned_data["color"]
        if not quietly:  # before joining (the name in the query string) there is nobody to tell
            get_presence().update(self.channel, self.member_id, self.member())


def sender_key(request, member_id):
    """Who sends this connection's messages, for recognising a resend after a reconnect: a logged-in
    user's account (any tab or device); else the `client` id the client keeps across its reconnects
    (client.js: one per browser tab), which only it knows; else this connection alone."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    client = request.GET.get("client", "")
    if CLIENT_ID_PATTERN.fullmatch(client):
        return f"client:{client}"
    return f"conn:{member_id}"


# A chat event carries at most 2,000 characters of text: 16 KiB holds them in UTF-8 and JSON
# escapes. Bigger is not a chat message; nobody gets to make the worker parse 1 MiB of JSON.
CHAT_MAX_MESSAGE_BYTES = 16 * 1024


@websocket(max_message_size=CHAT_MAX_MESSAGE_BYTES)
def chat_room(request, ws, room=LOBBY):
    # A logged-in user's session and account are read now, in a database reader's turn: a crowd
    # of handshakes never opens more connections than WEBSOCKET_DB_CONCURRENCY (realtime/db/).
    name, room = room, room_to_open(room, read_user(request))
    if room is None:
        return HttpResponseNotFound(f"No room named {name!r}: log in to open a new room.\n",
                                    content_type="text/plain; charset=utf-8")
    if room.private and not request.user.is_authenticated:
        return HttpResponseForbidden("This room is private: log in first.\n", content_type="text/plain; charset=utf-8")
    ChatSession(request, ws, room).run()
