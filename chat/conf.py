"""The chat application's settings, registered with the layer's (realtime/conf.py): read them with
`conf.get(name)`; their table in docs/settings.md is `python -m realtime.conf chat.conf`.

They live here rather than in realtime/conf.py: they are about chat messages, which the realtime
layer knows nothing of; a project without the chat app has no use for them. Each may also be set
by the environment variable of its name (`from_environ`, which project/settings.py calls).
"""

from realtime.conf import Setting, get, register

__all__ = ["SETTINGS", "get"]

SETTINGS = register(
    # Older nonces are forgotten, a batch at a time (chat/nonces.py); the browser's outbox drops
    # what it could not send within this long (the chat page's outbox_max_age).
    Setting("CHAT_NONCE_WINDOW", 24 * 3600.0, "86400 s (24 hours)",
            "a chat message resent with the same nonce (by the same sender, in the same room) within this long "
            "after the original is not stored again; the sender gets the original's `ack` (docs/protocol.md, "
            "Sending without loss). Also how long the chat page's outbox keeps trying."),
    # Posting budgets (realtime/budgets.py), shared by every socket of one client on every worker.
    Setting("CHAT_POST_RATE", 5.0, "5/s",
            "a logged-in user's posting budget, in units per second, shared by all the account's sockets on every "
            "worker; a message costs one unit per started KiB of its text. 0: no limit."),
    Setting("CHAT_POST_BURST", 20, "20", "the burst allowed above `CHAT_POST_RATE`."),
    Setting("CHAT_GUEST_POST_RATE", 1.0, "1/s",
            "a guest's posting budget, per client address (an IPv6 /64), shared by every guest socket of that "
            "address on every worker (a NAT or an office shares it too): a guest posts less. 0: no limit."),
    Setting("CHAT_GUEST_POST_BURST", 10, "10", "the burst allowed above `CHAT_GUEST_POST_RATE`."),
    # Retention (chat/retention.py, a periodic task of the task worker).
    Setting("CHAT_RETENTION_DAYS", 30.0, "30 days",
            "a message older than this is deleted (never one younger than `CHAT_NONCE_WINDOW`: its resend must "
            "still find it). 0: no age limit."),
    Setting("CHAT_RETENTION_MESSAGES", 10000, "10000",
            "a room keeps its newest this many messages; older ones are deleted, a batch at a time. 0: no limit."),
)
