"""One Redis server (`redis://`, `rediss://`): every worker process holds ONE PubSub connection for
all its sockets, plus a small capped pool for publishing and presence.

PubSub is at-most-once: what is published while a listener is disconnected is lost for it, so
after a reconnect the hub is told (`on_reconnect`) and applications resync from stored history.
The Sentinel broker (redis_sentinel.py) is this one with clients that find the primary through
Sentinel.
"""

import logging
import os
import random
import socket

import gevent
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...server.metrics import publish_seconds
from .base import UNREACHABLE, BrokerUnavailable, ListeningBroker
from .subscriptions import Subscriptions, read_forever

log = logging.getLogger("realtime.brokers")

RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0


def client_name():
    """Named connections: CLIENT LIST shows which process holds which."""
    return f"realtime-{socket.gethostname()}-{os.getpid()}"


class RedisBroker(ListeningBroker):
    """One PubSub connection per process, reconnected with capped exponential backoff."""

    kind = "redis"

    def __init__(self, url, names=None):
        super().__init__(names)
        self.url = url
        self.client, self.listen_client = self.make_clients()
        self.subscriptions = Subscriptions()
        self.down = False  # known to be unreachable: do not wait for confirmations
        self._ever_connected = False  # kept across restarts: a restart is a reconnect (resync)
        self._pubsub = None

    def make_clients(self):
        """(publishing client, listening client)."""
        # Publishing and presence: a few connections at most, whatever the number of sockets. A
        # burst of callers waits its turn for one and is never failed for the pool being empty
        # (timeout=None): each holder gives its connection back within socket_timeout, so the wait
        # is bounded by the callers ahead. A down Redis fails at once (connect refused). One
        # immediate retry covers a pooled connection that went stale while Redis restarted; no
        # more, so a sender learns at once that Redis is down.
        publisher = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            self.url, max_connections=4, timeout=None, socket_timeout=5, socket_connect_timeout=2,
            client_name=f"{client_name()}-pub", retry=Retry(NoBackoff(), 1)))
        # Listening: no silent retries, so that every lost connection is seen and resynced.
        listener = redis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2,
                                        client_name=f"{client_name()}-sub")
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

    def publish(self, channel, message):
        try:
            with publish_seconds.time():
                self.client.publish(self.names.channel(channel), message)
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"{self.describe_target()} is unavailable: {self.explain(exc)}") from exc

    def presence_store(self, ttl):
        from ...presence import RedisStore

        return RedisStore(self.client, ttl, self.names)

    def _listen(self):
        try:
            self._listen_forever()
        finally:
            # An unexpected exception (a bad callback) ends it here and the supervisor restarts it:
            # meanwhile nothing listens, and /healthz must say so.
            self._disconnected()

    def _disconnected(self):
        self._pubsub, self.connected, self.down = None, False, True
        self.subscriptions.release()

    def _listen_forever(self):
        delay = RECONNECT_MIN
        while True:
            pubsub = self.listen_client.pubsub()
            try:
                pubsub.ping()
                self.subscriptions.unconfirm()
                # Published first, so that a subscribe() meanwhile is sent on this connection too.
                self._pubsub, self.connected, self.down, delay = pubsub, True, False, RECONNECT_MIN
                if self.subscriptions.wanted:
                    pubsub.subscribe(*self.subscriptions.wanted)
                self._reconnected(len(self.subscriptions.wanted))
                read_forever(pubsub, self.subscriptions, self.on_message)
            except UNREACHABLE as exc:
                if self.connected or not self._ever_connected:
                    log.warning("Redis PubSub connection lost (%s); retrying with backoff", self.explain(exc))
                self._disconnected()
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass
            gevent.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX)

    def _reconnected(self, channels):
        if self._ever_connected:
            self.reconnects += 1
            log.warning("reconnected to Redis; resubscribed %d channels", channels)
            if self.on_reconnect:
                self.on_reconnect()
        self._ever_connected = True

    def explain(self, exc):
        """What went wrong, in one short line."""
        return str(exc)

    def describe_target(self):
        return f"Redis at {self.url}"

    def describe(self):
        return f"Redis PubSub at {self.url} (one subscription connection per worker process)"
