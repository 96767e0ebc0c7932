"""The chat application's own settings, with their defaults (docs/settings.md).

They live here rather than in realtime/conf.py: they are about chat messages, which the realtime
layer knows nothing of; a project without the chat app has no use for them.
"""

from django.conf import settings

DEFAULTS = {
    # A message resent with the same nonce within this many seconds of the original is not stored
    # again (the sender gets the original's `ack`). Older nonces are forgotten, a batch at a time.
    # The browser's outbox drops what it could not send within this long (client.js outboxMaxAge).
    "CHAT_NONCE_WINDOW": 24 * 3600.0,
}


def get(name):
    return getattr(settings, name, DEFAULTS[name])
