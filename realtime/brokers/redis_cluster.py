"""Redis Cluster (`redis+cluster://host1:7000,host2:7001/`): fan-out on sharded PubSub.

A room's channel lives on the one shard that owns its slot: SPUBLISH goes there (through redis-py's
RedisCluster, which routes by slot and follows MOVED), and each worker SSUBSCRIBEs there, on ONE
PubSub connection per shard it needs (not per socket, nor per channel). So fan-out capacity grows
with the number of shards. Channel and presence keys carry the same hash tag (base.Names), so
presence's scripts run on that shard and publish their diffs there too.

redis-py's ClusterPubSub is not used for reading: its get_sharded_message(timeout) waits on one
shard at a time (a quiet shard delays the others' messages), and it re-homes channels after a
topology change from its own thread, behind a reader's back. Here each shard's connection has its
own reader greenlet, and any lost shard connection (a primary died) or moved slot is handled like a
lost connection with one server: /healthz is degraded, the topology is read again from the cluster
(redis-py's NodesManager.initialize), every channel is subscribed again on its owner's connection,
and the hub resyncs (clients are caught up from stored history, as after any reconnect).
"""

import logging
import random
import threading

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.retry import Retry

from ..metrics import publish_seconds
from ..supervisor import supervisor
from .base import UNREACHABLE, Broker, BrokerUnavailable
from .redis_server import RECONNECT_MAX, RECONNECT_MIN, client_name
from .subscriptions import ShardMoved, Subscriptions, read_forever
from .urls import parse_cluster_url

log = logging.getLogger("realtime.brokers")


class LazyCluster:
    """A RedisCluster made at its first use: making one connects to the cluster, and a worker must
    boot (and say it is degraded) while the cluster is down."""

    def __init__(self, make):
        self._make, self._client, self._lock = make, None, threading.Lock()

    def register_script(self, script):
        return Script(self, script)  # no connection needed until it runs (the script is bytes)

    def __getattr__(self, name):
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)


class Shard:
    """This process's PubSub connection to one shard's primary, and the channels it carries."""

    def __init__(self, node, options):
        self.name = node.name
        self.client = redis.Redis(host=node.host, port=node.port, retry=Retry(NoBackoff(), 0),
                                  socket_connect_timeout=2, client_name=f"{client_name()}-sub", **options)
        self.pubsub = self.client.pubsub()
        self.wires = set()
        # redis-py's PubSub opens its connection at the first command, unguarded: two greenlets
        # subscribing at once must not both open one.
        self.lock = gevent.lock.Semaphore()
        self.reading = False

    def close(self):
        try:
            self.pubsub.close()
        except Exception:
            pass


class ClusterBroker(Broker):
    kind = "redis-cluster"

    def __init__(self, url, names=None):
        super().__init__(names)
        self.url = url
        self.nodes, self.options = parse_cluster_url(url)
        self.client = LazyCluster(lambda: RedisCluster(
            startup_nodes=self.nodes, socket_timeout=5, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1),
            client_name=f"{client_name()}-pub", **self.options))
        self.subscriptions = Subscriptions()
        self.shards = {}  # node name -> Shard, while connected
        self.down = False
        self._ever_connected = False
        self._live = False  # the listener has read the topology: subscribe() may send at once
        self._failure = None  # AsyncResult: a shard's reader (or a subscribe) failed -> reconnect
        self._readers = None
        self._loop = None

    def start(self, on_message, on_reconnect=None):
        self.on_message, self.on_reconnect = on_message, on_reconnect
        self._loop = supervisor.spawn("broker-listener", self._listen)

    def stop(self):
        if self._loop is not None:
            self._loop.stop()

    def subscribe(self, channel):
        wire = self.names.channel(channel)
        if self.subscriptions.add(wire, channel) and self._live:
            try:
                self._subscribe_on_owner(wire)
            except UNREACHABLE as exc:
                self._failed(exc)  # the listener reconnects and subscribes every wanted channel
        self.subscriptions.wait(wire, self.down)

    def unsubscribe(self, channel):
        wire = self.names.channel(channel)
        self.subscriptions.remove(wire)
        for shard in list(self.shards.values()):
            if wire in shard.wires:
                shard.wires.discard(wire)
                try:
                    with shard.lock:
                        self.subscriptions.unsubscribing(wire)
                        shard.pubsub.sunsubscribe(wire)
                except UNREACHABLE as exc:
                    self._failed(exc)

    def _subscribe_on_owner(self, wire):
        node = self.client.get_node_from_key(wire)
        shard = self.shards.get(node.name)
        if shard is None:
            shard = self.shards[node.name] = Shard(node, self.options)
        shard.wires.add(wire)
        with shard.lock:
            shard.pubsub.ssubscribe(wire)
        if not shard.reading:  # its connection is open now
            shard.reading = True
            self._readers.spawn(self._read, shard)

    def _read(self, shard):
        try:
            read_forever(shard.pubsub, self.subscriptions, self.on_message, sharded=True)
        except gevent.GreenletExit:
            raise  # the listener is reconnecting or stopping
        except BaseException as exc:  # a lost shard, a moved slot, or a callback that raised: the listener decides
            self._failed(exc)

    def _failed(self, exc):
        if self._failure is not None and not self._failure.ready():
            self._failure.set(exc)

    def publish(self, channel, message):
        try:
            with publish_seconds.time():
                self.client.spublish(self.names.channel(channel), message)
        except UNREACHABLE as exc:
            raise BrokerUnavailable(f"Redis Cluster at {self.url} is unavailable: {exc}") from exc

    def presence_store(self, ttl):
        from ..presence import RedisStore

        return RedisStore(self.client, ttl, self.names, sharded=True)

    def health(self):
        return {**super().health(), "broker_shards": sorted(self.shards)}

    def _listen(self):
        try:
            self._listen_forever()
        finally:
            self._disconnected()

    def _disconnected(self):
        self._live, self.connected, self.down = False, False, True
        self.subscriptions.release()

    def _listen_forever(self):
        delay = RECONNECT_MIN
        while True:
            self._failure, self._readers = gevent.event.AsyncResult(), gevent.pool.Group()
            try:
                if self._ever_connected:
                    self.client.nodes_manager.initialize()  # who owns which slot now
                else:
                    self.client.ping()
                self.subscriptions.unconfirm()
                self._live = True  # from here a subscribe() meanwhile goes to its shard at once
                for wire in list(self.subscriptions.wanted):
                    if not any(wire in shard.wires for shard in self.shards.values()):
                        self._subscribe_on_owner(wire)
                self.connected, self.down, delay = True, False, RECONNECT_MIN
                self._reconnected()
                raise self._failure.get()
            except UNREACHABLE + (ShardMoved,) as exc:
                if self.connected or not self._ever_connected:
                    log.warning("Redis Cluster PubSub connection lost (%s); retrying with backoff", exc)
                self._disconnected()
            finally:
                self._readers.kill()
                for shard in self.shards.values():
                    shard.close()
                self.shards = {}
            gevent.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX)

    def _reconnected(self):
        if self._ever_connected:
            self.reconnects += 1
            log.warning("reconnected to Redis Cluster; resubscribed %d channels on %d shards",
                        len(self.subscriptions.wanted), len(self.shards))
            if self.on_reconnect:
                self.on_reconnect()
        self._ever_connected = True

    def describe(self):
        return (f"Redis Cluster at {self.url}: sharded PubSub, one subscription connection per shard "
                "and worker process")
