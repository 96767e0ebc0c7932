"""Ending every socket of a user, on every worker: `disconnect(user)` (the server API's disconnect).

Each socket of a logged-in user is a member of one hub channel per user, `realtime:sessions:<id>`
(no topic routes to it: no client can join it, no API call can publish to it). A disconnect is one
publish there; in each worker the channel's watcher sees it once and closes that process's sockets
of the user with 4403 (docs/protocol.md: do not reconnect as this user). So a disconnect costs one
message per worker that has the user's sockets, and closes only those: never a walk of all sockets.
"""

import json

from ..envelope import envelope
from ..fanout.brokers import publish as broker_publish
from ..fanout.hub import REPEAT, ChannelWatcher, get_hub

DISCONNECTED = 4403  # close code: the server ended this user's sessions
MAX_REASON_BYTES = 120  # a close reason holds at most 123 bytes


def sessions_channel(user):
    """The hub channel of every socket of `user` (a user or its primary key)."""
    return f"realtime:sessions:{getattr(user, 'pk', user)}"


class UserSessions(ChannelWatcher):
    """This process's sockets of one user: a message on their channel closes them all."""

    def __init__(self, channel):
        self.channel = channel

    def saw(self, payload):
        reason = json.loads(payload)["data"].get("reason") or "disconnected"
        for members in list(get_hub().groups.get(self.channel, {}).values()):
            for subscription in list(members):
                subscription.connection.close(DISCONNECTED, reason)
        return REPEAT  # nothing is sent to the members as a message


def watch_sessions(ws, user):
    """Make `ws` one of `user`'s sockets (nothing for an anonymous user): the Subscription, or None."""
    if not user.is_authenticated:
        return None
    channel = sessions_channel(user)
    return get_hub().subscribe(channel, ws, watcher=lambda: UserSessions(channel))


def disconnect(user, reason=""):
    """Close every socket of `user` on every worker with 4403 and `reason` (BrokerUnavailable when
    the broker cannot be reached)."""
    reason = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    broker_publish(sessions_channel(user), envelope("disconnect", {"reason": reason}))
