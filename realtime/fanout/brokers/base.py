"""What every broker offers the hub, presence and Django code: the interface, and channel naming.

A broker moves messages between processes: `publish(channel, message)` from anywhere;
`subscribe`/`unsubscribe` from the worker's hub, which `start(on_message, on_reconnect)` hands the
messages to (`on_reconnect()` after a lost connection came back: what was published meanwhile was
lost for this process, and the hub resyncs; `on_reconnect(channels)` when only those channels were
cut off, as when one Redis Cluster shard failed over). `health()` feeds /healthz,
`presence_store(ttl)` is where presence (realtime/presence/) keeps the member lists of every
process.

Channels are named by applications ("chat:lobby"); a broker puts `Names.channel(...)` on the wire
and `Names.key(...)` on every key, both carrying REALTIME_KEY_PREFIX, so two deployments that
share a Redis never hear each other.
"""

import redis
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisClusterException

from ...supervisor import supervisor

# What a broker or its presence store raises when Redis is unreachable or failing over. (redis-py's
# cluster errors are not all RedisErrors: SlotNotCoveredError during a failover is not.)
UNREACHABLE = (redis.RedisError, RedisClusterException, OSError)


class BrokerUnavailable(Exception):
    """A publish could not reach the broker (Redis is down, or failing over)."""


class Names:
    """Wire names: the prefix first; with `hash_tag` (Redis Cluster) the application's channel in
    {braces}, so that a room's channel and its presence keys live in one slot (one shard), where
    its scripts can touch them all and publish on the channel."""

    def __init__(self, prefix="", hash_tag=False):
        if hash_tag and ("{" in prefix or "}" in prefix):
            raise ImproperlyConfigured(f"REALTIME_KEY_PREFIX {prefix!r}: with Redis Cluster it cannot contain {{ or }} "
                                       "(they mark the hash tag that keeps a room on one shard)")
        self.prefix, self.hash_tag = prefix, hash_tag

    def channel(self, name):
        return f"{self.prefix}{{{name}}}" if self.hash_tag else f"{self.prefix}{name}"

    def key(self, kind, name, suffix=""):
        """A key of `kind` ("presence") about the channel `name`: prefix + kind:name + suffix."""
        tagged = f"{{{name}}}" if self.hash_tag else name
        return f"{self.prefix}{kind}:{tagged}{suffix}"


class Broker:
    """The interface (see the module docstring). Subclasses set `kind` and implement the rest."""

    kind = "?"
    # False for the in-process broker: what another process publishes never reaches this one.
    reaches_other_processes = True
    # A Redis client for state every process shares (realtime/budgets.py); None: there is none.
    client = None

    def __init__(self, names=None):
        self.names = names or Names()
        self.connected = False
        self.reconnects = 0
        self.on_message = self.on_reconnect = None

    def start(self, on_message, on_reconnect=None):
        """Deliver this process's subscribed channels to `on_message(channel, payload bytes)` from now on."""
        raise NotImplementedError

    def stop(self):
        """The way out: stop listening (publishing still works)."""

    def subscribe(self, channel):
        """Idempotent; returns once the broker delivers `channel` to this process (or is known down)."""
        raise NotImplementedError

    def unsubscribe(self, channel):
        raise NotImplementedError

    def publish(self, channel, message):
        """Send to every subscriber of `channel` in every process; BrokerUnavailable when it cannot."""
        raise NotImplementedError

    def presence_store(self, ttl):
        """Where presence keeps the shared member lists (realtime/presence/)."""
        raise NotImplementedError

    def health(self):
        """What /healthz says about the broker; it is healthy when `connected`."""
        return {"broker": self.kind, "broker_connected": self.connected}

    def describe(self):
        return self.kind


class ListeningBroker(Broker):
    """A broker whose messages come in over the network: read by ONE supervised greenlet of the
    process, `_listen` (it must return only when told to stop)."""

    _loop = None

    def start(self, on_message, on_reconnect=None):
        self.on_message, self.on_reconnect = on_message, on_reconnect
        self._loop = supervisor.spawn("broker-listener", self._listen)

    def stop(self):
        if self._loop is not None:
            self._loop.stop()

    def _listen(self):
        raise NotImplementedError
