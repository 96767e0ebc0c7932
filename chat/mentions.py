"""`@name` in a chat message notifies that user (`realtime.notify`, event `mention` on `user:<id>`).

Bounded whatever the room: at most MENTION_LIMIT names per message, looked up in one query among the
accounts (a name that is no account notifies nobody), one publish per user mentioned.
"""

import logging
import re

from django.contrib.auth import get_user_model

from realtime.channels import notify
from realtime.db import run_read
from realtime.fanout.brokers import BrokerUnavailable

log = logging.getLogger("chat")

MENTION_LIMIT = 3
# Django's username characters (letters, digits, @ . + - _), after an @ that starts a word.
MENTION = re.compile(r"(?<![\w@.+-])@([\w@.+-]{1,150})")
EXCERPT = 200  # characters of the text the notification carries


def mentioned_names(text):
    """The first MENTION_LIMIT distinct names mentioned (a sentence's final dot is not part of one)."""
    names = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".")
        if name and name not in names:
            names.append(name)
            if len(names) == MENTION_LIMIT:
                break
    return names


def notify_mentions(message, author):
    """Notify the accounts `message` mentions, but not its `author` (a username; "" for a guest)."""
    names = mentioned_names(message.text)
    if not names:
        return
    users = get_user_model()._default_manager
    field = get_user_model().USERNAME_FIELD
    mentioned = users.filter(**{f"{field}__in": names, "is_active": True}).exclude(**{field: author})
    pks = run_read(lambda: list(mentioned.values_list("pk", flat=True)))
    data = {"room": message.room.name, "id": message.seq, "from": message.name, "text": message.text[:EXCERPT]}
    for pk in pks:
        try:
            notify(pk, "mention", data)
        except BrokerUnavailable:
            log.warning("mention of user %s in %s #%s not delivered: the broker is unavailable",
                        pk, message.room.name, message.seq)
