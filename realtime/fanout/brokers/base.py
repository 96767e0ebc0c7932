"""What every broker offers the hub, presence and Django code: the interface, and channel naming.

A broker moves messages between processes: `publish(channel, message)` from anywhere;
`subscribe`/`unsubscribe` from the worker's hub, which `start(on_message, on_reconnect)` hands the
messages to (`on_reconnect()` after a lost connection came back: what was published meanwhile was
lost for this process, and the hub resyncs; `on_reconnect(channels)` when only those channels were
cut off, as when one Redis Cluster shard failed over). `health()` feeds /healthz.

What others need to know of a broker are attributes declared here, never found out by asking what
kind it is: `reaches_other_processes` (False: the in-process broker), `sharded` (channels live on
shards: a script that publishes uses SPUBLISH), `client` (a redis-py client on the broker's Redis
for keys and scripts, None without Redis) and `names`. Presence (realtime/presence/) picks where
it keeps its member lists from these.

Channels are named by applications ("chat:lobby"); a broker puts `Names.channel(...)` on the wire
and `Names.key(...)` on every key, both carrying REALTIME_KEY_PREFIX, so two deployments that
share a Redis never hear each other.
"""

import logging
import os
import random
import socket

import gevent
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from ... import conf
from ...server.metrics import publish_seconds
from ...supervisor import supervisor
from .subscriptions import Subscriptions
from .urls import mask_password

log = logging.getLogger("realtime.brokers")

# What a broker or its presence store raises when Redis is unreachable or failing over. (redis-py's
# cluster errors are not all RedisErrors: SlotNotCoveredError during a failover is not.)
UNREACHABLE = (redis.RedisError, RedisClusterException, OSError)

# The listener's reconnect backoff: from RECONNECT_MIN doubling up to RECONNECT_MAX, jittered.
RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0


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
    # True for Redis Cluster: a channel lives on the shard of its slot (SPUBLISH, SSUBSCRIBE).
    sharded = False
    # A redis-py client for keys and scripts on the broker's Redis (set by the Redis brokers).
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

    def health(self):
        """What /healthz says about the broker; it is healthy when `connected`."""
        return {"broker": self.kind, "broker_connected": self.connected}

    def describe(self):
        return self.kind


def client_name():
    """Named connections: CLIENT LIST shows which process holds which."""
    return f"realtime-{socket.gethostname()}-{os.getpid()}"


class ListeningBroker(Broker):
    """A broker on Redis (one server, Sentinel, Cluster): publishing, and ONE supervised listener
    greenlet per process that connects, serves until the connection is lost, and connects again
    with capped, jittered exponential backoff; after a reconnect the hub resyncs what was cut off.

    A subclass says how to publish (`_publish`), connect and subscribe (`_connect`, which returns
    the channels that missed messages: None for all), serve (`_serve`: returns when something
    needs repairing, raises UNREACHABLE when the connection is lost), what a loss leaves (`_lost`)
    and what the listener's end leaves (`_close`).
    """

    service = "Redis"  # how logs and errors name what the broker talks to

    def __init__(self, url, names=None):
        super().__init__(names)
        self.url = url
        self.subscriptions = Subscriptions()
        self.down = False  # known to be unreachable: a subscriber does not wait for a confirmation
        self.health_interval = conf.get("REDIS_HEALTH_CHECK_INTERVAL")
        self._ever_connected = False  # kept across restarts: a restart is a reconnect (resync)
        self._loop = None

    def publisher_options(self):
        """redis-py options of the connections for publishing and presence (a few per process, in a
        pool the subclass makes: a burst of callers waits its turn for one). One immediate retry of
        a connection that failed covers a pooled connection gone stale while Redis restarted; none
        of one that timed out, and no reply is waited for longer than the health check interval:
        a sender learns soon that Redis is down, or hung."""
        return {"socket_timeout": self.health_interval, "socket_connect_timeout": 2,
                "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                "client_name": f"{client_name()}-pub"}

    def listener_options(self):
        """redis-py options of a PubSub connection: no silent retries (every lost connection is seen
        and resynced), and a read that waits longer than the health check interval fails (a Redis
        that accepts a connection but never answers: stopped, or behind a partition)."""
        return {"socket_timeout": self.health_interval, "socket_connect_timeout": 2, "retry": Retry(NoBackoff(), 0),
                "client_name": f"{client_name()}-sub"}

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, channel, message):
        try:
            with publish_seconds.time():
                self._publish(self.names.channel(channel), message)
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"{self.describe_target()} is unavailable: {self.explain(exc)}") from exc

    def _publish(self, wire, message):
        raise NotImplementedError

    # --- listening ----------------------------------------------------------------------------

    def start(self, on_message, on_reconnect=None):
        self.on_message, self.on_reconnect = on_message, on_reconnect
        self._loop = supervisor.spawn("broker-listener", self._listen)

    def stop(self):
        if self._loop is not None:
            self._loop.stop()

    def _listen(self):
        try:
            self._listen_forever()
        finally:
            # Stopped, or an unexpected exception (a bad callback) that the supervisor restarts it
            # after: meanwhile nothing listens, and /healthz must say so.
            self._close()
            self.connected, self.down = False, True

    def _listen_forever(self):
        delay = RECONNECT_MIN
        while True:
            try:
                cut_off = self._connect()
                self.connected, self.down, delay = True, False, RECONNECT_MIN
                self._reconnected(cut_off)
                self._serve()
            except UNREACHABLE as exc:
                if self.connected or not self._ever_connected:
                    log.warning("%s unavailable (%s); retrying with backoff", self.service, self.explain(exc))
                self.connected = False
                self._lost()
            gevent.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX)

    def _connect(self):
        raise NotImplementedError

    def _serve(self):
        raise NotImplementedError

    def _lost(self):
        """Connecting failed, or the connection was lost: set `down` if nothing is reachable now."""
        self.down = True

    def _close(self):
        """The listener ends: nothing is read any more."""
        self._lost()

    def _reconnected(self, cut_off):
        """After a reconnect, the hub catches up the channels `cut_off` (None: all)."""
        if not self._ever_connected:
            self._ever_connected = True
            return
        if cut_off is not None and not cut_off:
            return  # a repair that found nothing cut off
        self.reconnects += 1
        log.warning("reconnected to %s; resubscribed %d channels", self.service,
                    len(self.subscriptions.wanted) if cut_off is None else len(cut_off))
        if self.on_reconnect:
            self.on_reconnect(*(() if cut_off is None else (cut_off,)))

    # --- words ----------------------------------------------------------------------------------

    def explain(self, exc):
        """What went wrong, in one short line."""
        return str(exc)

    def describe_target(self):
        return f"{self.service} at {mask_password(self.url)}"
