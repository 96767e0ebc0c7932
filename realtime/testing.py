"""Test WebSocket views against real servers: a gunicorn websocket worker, and Redis.

Like Channels' WebsocketCommunicator, but the view runs in a real worker process, so the
test sees exactly what a client would. Typical use::

    from realtime.testing import LiveWebSocketTestCase

    class EchoTests(LiveWebSocketTestCase):
        def test_echo(self):
            client = self.connect("/echo/")
            client.send("hi")
            self.assertEqual(client.receive(), "hi")

Servers start once per test class on free loopback ports and stop afterwards. A system
binary that is missing skips the class locally, with the reason, and fails it in CI (CI=true).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from urllib.parse import urlencode

import websocket as websocket_client
from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

DEFAULT_TIMEOUT = 5.0
GUNICORN_CONFIG = Path(settings.BASE_DIR) / "deploy" / "gunicorn_ws.py"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name):
    """The path of a system program; skip (locally) or fail (in CI) when it is missing."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
    if path:
        return path
    message = f"'{name}' is not installed (apt-get install the packages listed in README.md)"
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"{message}: in CI this is a failure, not a skip")
    print(f"\n*** SKIPPING: {message} ***", file=sys.stderr)
    raise unittest.SkipTest(message)


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


class ServerProcess:
    """A subprocess that serves on a loopback port, with its output kept in a log file."""

    name = "server"

    def __init__(self):
        self.port = free_port()
        self.process = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")[1])

    def command(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def ready(self):
        raise NotImplementedError

    def start(self, timeout=20):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def start_if_stopped(self):
        """For the cleanup of a test that kills the server: the next test finds it running."""
        if self.process is None or self.process.poll() is not None:
            self.start()

    def signal(self, sig):
        """Signal the whole process group: SIGSTOP freezes it (its TCP connections hang), SIGCONT thaws it."""
        os.killpg(self.process.pid, sig)

    def log(self):
        return self.log_path.read_text(errors="replace")


class RedisServer(ServerProcess):
    """A throwaway redis-server: no persistence, loopback only."""

    name = "redis"

    def command(self):
        return [require_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"]

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def database_url():
    """DATABASE_URL for the database this process uses now (the test database, in tests)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise NotImplementedError(f"no DATABASE_URL form for {db['ENGINE']}")


class WebSocketWorker(ServerProcess):
    """`gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket` on a free port."""

    name = "ws-worker"

    def __init__(self, redis_url="", env=None, workers=1):
        super().__init__()
        self.extra_env = {"REDIS_URL": redis_url, "WS_WORKERS": str(workers), **(env or {})}

    def command(self):
        return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG),
                "--bind", f"127.0.0.1:{self.port}", "project.wsgi:websocket"]

    def env(self):
        return {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", **self.extra_env}

    def ready(self):
        # The master binds before the worker boots: wait for an HTTP answer from the worker.
        return self.http_get("/__ready__") is not None

    def http_get(self, path, headers=None):
        """(status, headers, body) of a plain HTTP GET, or None if nothing answers."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode(errors="replace")
        except OSError:
            return None

    def url(self, path, **query):
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")


class WebSocketClient:
    """A blocking test client (websocket-client) where every receive has a timeout."""

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, **options):
        self.ws = websocket_client.create_connection(url, timeout=timeout, **options)

    def send(self, message):
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(bytes(message))

    def send_json(self, event, data=None):
        self.send(json.dumps({"event": event, "data": data or {}}))

    def receive(self, timeout=DEFAULT_TIMEOUT):
        """The next message (str or bytes); AssertionError if none comes in time."""
        self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data()
        except websocket_client.WebSocketTimeoutException:
            raise AssertionError(f"no message within {timeout} s") from None
        if opcode == websocket_client.ABNF.OPCODE_TEXT:
            return data.decode()
        if opcode == websocket_client.ABNF.OPCODE_CLOSE:
            raise AssertionError(f"connection closed by the server: {self.close_code(data)}")
        return data

    def receive_json(self, timeout=DEFAULT_TIMEOUT):
        return json.loads(self.receive(timeout))

    def receive_event(self, event, timeout=DEFAULT_TIMEOUT):
        """Skip other events until one named `event` arrives; return its data."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive_json(max(0.01, deadline - time.monotonic()))
            if message.get("event") == event:
                return message["data"]

    def receive_until(self, event, timeout=DEFAULT_TIMEOUT):
        """(every message before the first `event`, as parsed JSON; that event's data)."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            message = self.receive_json(max(0.01, deadline - time.monotonic()))
            if message.get("event") == event:
                return before, message["data"]
            before.append(message)

    def receive_close(self, timeout=DEFAULT_TIMEOUT):
        """Read until the server's close frame; return its code (None if the TCP connection just ended)."""
        self.ws.settimeout(timeout)
        try:
            while True:
                frame = self.ws.recv_frame()
                if frame.opcode == websocket_client.ABNF.OPCODE_CLOSE:
                    return self.close_code(frame.data)
        except (websocket_client.WebSocketConnectionClosedException, ConnectionError):
            return None

    @staticmethod
    def close_code(data):
        return int.from_bytes(data[:2], "big") if len(data) >= 2 else None

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


class LiveWebSocketTestCase(TransactionTestCase):
    """Starts `worker_count` websocket workers (and Redis when `use_redis`) for the class."""

    worker_count = 1
    use_redis = False
    worker_env = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer().start() if cls.use_redis else None
        cls.workers = []
        try:
            for _ in range(cls.worker_count):
                cls.workers.append(cls.start_worker())
        except BaseException:
            cls.stop_servers()
            raise
        cls.worker = cls.workers[0]

    @classmethod
    def start_worker(cls, **env):
        redis_url = cls.redis.url if cls.redis else ""
        return WebSocketWorker(redis_url=redis_url, env={**cls.worker_env, **env}).start()

    @classmethod
    def stop_servers(cls):
        for worker in cls.workers:
            worker.stop()
        if cls.redis:
            cls.redis.stop()

    @classmethod
    def tearDownClass(cls):
        cls.stop_servers()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        super().tearDown()

    def connect(self, path, worker=None, **query):
        """Open a WebSocket to `path` on a worker (the first by default); closed after the test."""
        client = WebSocketClient((worker or self.worker).url(path, **query))
        self.clients.append(client)
        return client
