"""The chat's topics: a room (`chat:<room>`, RoomChannel) and the room directory (`rooms`).

Protocol: docs/protocol.md, Channels. The one-topic route `/chat/<room>/` (chat/sockets.py) serves
the same RoomChannel in the older framing.
"""

import functools
import json
import random
import secrets

from django.core.exceptions import ValidationError

from realtime.channels import Channel, ChannelError, Forbidden, OverBudget, re_topic, topic
from realtime.fanout.brokers import BrokerUnavailable
from realtime.fanout.hub import get_hub
from realtime.presence import Page, get_presence

from .directory import DIRECTORY_CHANNEL, get_directory
from .feed import RoomFeed
from .forms import NickForm, errors_detail
from .models import ROOM_NAME_PATTERN, Message
from .nonces import CLIENT_ID_PATTERN
from .services import Poster, PostingTooFast, post_message, room_channel, room_to_open, shared_backlog

SERVER_COLOR = "#555555"  # server code's messages (manage.py chat_say's default too)
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#469990", "#9a6324"]


class RefusedMessage(ChannelError):
    """`invalid_message`, with the nonce of the message refused so that the client stops resending it."""

    def __init__(self, detail, nonce):
        self.nonce = nonce if isinstance(nonce, str) else None
        super().__init__("invalid_message", detail, **({"nonce": self.nonce} if self.nonce is not None else {}))


def open_room(name, user):
    """The Room `user` joins as `name`: refused when it does not exist and may not be created by this
    user (`not_found`), or is private and the user is anonymous (`forbidden`)."""
    room = room_to_open(name, user)
    if room is None:
        raise ChannelError("not_found", f"No room named {name!r}: log in to open a new room.")
    if room.private and not user.is_authenticated:
        raise Forbidden("This room is private: log in first.")
    return room


class RoomChannel(Channel):
    """One member of a room: the history it missed, live messages, presence; it posts, renames
    itself and pages through the member list."""

    room = channel = subscription = member_id = None
    has_history = has_presence = True  # (presence's group is the room's channel: the topic's name)

    def join(self, params):
        self.room = room = self.room or open_room(self.kwargs["room"], self.user)  # (a route may have opened it)
        self.channel = room_channel(room.name)
        self.member_id = secrets.token_hex(6)  # this member in presence lists and notices
        # A logged-in user chats under the account name; in a private room it cannot be changed.
        self.account_name = self.user.get_username() if self.user.is_authenticated else None
        self.name = self.account_name or f"guest-{random.randrange(16**4):04x}"
        self.color = random.choice(PALETTE)
        if "name" in params or "color" in params:  # before anything is read: a refused join costs nothing
            self.change_nick({"name": params.get("name", self.name), "color": params.get("color", self.color)},
                             quietly=True)
        self.sender = sender_key(self.user, params.get("client"), self.member_id)
        self.poster = Poster.of(self.user, self.request)  # whose posting budget its messages spend
        # The room's feed in this process (chat/feed.py) sees every message before its members: it
        # numbers them for the subscription (which drops what the history had) and catches members
        # up after a broker reconnect. Live messages are held until the reply is out (joined()).
        feed_of_room = functools.partial(RoomFeed, room)
        self.subscription = self.subscribe(self.channel, paused=True, watcher=feed_of_room)
        feed = get_hub().watcher(self.channel, feed_of_room)
        feed.sent_history(self.send_history(shared_backlog(room, self.since)))
        return {"room": room.name, **self.member()}

    def joined(self):
        # Live messages only now: the client takes its resume point from the history and the reply,
        # so no live message may overtake them; a live copy of one the history had is not sent again.
        # And not after the presence query: a busy room's messages and diffs pile up in the hold
        # meanwhile, and a full hold closes the client.
        self.subscription.resume(floor=self.resume.offset)
        # Listed and given the first page in one round trip; announced in this worker's next diff.
        # The page says which diff it reflects (`seq`): the client skips older diffs.
        page = get_presence().join(self.channel, self.member_id, self.member(), labels={"room": self.room.name})
        self.subscription.push(self.presence_event(page))

    def leave(self):
        if self.subscription is not None:
            get_presence().leave(self.channel, self.member_id)

    def member(self):
        return {"id": self.member_id, "name": self.name, "color": self.color}

    def presence_event(self, page):
        if page is None:  # the shared list is unreachable (Redis down): at least we are here
            page = Page(0, 1, None, [json.dumps(self.member())])
        return page.event("presence", {"room": self.room.name})

    # --- the server API (docs/api.md) ---------------------------------------------------------

    @classmethod
    def publish_from_server(cls, topic, kwargs, event, data, sender, nonce):
        """A `message` {"text", "name", "color"} posted as any server code posts (chat_say): stored
        once per sender and nonce, numbered, then published."""
        if event != "message":
            raise ChannelError("invalid_event", 'A room takes the event "message" {"text", "name", "color"}.')
        try:
            message = post_message(kwargs["room"], data.get("text"), data.get("name", "server"),
                                   data.get("color", SERVER_COLOR), nonce=nonce, sender=sender)
        except ValidationError as error:
            raise ChannelError("invalid_message", " ".join(error.messages)) from None
        except BrokerUnavailable as error:
            raise ChannelError("delivery_degraded", "Stored, but not delivered live: the broker is unavailable. "
                                                    "Members get it when they resume.", offset=error.message.seq) from None
        return {"offset": message.seq}

    @classmethod
    def read_history(cls, topic, kwargs, before, limit):
        messages = Message.objects.select_related("room").filter(room__name=kwargs["room"]).order_by("-seq")
        if before is not None:
            messages = messages.filter(seq__lt=before)
        return [(message.seq, "message", message.as_event_data()) for message in messages[:limit]]

    # --- what a member pushes -----------------------------------------------------------------

    def handle_message(self, data):
        """Store the message: the reply is its id (also for a resend of the same nonce). Refused:
        `invalid_message` (resending will not help), `rate_limited` (over the poster's budget: send it
        again after `retry_after`); stored but not delivered live: `delivery_degraded`."""
        nonce = data.get("nonce")
        self.reply_first(self.subscription)  # the sender learns its message's id before it sees the copy
        try:
            message = post_message(self.room.name, data.get("text"), self.name, self.color,
                                   nonce=nonce, sender=self.sender, poster=self.poster)
        except ValidationError as error:
            raise RefusedMessage(" ".join(error.messages), nonce) from None
        except PostingTooFast as error:  # nothing stored: the client sends it again later
            raise OverBudget(str(error), error.retry_after, **({"nonce": nonce} if isinstance(nonce, str) else {}))
        except BrokerUnavailable as error:
            raise ChannelError("delivery_degraded", "Your message was saved but live delivery is degraded; "
                                                    "others will get it when they reconnect.",
                               id=error.message.seq) from None
        return {"id": message.seq}

    def handle_nick(self, data):
        self.change_nick(data)
        return {}

    def handle_members(self, data):
        """The page of the member list after the cursor `after` ("": the first page)."""
        after = data.get("after")
        if not isinstance(after, str) or len(after) > 64:
            raise ChannelError("invalid_cursor", "'after' must be \"\" or the 'next' of a presence or members event.")
        page = get_presence().page(self.channel, after)
        if page is None:
            raise ChannelError("presence_unavailable", "The member list is unavailable for a moment; ask again later.")
        return {"room": self.room.name, "seq": page.seq, "count": page.count, "members": page.members,
                "next": page.next}

    def change_nick(self, data, quietly=False):
        form = NickForm({"name": data.get("name"), "color": data.get("color")})
        if not form.is_valid():
            raise ChannelError("invalid_nick", errors_detail(form), form.errors.get_json_data())
        if self.room.private and form.cleaned_data["name"] != self.account_name:
            raise ChannelError("invalid_nick", "name: In a private room your name is your account name.")
        if (self.name, self.color) == (form.cleaned_data["name"], form.cleaned_data["color"]):
            return  # nothing changed: nothing to announce
        self.name, self.color = form.cleaned_data["name"], form.cleaned_data["color"]
        if not quietly:  # before joining (the join's params) there is nobody to tell
            get_presence().update(self.channel, self.member_id, self.member())


def sender_key(user, client, member_id):
    """Who sends this member's messages, for recognising a resend after a reconnect: a logged-in
    user's account (any tab or device); else the `client` id the client keeps across its reconnects
    (the browser client: one per tab), which only it knows; else this member alone."""
    if user.is_authenticated:
        return f"user:{user.pk}"
    if isinstance(client, str) and CLIENT_ID_PATTERN.fullmatch(client):
        return f"client:{client}"
    return f"conn:{member_id}"


class RoomDirectoryChannel(Channel):
    """`rooms`: the public rooms with the most members, computed once per process (chat/directory.py)."""

    server_publishes = False

    def join(self, params):
        directory = get_directory()
        self.subscribe(DIRECTORY_CHANNEL)
        return directory.latest


topicpatterns = [
    re_topic(rf"^chat:(?P<room>{ROOM_NAME_PATTERN})$", RoomChannel, name="chat-room"),
    topic("rooms", RoomDirectoryChannel, name="rooms"),
]
