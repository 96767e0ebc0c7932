"""Posting to a room from any Django code: a WebSocket view, a view, a signal, a command."""

import logging
from dataclasses import dataclass
import re

from django.core.exceptions import ValidationError
from django.db import transaction

from realtime import budgets
from realtime.budgets import Rate, budget_holder, spend
from realtime.channels import History
from realtime.db import SharedReads, run_read, run_write
from realtime.fanout.brokers import BrokerUnavailable, publish

from . import conf
from .forms import MessageForm, NickForm, errors_detail
from .mentions import notify_mentions
from .models import ROOM_NAME_PATTERN, Message, Room
from .nonces import earlier_copy, prune, validate_nonce

log = logging.getLogger("chat")

LOBBY = "lobby"  # the room of /chat/, open to everyone from the start
HISTORY_ON_JOIN = 50
# A client resuming from further back than this many messages gets `resync` and recent history.
RESUME_LIMIT = 1000


def room_channel(room_name):
    return f"chat:{room_name}"


def room_to_open(room_name, user):
    """The Room a user opens at /chat/<name>/, or None when it does not exist and may not be created.

    Rooms are rows: anyone joins one that exists; only a logged-in user (or the admin, or server
    code such as `manage.py chat_say`) creates one, so anonymous clients trying names cannot grow
    the table, and their connects cost a read, not a write. The lobby (/chat/) is always open.
    """
    room = shared_room(room_name)
    if room is None and may_create_room(room_name, user):
        room = run_read(lambda: Room.objects.get_or_create(name=room_name)[0])
    return room


def may_create_room(room_name, user):
    return room_name == LOBBY or user.is_authenticated


def validate_room_name(room_name):
    if not re.fullmatch(ROOM_NAME_PATTERN, room_name or ""):
        raise ValidationError("A room name is 1-64 of a-z, 0-9, '-' and '_'.")
    return room_name


@dataclass(frozen=True)
class Poster:
    """A client posting from a socket: whose budget its messages spend (its account's, or a guest's
    address's, shared by all its sockets on every worker), and the account that marks them."""

    account: str  # the logged-in user's username; "" for a guest
    budget_holder: str  # "user:<pk>" or "addr:<address, or an IPv6 /64>"

    @classmethod
    def of(cls, user, request):
        """The poster of a socket: its user (its session's or token's), else its request's address."""
        return cls(user.get_username() if user.is_authenticated else "", budget_holder(user, request))

    def rate(self):
        if self.account:
            return Rate(conf.get("CHAT_POST_RATE"), conf.get("CHAT_POST_BURST"))
        return Rate(conf.get("CHAT_GUEST_POST_RATE"), conf.get("CHAT_GUEST_POST_BURST"))


# A message costs one unit of its poster's budget per started KiB of text: budgets bound bytes too.
POST_UNIT_BYTES = 1024


def cost_of(text):
    """What posting `text` costs its poster's budget: a unit per started KiB (1 if it is no text)."""
    size = len(text.encode()) if isinstance(text, str) else 0
    return 1 + max(size - 1, 0) // POST_UNIT_BYTES


class PostingTooFast(Exception):
    """Over the poster's budget: nothing was stored. `retry_after`: in how many seconds it would be."""

    def __init__(self, poster, retry_after):
        self.retry_after = budgets.retry_after(retry_after)
        whose = "your account's" if poster.account else "your address's"
        super().__init__(f"Too many messages: over {whose} posting budget. "
                         f"Nothing was stored; send it again in {self.retry_after:g} s.")


def post_message(room_name, text, name, color, nonce=None, sender="server", poster=None):
    """Validate, store and publish a chat message; returns the stored Message (its `seq` is the id
    clients see).

    With a `nonce`, a message `sender` already stored in the room with the same nonce (within
    CHAT_NONCE_WINDOW) is not stored again: that original is returned, and nothing is published.
    A sender is any string that tells its messages from others' (a socket's is its account or
    client id; server code may use its own name). A `poster` (a client's socket posting) spends
    its budget first and marks the message with its account, and the `@name`s of a message it
    stores now are notified (chat/mentions.py): a resend stores nothing, so it notifies nobody again.

    Raises ValidationError for bad input (or a nonce already used for another text),
    PostingTooFast when over the poster's budget (nothing stored), and BrokerUnavailable when the
    message was stored but could not be published (its `message` attribute is the stored Message;
    clients get it from history when they resume: a connected client sees the hole in the ids
    when the next message arrives, and resumes).
    """
    validate_room_name(room_name)
    validate_nonce(nonce)
    # Before the forms: a client over its budget costs little more than a lookup (realtime/budgets.py).
    if poster is not None and (wait := spend("chat-post", poster.budget_holder, poster.rate(), cost_of(text))):
        raise PostingTooFast(poster, wait)
    message_form, nick_form = MessageForm({"text": text}), NickForm({"name": name, "color": color})
    for form in (message_form, nick_form):
        if not form.is_valid():
            raise ValidationError(errors_detail(form))
    text = message_form.cleaned_data["text"]
    account = poster.account if poster is not None else ""
    # In a websocket worker, by one of its few database writers (realtime/db/): a posting storm
    # never opens a connection per socket or per message.
    nick = nick_form.cleaned_data
    message, stored_now = run_write(lambda: store_message(room_name, text, nick, nonce, sender, account))
    if stored_now and poster is not None:
        notify_mentions(message, poster.account)
    return message


def store_message(room_name, text, nick, nonce, sender, account):
    """post_message's transaction, once the input is valid: (the stored message, True), or (the
    original, False) for a resend."""
    with transaction.atomic():
        # The room row stays locked until the commit (on SQLite the IMMEDIATE transaction locks the
        # whole database): posts into one room take turns, so its ids are 1, 2, 3, ... without holes
        # and a message is never committed before one with a lower id. The same lock makes the
        # lookup of an earlier copy and the insert one step.
        room, _ = Room.objects.select_for_update().get_or_create(name=room_name)
        original = earlier_copy(room, sender, nonce) if nonce is not None else None
        if original is not None:
            if original.text != text:
                raise ValidationError("nonce: already used for another message; a resend carries the same text.")
            return original, False
        room.last_seq += 1
        room.save(update_fields=["last_seq"])
        message = Message.objects.create(room=room, seq=room.last_seq, text=text, sender=sender, nonce=nonce,
                                         account=account, **nick)
        prune(room)
        # Published only once committed, or a client could fetch history that lacks it.
        transaction.on_commit(lambda: publish_message(message))
    return message, True


def publish_message(message):
    try:
        publish(room_channel(message.room.name), message.as_event())
    except BrokerUnavailable as error:
        error.message = message  # stored all the same: the poster may still say which id it got
        raise


def recent_history(room):
    return list(reversed(room.messages.order_by("-seq")[:HISTORY_ON_JOIN]))


def backlog(room, since=None):
    """(messages to send on join, resync reason or None).

    Message ids are the room's `seq`. Without `since`: the last 50. With it: every message after
    it, in id order (0: from the start). The client must start over from recent history (a
    resync reason) when `since` is not a message this room still stores ("unknown_since":
    history was reset or pruned), when the messages right after it are gone (pruned: since=0
    once the room's first ones were deleted, or a prune that ran meanwhile), or when it is more
    than RESUME_LIMIT messages back ("too_far_behind").
    """
    if since is None:
        return recent_history(room), None
    if since != 0 and not room.messages.filter(seq=since).exists():
        return recent_history(room), "unknown_since"
    missed = list(room.messages.filter(seq__gt=since).order_by("seq")[: RESUME_LIMIT + 1])
    if len(missed) > RESUME_LIMIT:
        return recent_history(room), "too_far_behind"
    if missed and missed[0].seq != since + 1:  # retention deleted the ones the client lacks
        return recent_history(room), "unknown_since"
    return missed, None


# Joiners of one room share their reads: a crowd of n costs a few queries, not n (realtime/db/shared_reads.py).
_shared_reads = SharedReads()


def shared_room(room_name):
    """The room (None if there is none), read by a query that started after this call, shared
    with the other joiners of the room meanwhile."""
    return _shared_reads.get(("room", room_name), lambda: Room.objects.filter(name=room_name).first())


def shared_backlog(room, since=None):
    """`backlog(room, since)` as a History (offsets: the message ids), shared by the joiners of the
    room that ask for the same `since` meanwhile; each message is encoded and framed once for all."""

    def load():
        messages, resync = backlog(room, since)
        return History.of([(message.seq, message.as_event()) for message in messages], resync)

    return _shared_reads.get(("backlog", room.pk, since), load)
