"""Redis topologies for tests, on loopback ports: a primary with a replica watched by three
sentinels, and a Redis Cluster of three primaries with a replica each. Each is started once per
test class (see tests/test_sentinel.py, tests/test_cluster.py) and stopped with its temp files."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from realtime.testing import LiveWebSocketTestCase, RedisServer, WorkerProcess, free_port, require_binary, wait_until

SERVICE = "primary"


def ask(port, *command, timeout=1.0):
    """One command's reply (via redis-cli, as text), or None when nothing answers."""
    try:
        result = subprocess.run([require_binary("redis-cli"), "-p", str(port), *command],
                                capture_output=True, text=True, timeout=timeout + 1)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout if result.returncode == 0 else None


class RedisNode(RedisServer):
    """A redis-server with extra options (a replica's `--replicaof`, cluster mode, ...)."""

    def __init__(self, *options, directory=None):
        super().__init__()
        self.options = list(options)
        self.directory = directory

    def command(self):
        where = ["--dir", str(self.directory)] if self.directory else []
        return super().command() + where + self.options

    def kill(self):
        """kill -9: no goodbye to clients, replicas or sentinels."""
        self.stop(sig=9)


class SentinelServer(RedisServer):
    """`redis-server sentinel.conf --sentinel`: no separate redis-sentinel binary needed."""

    name = "sentinel"

    def __init__(self, directory, primary_port, down_after_ms, failover_timeout_ms):
        super().__init__()
        self.config = Path(directory) / f"sentinel-{self.port}.conf"  # Sentinel rewrites it: its own file
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n")

    def command(self):
        return [require_binary("redis-server"), str(self.config), "--sentinel"]


class SentinelTopology:
    """One primary, one replica, three sentinels (quorum 2). Failures are noticed within
    `down_after_ms`; a failover then takes about a second more."""

    def __init__(self, down_after_ms=1000, failover_timeout_ms=3000):
        self.directory = Path(tempfile.mkdtemp(prefix="sentinel-"))
        # Diskless sync without delay: the replica is in step at once, not after 5 s.
        sync = ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        self.primary = RedisNode(*sync, directory=self.directory)
        self.replica = RedisNode(*sync, directory=self.directory)
        self.replica.options += ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.sentinels = [SentinelServer(self.directory, self.primary.port, down_after_ms, failover_timeout_ms)
                          for _ in range(3)]
        self.servers = [self.primary, self.replica, *self.sentinels]

    def start(self):
        try:
            for server in self.servers:
                server.start()
            # Ready for a failover once every sentinel knows the replica and the two other sentinels.
            wait_until(lambda: all(self.knows_everyone(s) for s in self.sentinels), timeout=20,
                       message="the sentinels to find the replica and each other")
            wait_until(lambda: "master_link_status:up" in (ask(self.replica.port, "info", "replication") or ""),
                       message="the replica to be in sync")
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def knows_everyone(sentinel):
        info = ask(sentinel.port, "info", "sentinel") or ""
        return "slaves=1,sentinels=3" in info

    @property
    def url(self):
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_port(self):
        """The port of the primary the sentinels announce now."""
        reply = ask(self.sentinels[0].port, "sentinel", "get-master-addr-by-name", SERVICE) or ""
        lines = reply.split()
        return int(lines[1]) if len(lines) == 2 else None

    def stop(self):
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class ClusterNodeServer(RedisNode):
    """A redis-server in cluster mode. Its two ports (clients, and the cluster bus) are picked when
    it starts, and picked again if one was taken meanwhile (the other nodes' connections take
    ephemeral ports too)."""

    def __init__(self, directory, node_timeout_ms):
        super().__init__(directory=directory)
        self.node_timeout_ms = node_timeout_ms

    def command(self):
        return super().command() + [
            "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # Its own port for the bus (by default port + 10000, which may be taken or above 65535).
            "--cluster-port", str(self.bus_port),
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]

    def start(self, timeout=20):
        for attempt in range(3):
            self.port, self.bus_port = free_port(), free_port()
            try:
                return super().start(timeout)
            except RuntimeError as error:
                if "already in use" not in str(error) or attempt == 2:
                    raise


class ClusterTopology:
    """Three primaries with a replica each (`redis-cli --cluster create`). A primary that dies is
    taken for failed after `node_timeout_ms` and its replica promoted about a second later."""

    def __init__(self, node_timeout_ms=1000):
        self.directory = Path(tempfile.mkdtemp(prefix="cluster-"))
        self.nodes = [ClusterNodeServer(self.directory, node_timeout_ms) for _ in range(6)]

    def start(self):
        try:
            for node in self.nodes:
                node.start()
            subprocess.run([require_binary("redis-cli"), "--cluster", "create",
                            *(f"127.0.0.1:{node.port}" for node in self.nodes),
                            "--cluster-replicas", "1", "--cluster-yes"],
                           check=True, capture_output=True, timeout=60)
            wait_until(self.healthy, timeout=30, message="the cluster to be up, with a replica per primary")
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self):
        """Every live node says the cluster is ok and sees three primaries, each with a live replica."""
        live = [node for node in self.nodes if node.process and node.process.poll() is None]
        if not all("cluster_state:ok" in (ask(node.port, "cluster", "info") or "") for node in live):
            return False
        return len(self.primaries()) == 3 and all(self.replica_of(port) for port in self.primaries())

    def nodes_table(self, port=None):
        """CLUSTER NODES as seen by a live node: [(port, flags, primary id, own id, slots)]."""
        for node in self.nodes if port is None else [n for n in self.nodes if n.port == port]:
            reply = ask(node.port, "cluster", "nodes")
            if reply:
                table = []
                for line in reply.strip().splitlines():
                    fields = line.split()
                    table.append((int(fields[1].split("@")[0].rsplit(":", 1)[1]), fields[2], fields[3],
                                  fields[0], fields[8:]))
                return table
        return []

    def primaries(self):
        """Ports of the live primaries that serve slots."""
        return [port for port, flags, _, _, slots in self.nodes_table()
                if "master" in flags and "fail" not in flags and slots]

    def replica_of(self, primary_port):
        table = self.nodes_table()
        own_id = next(node_id for port, _, _, node_id, _ in table if port == primary_port)
        return next((port for port, flags, parent, _, _ in table
                     if parent == own_id and "fail" not in flags), None)

    def node(self, port):
        return next(node for node in self.nodes if node.port == port)

    def owner(self, key):
        """The port of the primary that owns `key`'s slot now."""
        slot = int(ask(self.primaries()[0], "cluster", "keyslot", key))
        for port, flags, _, _, slots in self.nodes_table():
            if "master" in flags and "fail" not in flags:
                for span in slots:
                    if span.startswith("["):
                        continue  # a slot being migrated
                    low, _, high = span.partition("-")
                    if int(low) <= slot <= int(high or low):
                        return port
        return None

    def move_slot(self, key, to_port):
        """Move `key`'s slot, keys and all, to the primary on `to_port` (CLUSTER SETSLOT, MIGRATE):
        what a resharding does slot by slot. Subscribers of its shard channels on the old owner
        are told `sunsubscribe`."""
        ids = {port: node_id for port, _, _, node_id, _ in self.nodes_table()}
        source, slot = self.owner(key), ask(to_port, "cluster", "keyslot", key).strip()
        ask(to_port, "cluster", "setslot", slot, "importing", ids[source])
        ask(source, "cluster", "setslot", slot, "migrating", ids[to_port])
        while keys := (ask(source, "cluster", "getkeysinslot", slot, "100") or "").split():
            ask(source, "migrate", "127.0.0.1", str(to_port), "", "0", "5000", "keys", *keys)
        for port in [to_port, source, *(p for p in self.primaries() if p not in (to_port, source))]:
            ask(port, "cluster", "setslot", slot, "node", ids[to_port])

    @property
    def url(self):
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3]) + "/"

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class TopologyTestCase(LiveWebSocketTestCase):
    """Live workers whose REDIS_URL is a topology (`topology_class`) started once for the class."""

    topology_class = None

    @classmethod
    def setUpClass(cls):
        cls.topology = cls.topology_class().start()
        try:
            super().setUpClass()
        except BaseException:
            cls.topology.stop()
            raise

    @classmethod
    def start_worker(cls, **env):
        return WorkerProcess(redis_url=cls.topology.url, env={**cls.worker_env, **env}).start()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.topology.stop()
