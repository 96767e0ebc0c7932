"""The chat application's settings, registered with the layer's (realtime/conf.py): read them with
`conf.get(name)`; their table in docs/settings.md is `python -m realtime.conf chat.conf`.

They live here rather than in realtime/conf.py: they are about chat messages, which the realtime
layer knows nothing of; a project without the chat app has no use for them.
"""

from realtime.conf import Setting, get, register

__all__ = ["SETTINGS", "get"]

SETTINGS = register(
    # Older nonces are forgotten, a batch at a time (chat/nonces.py); the browser's outbox drops
    # what it could not send within this long (client.js outboxMaxAge, from chat/views.py).
    Setting("CHAT_NONCE_WINDOW", 24 * 3600.0, "86400 s (24 hours)",
            "a chat message resent with the same nonce (by the same sender, in the same room) within this long "
            "after the original is not stored again; the sender gets the original's `ack` (docs/protocol.md, "
            "Sending without loss). Also how long the chat page's outbox keeps trying."),
)
