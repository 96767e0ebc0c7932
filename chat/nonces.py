"""Recognising a resent chat message by its sender's nonce, and forgetting old nonces.

A client that lost its connection resends what it has not seen acknowledged; the same message may
already be stored (the ack was lost, not the message). The message keeps its sender and nonce, and
a unique index on (room, sender, nonce) finds a resend in one lookup and stops a second row even
when two workers race. Nonces are kept CHAT_NONCE_WINDOW seconds: every PRUNE_EVERY messages of a
room, the oldest kept ones past the window are cleared, at most PRUNE_BATCH at a time. So the index
holds about the room's messages of one window, and pruning costs a bounded read per message.
"""

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from . import conf

NONCE_MAX_LENGTH = 64
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
PRUNE_EVERY = 100
PRUNE_BATCH = 200  # more than PRUNE_EVERY: pruning keeps up however many messages carry a nonce


def validate_nonce(nonce):
    """The nonce (None: the message has none), or ValidationError saying what is wrong with it."""
    if nonce is None:
        return None
    if not isinstance(nonce, str) or not 1 <= len(nonce) <= NONCE_MAX_LENGTH:
        raise ValidationError(f"nonce: a string of 1-{NONCE_MAX_LENGTH} characters, the same for a resend.")
    return nonce


def window_start():
    return timezone.now() - timedelta(seconds=conf.get("CHAT_NONCE_WINDOW"))


def earlier_copy(room, sender, nonce):
    """The message `sender` already stored in `room` with this nonce within the window, or None.
    Call it with the room locked (post_message does): nobody else is storing one meanwhile."""
    original = room.messages.filter(sender=sender, nonce=nonce).first()
    if original is None:
        return None
    if original.created < window_start():  # older than the window, not yet pruned: forget it now
        room.messages.filter(pk=original.pk).update(nonce=None)
        return None
    return original


def prune(room):
    """Forget the room's oldest nonces that are past the window (at most PRUNE_BATCH); with the room locked."""
    if room.last_seq % PRUNE_EVERY:
        return 0
    oldest = room.messages.filter(nonce__isnull=False).order_by("seq").values_list("pk", "created")[:PRUNE_BATCH]
    start = window_start()
    expired = [pk for pk, created in oldest if created < start]
    return room.messages.filter(pk__in=expired).update(nonce=None) if expired else 0


def nonces_of(room, sender, first, last):
    """[(nonce, id)] of `sender`'s messages with ids first..last that still keep their nonce."""
    return list(room.messages.filter(sender=sender, nonce__isnull=False, seq__range=(first, last))
                .order_by("seq").values_list("nonce", "seq"))
