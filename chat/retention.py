"""Retention: messages do not stay forever. The task worker deletes old ones (chat/tasks.py), a
bounded batch at a time.

Two rules (chat/conf.py): a message older than CHAT_RETENTION_DAYS goes, and so does one past the
newest CHAT_RETENTION_MESSAGES of its room. Neither ever deletes a message younger than
CHAT_NONCE_WINDOW: a resend within the window must find its original (chat/nonces.py), or it
would be stored twice. A room loses its oldest messages first, so what it keeps are its newest,
their ids without holes; a client resuming from an id that is gone gets `resync` unknown_since
and recent history (chat/services.py, backlog).
"""

import time
from datetime import timedelta

from django.utils import timezone

from . import conf
from .models import Message, Room

BATCH = 500  # messages per DELETE: each statement, and the locks it takes, stays short


def prune(seconds):
    """Delete what retention lets go, a batch at a time, for about `seconds` at most.
    Returns (messages deleted, whether all that may go is gone)."""
    deadline = time.monotonic() + seconds
    deleted = 0
    for batch in doomed_batches():
        deleted += Message.objects.filter(pk__in=batch).delete()[0]
        if time.monotonic() > deadline:
            return deleted, False
    return deleted, True


def doomed_batches():
    """Lists of at most BATCH primary keys of messages that may go, until there are none."""
    now = timezone.now()
    newest_kept = now - timedelta(seconds=conf.get("CHAT_NONCE_WINDOW"))  # never anything newer
    days = conf.get("CHAT_RETENTION_DAYS")
    if days > 0:
        older = Message.objects.filter(created__lt=min(newest_kept, now - timedelta(days=days)))
        yield from batches(older.order_by("created"))
    keep = conf.get("CHAT_RETENTION_MESSAGES")
    if keep > 0:
        for room_id, last_seq in list(Room.objects.filter(last_seq__gt=keep).values_list("pk", "last_seq")):
            past = Message.objects.filter(room_id=room_id, seq__lte=last_seq - keep, created__lt=newest_kept)
            yield from batches(past.order_by("seq"))


def batches(messages):
    while pks := list(messages.values_list("pk", flat=True)[:BATCH]):
        yield pks
        if len(pks) < BATCH:
            return
