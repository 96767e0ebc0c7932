"""Moving messages between processes: a Redis PubSub backend and an in-process one.

`REDIS_URL` chooses: set, every worker process holds ONE PubSub connection for all its sockets
(plus a small capped pool for publishing); empty, messages stay inside the process, which is
enough for one worker (development) and says so at start-up.

PubSub is at-most-once: what is published while a listener is disconnected is lost for it.
The hub is told about reconnects (`on_reconnect`) so applications can resync from stored history.
"""

import logging
import os
import random
import socket
import threading

import redis
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import conf
from .metrics import publish_seconds
from .supervisor import supervisor

log = logging.getLogger("realtime.broker")

RECONNECT_MIN, RECONNECT_MAX = 0.1, 5.0
# How long a new subscriber waits for Redis to confirm its channel before going on regardless.
SUBSCRIBE_TIMEOUT = 5.0


class BrokerUnavailable(Exception):
    """A publish could not reach the broker (Redis is down)."""


class LocalBroker:
    """Hands messages straight to this process's hub: one worker process only."""

    kind = "in-process"
    connected = True

    def __init__(self):
        self.on_message = None
        self._warned = False

    def start(self, on_message, on_reconnect=None):
        self.on_message = on_message

    def subscribe(self, channel):
        pass

    def unsubscribe(self, channel):
        pass

    def publish(self, channel, message):
        if self.on_message is None:
            if not self._warned:
                log.warning("in-process broker: a message published outside the websocket worker "
                            "reaches no socket (set REDIS_URL to connect processes)")
                self._warned = True
            return
        self.on_message(channel, message.encode() if isinstance(message, str) else message)

    def describe(self):
        return "in-process broker (serves a single worker process; set REDIS_URL for more)"


class RedisBroker:
    """One PubSub connection per process, reconnected with capped exponential backoff."""

    kind = "redis"

    def __init__(self, url):
        self.url = url
        # Named, so that CLIENT LIST shows which process holds which connection.
        name = f"realtime-{socket.gethostname()}-{os.getpid()}"
        # Publishing and presence: a few connections at most, whatever the number of sockets. A
        # burst of callers waits its turn for one and is never failed for the pool being empty
        # (timeout=None): each holder gives its connection back within socket_timeout, so the wait
        # is bounded by the callers ahead. A down Redis fails at once (connect refused). One
        # immediate retry covers a pooled connection that went stale while Redis restarted; no
        # more, so a sender learns at once that Redis is down.
        self.client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=4, timeout=None, socket_timeout=5, socket_connect_timeout=2,
            client_name=f"{name}-pub", retry=Retry(NoBackoff(), 1)))
        # Listening: no silent retries, so that every lost connection is seen and resynced.
        self.listen_client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2,
                                                  client_name=f"{name}-sub")
        self.channels = set()
        self._confirmed = {}  # channel -> Event set when Redis confirmed the subscription
        self.connected = False
        self.down = False  # known to be unreachable: do not wait for confirmations
        self.reconnects = 0
        self._ever_connected = False  # kept across restarts: a restart is a reconnect (resync)
        self._pubsub = None

    def start(self, on_message, on_reconnect=None):
        self.on_message, self.on_reconnect = on_message, on_reconnect
        supervisor.spawn("broker-listener", self._listen)

    def subscribe(self, channel):
        """Subscribe once per channel; every caller returns when Redis has confirmed it.

        A client told "you are in" before that could miss a message published meanwhile.
        While Redis is down it returns at once: the listener subscribes on reconnect.
        """
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            self.channels.add(channel)
            confirmed = self._confirmed[channel] = threading.Event()
            self._send(lambda pubsub: pubsub.subscribe(channel))
        if not self.down and not confirmed.wait(SUBSCRIBE_TIMEOUT):
            log.warning("Redis did not confirm the subscription to %s in %s s", channel, SUBSCRIBE_TIMEOUT)

    def unsubscribe(self, channel):
        self.channels.discard(channel)
        self._confirmed.pop(channel, None)
        self._send(lambda pubsub: pubsub.unsubscribe(channel))

    def _send(self, command):
        if self._pubsub is not None:
            try:
                command(self._pubsub)
            except (redis.RedisError, OSError):
                pass  # the listener notices, reconnects and subscribes to self.channels again

    def publish(self, channel, message):
        try:
            with publish_seconds.time():
                self.client.publish(channel, message)
        except (redis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"Redis at {self.url} is unavailable: {exc}") from exc

    def _listen(self):
        try:
            self._listen_forever()
        finally:
            # An unexpected exception (a bad callback) ends it here and the supervisor restarts it:
            # meanwhile nothing listens, and /healthz must say so.
            self._disconnected()

    def _disconnected(self):
        self._pubsub, self.connected, self.down = None, False, True
        for confirmed in self._confirmed.values():
            confirmed.set()  # release waiting subscribers: they go on, degraded

    def _listen_forever(self):
        import gevent

        delay = RECONNECT_MIN
        while True:
            pubsub = self.listen_client.pubsub()
            try:
                pubsub.ping()
                for confirmed in self._confirmed.values():
                    confirmed.clear()
                # Published first, so that a subscribe() meanwhile is sent on this connection too.
                self._pubsub, self.connected, self.down, delay = pubsub, True, False, RECONNECT_MIN
                if self.channels:
                    pubsub.subscribe(*self.channels)
                if self._ever_connected:
                    self.reconnects += 1
                    log.warning("reconnected to Redis; resubscribed %d channels", len(self.channels))
                    if self.on_reconnect:
                        self.on_reconnect()
                self._ever_connected = True
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        if not pubsub.subscribed:
                            pubsub.ping()  # notice a dead server even with nothing subscribed
                        continue
                    if message["type"] == "message":
                        self.on_message(message["channel"].decode(), message["data"])
                        # A message already buffered is returned without waiting: without this
                        # yield a burst (3,000 joins' notices) keeps every socket's reader waiting
                        # for as long as it lasts.
                        gevent.sleep(0)
                    elif message["type"] == "subscribe":
                        confirmed = self._confirmed.get(message["channel"].decode())
                        if confirmed is not None:
                            confirmed.set()
            except (redis.RedisError, OSError) as exc:
                if self.connected or not self._ever_connected:
                    log.warning("Redis PubSub connection lost (%s); retrying with backoff", exc)
                self._disconnected()
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass
            gevent.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX)

    def describe(self):
        return f"Redis PubSub at {self.url} (one subscription connection per worker process)"


_broker = None
_lock = threading.Lock()


def get_broker():
    """This process's broker, chosen by the REDIS_URL setting."""
    global _broker
    with _lock:
        if _broker is None:
            redis_url = conf.get("REDIS_URL")
            _broker = RedisBroker(redis_url) if redis_url else LocalBroker()
        return _broker


@receiver(setting_changed)
def forget_broker(setting, **kwargs):
    """A test that overrides REDIS_URL publishes through a broker for the new value."""
    global _broker
    if setting == "REDIS_URL":
        with _lock:
            _broker = None


def publish(channel, message):
    """Send a text message to every socket subscribed to `channel`, in every worker.

    Callable from any Django code. Raises BrokerUnavailable when Redis is down.
    """
    get_broker().publish(channel, message)
