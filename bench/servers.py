"""The processes under test: Redis plus the server of one kind, pinned to the server CPUs.

Each scenario gets a fresh stack (new Redis, new server processes, a fresh copy of a migrated
SQLite database), so no scenario inherits another's load, state or memory.
Needs Django set up (realtime.testing reads settings.BASE_DIR).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from realtime.testing import RedisServer, ServerProcess, WorkerProcess

from .config import ABUSE_ROOM, ROOM, SHARDING_ROOMS

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CHANNELS_PYTHON = BENCH / ".venv-channels" / "bin" / "python"
BARE_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
STOP_TIMEOUT = 5


def pinned(command, cpus):
    """`command` under taskset when there are CPUs to pin it to."""
    return ["taskset", "-c", ",".join(map(str, cpus)), *command] if cpus else command


def production_env(**extra):
    """Our settings as in production (DEBUG off), quiet logs, a short graceful stop."""
    return {"DEBUG": "0", "SECRET_KEY": "benchmark-only", "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "WS_ACCESS_LOG": "/dev/null", "WS_GRACEFUL_TIMEOUT": "1", "LOG_LEVEL": "WARNING", **extra}


class Logged:
    """Keep a server's log in the run's log folder instead of a temporary file."""

    def place_log(self, log_dir, label):
        old = self.log_path
        self.log_path = Path(log_dir) / f"{label}-{self.port}.log"
        old.unlink(missing_ok=True)


class BenchRedis(Logged, RedisServer):
    def __init__(self, cpus, log_dir):
        super().__init__()
        self.cpus = cpus
        self.place_log(log_dir, "redis")

    def command(self):
        return pinned(super().command(), self.cpus) + ["--maxclients", "20000"]


class OurWorker(Logged, WorkerProcess):
    """`gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket`: the real chat and echo views."""

    def __init__(self, redis_url, database_url, cpus, log_dir, default_limits=False, env=None):
        # The per-connection rate limits (50 msg/s, 200 frames/s by default) are a policy the echo
        # scenario would hit at once; set so high they never trigger, their token buckets still run.
        # So are the posting and join budgets per address (every client of the load generator is 127.0.0.1).
        # The flood and abuse scenarios measure those policies: they keep the defaults.
        unlimited = {} if default_limits else {
            "WEBSOCKET_RATE_LIMIT": "1000000", "WEBSOCKET_RATE_BURST": "1000000",
            "WEBSOCKET_FRAME_RATE": "1000000", "WEBSOCKET_FRAME_BURST": "1000000",
            "CHAT_POST_RATE": "0", "CHAT_GUEST_POST_RATE": "0", "WEBSOCKET_JOIN_RATE": "0", "WEBSOCKET_GUEST_JOIN_RATE": "0"}
        # The crowd of 10,000 is one room on one worker: above the default 9,000 connections a worker.
        super().__init__(redis_url=redis_url, env=production_env(
            DATABASE_URL=database_url, WEBSOCKET_MAX_CONNECTIONS="12000", WS_WORKER_CONNECTIONS="13000", **unlimited,
            **(env or {})))
        self.cpus = cpus
        self.place_log(log_dir, "ours")

    def command(self):
        return pinned(super().command(), self.cpus)

    def env(self):
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}


class BareWorker(Logged, WorkerProcess):
    """bench/bare_server.py under gevent-websocket's own gunicorn worker."""

    def __init__(self, redis_url, cpus, log_dir):
        super().__init__(redis_url=redis_url)
        self.cpus = cpus
        self.place_log(log_dir, "bare")

    def command(self):
        return pinned([sys.executable, "-m", "gunicorn", "-k", BARE_WORKER, "--workers", "1",
                       # gunicorn's default of 1,000 connections per worker would cap the idle test.
                       "--worker-connections", "20000", "--timeout", "120", "--graceful-timeout", "1",
                       "--no-control-socket", "--bind", f"127.0.0.1:{self.port}",
                       "bench.bare_server:application"], self.cpus)

    def env(self):
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}


class ChannelsServer(Logged, ServerProcess):
    """daphne serving bench/channels_app with the chosen channels_redis layer."""

    name = "daphne"

    def __init__(self, layer, redis_url, database_path, cpus, log_dir):
        super().__init__()
        self.layer, self.redis_url, self.database_path, self.cpus = layer, redis_url, database_path, cpus
        self.place_log(log_dir, f"channels-{layer}")

    def command(self):
        # The listen backlog raised like gunicorn's (2048): twisted's default of 50 drops SYNs
        # while thousands connect, which would measure the kernel, not Channels.
        return pinned([str(CHANNELS_PYTHON), "-m", "daphne", "-v", "0",
                       "-e", f"tcp:port={self.port}:interface=127.0.0.1:backlog=2048",
                       "channels_app.asgi:application"], self.cpus)

    def env(self):
        return {**os.environ, "PYTHONPATH": str(BENCH), "DJANGO_SETTINGS_MODULE": "channels_app.settings",
                "CHANNEL_LAYER": self.layer, "REDIS_URL": self.redis_url, "CHANNELS_DB": str(self.database_path),
                "PYTHONUNBUFFERED": "1"}

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"


def migrate_templates(run_dir, channels_too=True):
    """Migrate one SQLite database for us and one for Channels (when it runs); stacks copy them."""
    ours = Path(run_dir) / "ours-template.sqlite3"
    channels = Path(run_dir) / "channels-template.sqlite3"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, **production_env(DATABASE_URL=f"sqlite:///{ours}")})
    # Anonymous clients join only rooms that exist: the benchmark's room is opened beforehand.
    subprocess.run([sys.executable, "manage.py", "shell", "-v0", "-c",
                    f"from chat.models import Room\nfor name in {[ROOM, ABUSE_ROOM, *SHARDING_ROOMS]!r}: "
                    "Room.objects.get_or_create(name=name)"], cwd=ROOT, check=True,
                   env={**os.environ, **production_env(DATABASE_URL=f"sqlite:///{ours}")})
    if channels_too:
        subprocess.run([str(CHANNELS_PYTHON), "-m", "django", "migrate", "-v0", "--settings", "channels_app.settings"],
                       cwd=BENCH, check=True, env={**os.environ, "CHANNELS_DB": str(channels)})
    return {"ours": ours, "channels": channels}


class Stack:
    """Redis (one server, or with broker="cluster" a Redis Cluster of three primaries with a
    replica each) and `len(cpu_sets)` server processes of one kind (one per CPU set), started together."""

    def __init__(self, kind, cpu_sets, run_dir, templates, default_limits=False, broker="redis", env=None):
        self.kind, self.cpu_sets, self.run_dir, self.templates = kind, cpu_sets, Path(run_dir), templates
        self.default_limits, self.broker, self.env = default_limits, broker, env
        self.redis = self.cluster = None
        self.servers = []

    def start(self):
        # Redis belongs to the server side: it shares the first server CPU set.
        if self.broker == "cluster":
            from tests.redis_topologies import ClusterTopology

            self.cluster = ClusterTopology().start()
            for node in self.cluster.nodes:
                psutil.Process(node.process.pid).cpu_affinity(list(self.cpu_sets[0]) or None)
        else:
            self.redis = BenchRedis(self.cpu_sets[0], self.run_dir).start()
        try:
            for index, cpus in enumerate(self.cpu_sets):
                self.servers.append(self.make_server(index, cpus).start())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def redis_url(self):
        return self.cluster.url if self.cluster else self.redis.url

    def redis_nodes(self):
        """The redis-server processes: the one server, or every node of the cluster."""
        return self.cluster.nodes if self.cluster else [self.redis]

    def redis_counters(self):
        """{redis port: (role, CPU seconds, PUBLISH + SPUBLISH calls, all commands' calls)} from each
        node's own INFO (getrusage: finer than the process's clock ticks)."""
        import redis

        counters = {}
        for node in self.redis_nodes():
            client = redis.Redis(port=node.port)
            try:
                info = client.info("everything")
            except redis.RedisError:
                continue
            finally:
                client.close()
            calls = sum(info.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("publish", "spublish"))
            every = {key[8:]: value["calls"] for key, value in info.items() if key.startswith("cmdstat_")}
            counters[node.port] = (info["role"], info["used_cpu_sys"] + info["used_cpu_user"], calls, every)
        return counters

    def make_server(self, index, cpus):
        if self.kind == "ours":
            database = self.fresh_database("ours", index)
            return OurWorker(self.redis_url, f"sqlite:///{database}", cpus, self.run_dir, self.default_limits, self.env)
        if self.kind == "bare":
            return BareWorker(self.redis_url, cpus, self.run_dir)
        layer = self.kind.removeprefix("channels-")
        return ChannelsServer(layer, self.redis_url, self.fresh_database("channels", index), cpus, self.run_dir)

    def database_path(self, which="ours"):
        # Servers in one stack share one database, as workers of one deployment do.
        return self.run_dir / f"{which}-{self.kind}-{self.redis_nodes()[0].port}.sqlite3"

    def fresh_database(self, which, index):
        path = self.database_path(which)
        if index == 0:
            shutil.copy(self.templates[which], path)
        return path

    def urls(self, path):
        return [server.url(path) for server in self.servers]

    def database_connections(self):
        """Connections our server processes hold to their database now: its file opened once per
        connection (SQLite)."""
        path = str(self.database_path())
        return sum(_safe(lambda p: sum(f.path == path for f in p.open_files()), process) for process in self.processes())

    def stored_messages(self, room):
        """How many messages our servers stored in `room`."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.database_path())) as db:
            return db.execute("SELECT count(*) FROM chat_message JOIN chat_room ON chat_room.id = room_id "
                              "WHERE chat_room.name = ?", (room,)).fetchone()[0]

    def processes(self):
        """The server processes (gunicorn master and workers, daphne), not Redis."""
        found = []
        for server in self.servers:
            try:
                root = psutil.Process(server.process.pid)
                found += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return found

    def rss_bytes(self):
        return sum(_safe(lambda p: p.memory_info().rss, process) for process in self.processes())

    def cpu_seconds(self):
        return sum(_safe(lambda p: sum(p.cpu_times()[:2]), process) for process in self.processes())

    def redis_cpu_seconds(self, nodes=None):
        """CPU seconds of the redis-server processes (`nodes`: ports, default all)."""
        total = 0
        for node in self.redis_nodes():
            if node.process is not None and (nodes is None or node.port in nodes):
                total += _safe(lambda p: sum(p.cpu_times()[:2]), node.process.pid)
        return total

    def gc_pauses(self):
        """{"full_collections", "full_seconds"} summed over our workers (their /metrics), {} for others."""
        import re

        if self.kind != "ours":
            return {}
        totals = {"full_collections": 0, "full_seconds": 0.0}
        for server in self.servers:
            answer = server.http_get("/metrics")
            for name in totals:
                found = re.search(rf"^realtime_gc_{name}_total\{{[^}}]*\}} (\S+)$", answer[2] if answer else "", re.M)
                totals[name] += float(found.group(1)) if found else float("nan")
        return {name: round(value, 3) for name, value in totals.items()}

    def alive(self):
        return all(server.process.poll() is None for server in self.servers)

    def logs_tail(self, lines=20):
        return {server.log_path.name: server.log().splitlines()[-lines:] for server in self.servers}

    def stop(self):
        for server in self.servers:
            server.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        if self.redis is not None:
            self.redis.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        if self.cluster is not None:
            self.cluster.stop()
        for path in self.run_dir.glob(f"*-{self.kind}-*.sqlite3*"):
            path.unlink(missing_ok=True)


def _safe(measure, process):
    try:
        return measure(psutil.Process(process) if isinstance(process, int) else process)
    except psutil.Error:
        return 0
