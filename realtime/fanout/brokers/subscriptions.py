"""The channels one process must hear from Redis, and the loop that reads one PubSub connection.

Shared by the one-server (and Sentinel) broker, which has one PubSub connection, and the Cluster
broker, which has one per shard.
"""

import logging
import threading
import time

import gevent
import redis

log = logging.getLogger("realtime.brokers")

# How long a new subscriber waits for Redis to confirm its channel before going on regardless.
SUBSCRIBE_TIMEOUT = 5.0


class SubscriptionEnded(Exception):
    """Redis ended a subscription we still want (its slot moved to another shard): reconnect."""


class Subscriptions:
    """Wire channel -> application channel, for every channel this process listens to, and an
    Event per channel set once Redis confirmed the subscription on the current connection."""

    def __init__(self):
        self.wanted = {}
        self.confirmed = {}
        self.leaving = {}  # wire -> unsubscribes sent whose confirmation has not come back yet

    def add(self, wire, name):
        """True when the channel is new (the caller sends the subscribe)."""
        if wire in self.wanted:
            return False
        self.wanted[wire] = name
        self.confirmed[wire] = threading.Event()
        return True

    def remove(self, wire):
        self.wanted.pop(wire, None)
        self.confirmed.pop(wire, None)

    def unsubscribing(self, wire):
        """An unsubscribe of `wire` was sent: its confirmation is no sign of a moved slot."""
        self.leaving[wire] = self.leaving.get(wire, 0) + 1

    def wait(self, wire, down):
        """Until Redis confirmed `wire` (at once while Redis is `down`: the listener subscribes on reconnect)."""
        confirmed = self.confirmed.get(wire)
        if confirmed is not None and not down and not confirmed.wait(SUBSCRIBE_TIMEOUT):
            log.warning("Redis did not confirm the subscription to %s in %s s", wire, SUBSCRIBE_TIMEOUT)

    def unconfirm(self, wires=None):
        """A new connection for `wires` (default: all): nothing on it is confirmed yet, nor being
        unsubscribed."""
        for wire in list(self.wanted) if wires is None else wires:
            self.leaving.pop(wire, None)
            event = self.confirmed.get(wire)
            if event is not None:
                event.clear()

    def release(self, wires=None):
        """The connection of `wires` (default: all) is lost: their waiting subscribers go on, degraded."""
        for wire in list(self.confirmed) if wires is None else wires:
            self.leaving.pop(wire, None)
            event = self.confirmed.get(wire)
            if event is not None:
                event.set()


def read_forever(pubsub, subscriptions, on_message, health_interval, sharded=False, on_moved=None):
    """Deliver what arrives on `pubsub` until its connection fails (the exception propagates).
    A subscription Redis ended that we still want (its slot moved) goes to `on_moved(wire)`, or
    raises SubscriptionEnded without one.

    A connection that stays silent is checked: after half of `health_interval` without a word
    from Redis it is sent a PING, and if nothing came by the end of the interval it is taken for
    lost (ConnectionError). A Redis that was stopped (SIGSTOP) or cut off by a partition sends no
    reset: without this only TCP keepalive would notice, after a minute. (redis-py's own
    `health_check_interval` sends a PING now and then but never checks that an answer came.)
    """
    message_type, subscribe_type, unsubscribe_type = (
        ("smessage", "ssubscribe", "sunsubscribe") if sharded else ("message", "subscribe", "unsubscribe"))
    wait = min(1.0, health_interval / 4)
    heard, pinged = time.monotonic(), False
    while True:
        message = next_message(pubsub, wait)
        if message is None:
            silent = time.monotonic() - heard
            if silent >= health_interval:
                raise redis.ConnectionError(f"no answer from Redis for {silent:.1f} s (health check)")
            if silent >= health_interval / 2 and not pinged:
                pubsub.ping()
                pinged = True
            continue
        heard, pinged = time.monotonic(), False
        kind = message["type"]
        if kind == message_type:
            name = subscriptions.wanted.get(message["channel"].decode())
            if name is not None:
                on_message(name, message["data"])
            # A message already buffered is returned without waiting: without this yield a
            # burst (3,000 joins' notices) keeps every socket's reader waiting as long as it lasts.
            gevent.sleep(0)
        elif kind == subscribe_type:
            confirmed = subscriptions.confirmed.get(message["channel"].decode())
            if confirmed is not None:
                confirmed.set()
        elif kind == unsubscribe_type:
            wire = message["channel"].decode()
            if subscriptions.leaving.get(wire):
                subscriptions.leaving[wire] -= 1
                if not subscriptions.leaving[wire]:
                    del subscriptions.leaving[wire]
            elif wire in subscriptions.wanted:
                if on_moved is None:
                    raise SubscriptionEnded(f"Redis ended the subscription to {wire} (its slot moved)")
                on_moved(wire)


def next_message(pubsub, timeout):
    """The next message or reply (a pong too) on `pubsub`, or None after `timeout` s."""
    if pubsub.subscribed:
        return pubsub.get_message(timeout=timeout)
    # With nothing subscribed get_message only waits for a subscription and reads nothing: the
    # answers to the health check's pings are read here.
    return pubsub.handle_message(pubsub.parse_response(block=False, timeout=timeout))
