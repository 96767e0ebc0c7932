"""Redis Cluster (`redis+cluster://host1:7000,host2:7001/`): fan-out on sharded PubSub.

A room's channel lives on the one shard that owns its slot: SPUBLISH goes there (through redis-py's
RedisCluster, which routes by slot and follows MOVED), and each worker SSUBSCRIBEs there, on ONE
PubSub connection per shard it needs (not per socket, nor per channel). So fan-out capacity grows
with the number of shards. Channel and presence keys carry the same hash tag (base.Names), so
presence's scripts run on that shard and publish their diffs there too.

redis-py's ClusterPubSub is not used for reading: its get_sharded_message(timeout) waits on one
shard at a time (a quiet shard delays the others' messages), and it re-homes channels after a
topology change from its own thread, behind a reader's back. Here each shard's connection has its
own reader greenlet. A lost shard connection (its primary died) or a moved slot touches only the
channels on it: /healthz is degraded, the slot map is read again from the cluster (redis-py's
NodesManager.initialize), those channels are subscribed again on their owner's connection, and the
hub resyncs those channels only (their clients are caught up from stored history, as after any
reconnect), while the other shards go on delivering.
"""

import threading

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from .base import UNREACHABLE, ListeningBroker, log
from .subscriptions import read_forever
from .urls import mask_password, parse_cluster_url


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
        self.client = redis.Redis(host=node.host, port=node.port, **options)
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


class ClusterBroker(ListeningBroker):
    kind = "redis-cluster"
    service = "Redis Cluster"
    sharded = True

    def __init__(self, url, names=None):
        super().__init__(url, names)
        self.nodes, self.options = parse_cluster_url(url)
        self.client = LazyCluster(self._make_client)
        self.shards = {}  # node name -> Shard: the live connections
        self.placed = {}  # wire -> the Shard it is subscribed on; a wanted wire missing here needs placing
        self._ready = False  # the slot map is known: subscribe() may send at once
        self._trouble = gevent.event.Event()  # something needs the listener: a lost shard, a moved slot
        self._unexpected = None  # an exception a delivery raised: the listener fails with it
        self._readers = gevent.pool.Group()  # one per shard, children of the listener

    def _make_client(self):
        """Publishing and presence: per shard, as with one server, a few connections at most that a
        burst waits its turn for (BlockingConnectionPool, which redis-py gives each node only when
        the cluster is named by a URL: the first node's, the others as further startup nodes)."""
        options = dict(self.options)
        scheme = "rediss" if options.pop("ssl", False) else "redis"
        first, *others = self.nodes
        return RedisCluster(
            url=f"{scheme}://{first.host}:{first.port}", startup_nodes=others,
            connection_pool_class=redis.BlockingConnectionPool, max_connections=4, timeout=None,
            **{**self.publisher_options(), "socket_connect_timeout": 1}, **options)

    def subscribe(self, channel):
        wire = self.names.channel(channel)
        if self.subscriptions.add(wire, channel) and self._ready:
            try:
                self._subscribe_on_owner(wire)
            except UNREACHABLE as exc:
                self._needs_placing([wire], f"could not subscribe to {wire} ({exc})")
        self.subscriptions.wait(wire, self.down)

    def unsubscribe(self, channel):
        wire = self.names.channel(channel)
        self.subscriptions.remove(wire)
        shard = self.placed.pop(wire, None)
        if shard is not None:
            shard.wires.discard(wire)
            try:
                with shard.lock:
                    self.subscriptions.unsubscribing(wire)
                    shard.pubsub.sunsubscribe(wire)
            except UNREACHABLE as exc:
                self._shard_lost(shard, exc)

    def _subscribe_on_owner(self, wire):
        node = self.client.get_node_from_key(wire)
        shard = self.shards.get(node.name)
        if shard is None:
            shard = self.shards[node.name] = Shard(node, {**self.listener_options(), **self.options})
        try:
            with shard.lock:
                shard.pubsub.ssubscribe(wire)
        except UNREACHABLE as exc:
            self._shard_lost(shard, exc)
            raise
        if not shard.reading:  # its connection is open now
            shard.reading = True
            self._readers.spawn(self._read, shard)
        if wire not in self.subscriptions.wanted:  # its last member left while Redis answered
            with shard.lock:
                self.subscriptions.unsubscribing(wire)
                shard.pubsub.sunsubscribe(wire)
            return
        shard.wires.add(wire)
        self.placed[wire] = shard

    def _read(self, shard):
        try:
            read_forever(shard.pubsub, self.subscriptions, self.on_message, self.health_interval, sharded=True,
                         on_moved=lambda wire: self._moved(shard, wire))
        except UNREACHABLE as exc:
            self._shard_lost(shard, exc)
        except gevent.GreenletExit:
            raise
        except BaseException as exc:  # a callback that raised: the listener fails, and is restarted
            self._shard_lost(shard, exc, unexpected=True)

    def _shard_lost(self, shard, exc, unexpected=False):
        """One shard's connection is gone (its primary died, or failed over): its channels need
        placing again; the other shards go on delivering."""
        if self.shards.get(shard.name) is shard:
            del self.shards[shard.name]
            shard.close()
            for wire in shard.wires:
                self.placed.pop(wire, None)
            self._needs_placing(shard.wires, f"lost the PubSub connection to shard {shard.name} ({exc})",
                                exc if unexpected else None)

    def _moved(self, shard, wire):
        """Redis ended our subscription to `wire` on `shard`: its slot moved to another shard."""
        shard.wires.discard(wire)
        if self.placed.get(wire) is shard:
            del self.placed[wire]
        self._needs_placing([wire], f"{wire} moved off shard {shard.name}")

    def _needs_placing(self, wires, why, unexpected=None):
        if self.connected:
            log.warning("Redis Cluster: %s; subscribing again where the slot map says", why)
        self.connected = False
        self.subscriptions.release(list(wires))  # their waiting subscribers go on, degraded
        if unexpected is not None:
            self._unexpected = unexpected
        self._trouble.set()

    def _publish(self, wire, message):
        self.client.spublish(wire, message)

    def health(self):
        return {**super().health(), "broker_shards": sorted(self.shards)}

    def _connect(self):
        """Place every wanted channel that has no connection (all, at first) on its shard's."""
        self._unexpected = None
        self._trouble.clear()
        if self._ever_connected:
            self.client.nodes_manager.initialize()  # who owns which slot now
        else:
            self.client.ping()
        homeless = [wire for wire in self.subscriptions.wanted if wire not in self.placed]
        self.subscriptions.unconfirm(homeless)
        self._ready = True  # from here a subscribe() meanwhile goes to its shard at once
        for wire in homeless:
            if wire in self.subscriptions.wanted and wire not in self.placed:
                self._subscribe_on_owner(wire)
        return {self.subscriptions.wanted[wire] for wire in homeless if wire in self.subscriptions.wanted}

    def _serve(self):
        """Wait for trouble (a lost shard, a moved slot): the next pass repairs just what it touched."""
        self._trouble.wait()
        if self._unexpected is not None:
            raise self._unexpected

    def _lost(self):
        self.down = not self.shards  # the other shards' channels still deliver

    def _close(self):
        self._readers.kill()
        for shard in self.shards.values():
            shard.close()
        self.shards, self.placed = {}, {}
        self.subscriptions.release()

    def describe(self):
        return (f"Redis Cluster at {mask_password(self.url)}: sharded PubSub, one subscription connection per shard "
                "and worker process")
