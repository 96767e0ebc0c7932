"""The chat application's own settings, with their defaults (docs/settings.md).

They live here rather than in realtime/conf.py: they are about chat messages, which the realtime
layer knows nothing of; a project without the chat app has no use for them. Each may also be set
by the environment variable of its name (`from_environ`, which project/settings.py calls).
"""

import os

from django.conf import settings

import realtime.conf

DEFAULTS = {
    # A message resent with the same nonce within this many seconds of the original is not stored
    # again (the sender gets the original's `ack`). Older nonces are forgotten, a batch at a time.
    # The browser's outbox drops what it could not send within this long (client.js outboxMaxAge).
    "CHAT_NONCE_WINDOW": 24 * 3600.0,
    # Posting budgets (realtime/budgets.py), shared by every socket of one client on every worker:
    # units per second, and the burst. A message costs one unit per started KiB of its text. A
    # logged-in user spends its account's budget; a guest its address's, which everyone behind the
    # same address (a NAT, an office) shares: a guest posts less. A rate of 0: no limit.
    "CHAT_POST_RATE": 5.0,
    "CHAT_POST_BURST": 20,
    "CHAT_GUEST_POST_RATE": 1.0,
    "CHAT_GUEST_POST_BURST": 10,
    # Retention (chat/retention.py, a periodic task of the task worker): a message older than this
    # many days, or past the newest CHAT_RETENTION_MESSAGES of its room, is deleted; never one
    # younger than CHAT_NONCE_WINDOW (its resend must still find it). 0: no such limit.
    "CHAT_RETENTION_DAYS": 30.0,
    "CHAT_RETENTION_MESSAGES": 10000,
}


def get(name):
    return getattr(settings, name, DEFAULTS[name])


def from_environ(environ=os.environ):
    """{name: value} for each chat setting given in the environment, typed like its default."""
    return realtime.conf.from_environ(environ, DEFAULTS)
