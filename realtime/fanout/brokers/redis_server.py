"""One Redis server (`redis://`, `rediss://`): every worker process holds ONE PubSub connection for
all its sockets, plus a small capped pool for publishing and presence.

PubSub is at-most-once: what is published while a listener is disconnected is lost for it, so
after a reconnect the hub is told (`on_reconnect`) and applications resync from stored history.
The Sentinel broker (redis_sentinel.py) is this one with clients that find the primary through
Sentinel.
"""

import redis

from .base import UNREACHABLE, ListeningBroker
from .subscriptions import read_forever
from .urls import mask_password


class RedisBroker(ListeningBroker):
    """One PubSub connection per process, reconnected with capped exponential backoff."""

    kind = "redis"

    def __init__(self, url, names=None):
        super().__init__(url, names)
        self.client, self.listen_client = self.make_clients()
        self._pubsub = None

    def make_clients(self):
        """(publishing client, listening client)."""
        # Publishing and presence: a few connections at most, whatever the number of sockets. A
        # burst of callers waits its turn for one and is never failed for the pool being empty
        # (timeout=None): each holder gives its connection back within its socket timeout, so the
        # wait is bounded by the callers ahead. A down Redis fails at once (connect refused).
        publisher = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            self.url, max_connections=4, timeout=None, **self.publisher_options()))
        listener = redis.Redis.from_url(self.url, **self.listener_options())
        return publisher, listener

    def subscribe(self, channel):
        """Subscribe once per channel; every caller returns when Redis has confirmed it.

        A client told "you are in" before that could miss a message published meanwhile.
        While Redis is down it returns at once: the listener subscribes on reconnect.
        """
        wire = self.names.channel(channel)
        if self.subscriptions.add(wire, channel):
            self._send(lambda pubsub: pubsub.subscribe(wire))
        self.subscriptions.wait(wire, self.down)

    def unsubscribe(self, channel):
        wire = self.names.channel(channel)
        self.subscriptions.remove(wire)
        self._send(lambda pubsub: (self.subscriptions.unsubscribing(wire), pubsub.unsubscribe(wire)))

    def _send(self, command):
        if self._pubsub is not None:
            try:
                command(self._pubsub)
            except UNREACHABLE:
                pass  # the listener notices, reconnects and subscribes to every wanted channel again

    def _publish(self, wire, message):
        self.client.publish(wire, message)

    def _connect(self):
        pubsub = self.listen_client.pubsub()
        try:
            pubsub.ping()
            self.subscriptions.unconfirm()
            # Published first, so that a subscribe() meanwhile is sent on this connection too.
            self._pubsub, self.down = pubsub, False
            if self.subscriptions.wanted:
                pubsub.subscribe(*self.subscriptions.wanted)
        except BaseException:
            close(pubsub)
            raise
        return None  # every channel missed what was published while we were away

    def _serve(self):
        try:
            read_forever(self._pubsub, self.subscriptions, self.on_message, self.health_interval)
        finally:
            pubsub, self._pubsub = self._pubsub, None  # nothing more is sent on it
            close(pubsub)

    def _lost(self):
        self._pubsub, self.down = None, True
        self.subscriptions.release()

    def describe(self):
        return f"Redis PubSub at {mask_password(self.url)} (one subscription connection per worker process)"


def close(pubsub):
    try:
        pubsub.close()
    except Exception:
        pass
