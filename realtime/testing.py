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

For a whole deployment there are also PageServer (gunicorn with deploy/gunicorn_http.py),
TaskWorker (`manage.py db_worker`, the Tasks framework's worker) and NginxServer (an unprivileged
nginx in front of them, serving a site configuration you give it).
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

import psycopg
import websocket as websocket_client
from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

from .transport.codes import NORMAL

DEFAULT_TIMEOUT = 10.0  # generous: a busy CI machine is slow, and only a failing wait ever waits this long
DEPLOY_DIR = Path(settings.BASE_DIR) / "deploy"
GUNICORN_CONFIG = DEPLOY_DIR / "gunicorn_ws.py"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name, also_in=()):
    """The path of a system program (looked for in PATH, the sbin/bin folders and `also_in`);
    skip (locally) or fail (in CI) when it is missing."""
    folders = [Path("/usr/sbin"), Path("/usr/bin"), *also_in]
    path = shutil.which(name) or next((str(f / name) for f in folders if (f / name).exists()), None)
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

    def http_get(self, path, headers=None, timeout=2):
        """(status, headers, body) of a plain HTTP GET, or None if nothing answers in time."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode(errors="replace")
        except OSError:
            return None


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


class PostgresServer(ServerProcess):
    """A throwaway PostgreSQL cluster in a temporary folder: loopback only, no durability.

    PostgreSQL refuses to run as root: as root (CI) it runs as the `postgres` user of Debian's package.
    """

    name = "postgres"

    def __init__(self):
        super().__init__()
        bin_folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"))  # Debian keeps them out of PATH
        self.initdb, self.postgres = (require_binary(name, bin_folders) for name in ("initdb", "postgres"))
        self.directory = Path(tempfile.mkdtemp(prefix="postgres-"))
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.directory, "postgres")
        subprocess.run([*self.as_owner, self.initdb, "-D", str(self.directory / "data"), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                       check=True, capture_output=True, timeout=120)

    def command(self):
        return [*self.as_owner, self.postgres, "-D", str(self.directory / "data"), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-k", str(self.directory),
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def ready(self):
        try:
            psycopg.connect(self.url, connect_timeout=1).close()
            return True
        except psycopg.Error:
            return False

    def stop(self, sig=signal.SIGINT, timeout=15):  # SIGINT: PostgreSQL's fast shutdown
        super().stop(sig, timeout)
        shutil.rmtree(self.directory, ignore_errors=True)


def database_url():
    """DATABASE_URL for the database this process uses now (the test database, in tests)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise NotImplementedError(f"no DATABASE_URL form for {db['ENGINE']}")


class GunicornServer(ServerProcess):
    """gunicorn with one of the shipped configs (deploy/) on a free port, on the test database."""

    config = None
    app = None

    def __init__(self, env=None):
        super().__init__()
        self.extra_env = dict(env or {})

    def command(self):
        return [sys.executable, "-m", "gunicorn", "-c", str(self.config),
                "--bind", f"127.0.0.1:{self.port}", self.app]

    def env(self):
        return {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", **self.extra_env}

    def ready(self):
        # The master binds before its workers boot: wait for an HTTP answer from a worker.
        return self.http_get("/__ready__") is not None


class PageServer(GunicornServer):
    """`gunicorn -c deploy/gunicorn_http.py project.wsgi:application`: the pages, as in production."""

    name = "page-server"
    config = DEPLOY_DIR / "gunicorn_http.py"
    app = "project.wsgi:application"


class WebSocketWorker(GunicornServer):
    """`gunicorn -c deploy/gunicorn_ws.py project.wsgi:websocket` on a free port."""

    name = "ws-worker"
    config = GUNICORN_CONFIG
    app = "project.wsgi:websocket"

    def __init__(self, redis_url="", env=None, workers=1):
        super().__init__({"REDIS_URL": redis_url, "WS_WORKERS": str(workers), **(env or {})})

    def url(self, path, **query):
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")

    def rss(self):
        """Resident memory of the (first) worker process, gunicorn's child, in bytes."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        status = Path(f"/proc/{children[0]}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))


class TaskWorker(ServerProcess):
    """`manage.py db_worker` (Django's Tasks framework, database backend) on the test database.

    It serves no port: it is ready once it logs that it takes tasks. The worker id stays the same
    across restarts, as the systemd unit's does, so a restarted worker settles what it left running.
    """

    name = "task-worker"
    STARTED = "Starting worker worker_id="

    def __init__(self, worker_id="test-tasks", redis_url="", env=None, interval=0.1):
        super().__init__()
        self.worker_id, self.interval = worker_id, interval
        self.extra_env = {"REDIS_URL": redis_url, **(env or {})}
        self.starts_logged = 0

    def command(self):
        return [sys.executable, "manage.py", "db_worker", "--worker-id", self.worker_id, "--interval",
                str(self.interval), "--no-startup-delay", "--no-reload"]

    def env(self):
        return {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", **self.extra_env}

    def start(self, timeout=20):
        self.starts_logged = self.log().count(self.STARTED)  # the log file outlives restarts
        return super().start(timeout)

    def ready(self):
        return self.log().count(self.STARTED) > self.starts_logged


NGINX_MAIN_CONF = """\
# What Debian's /etc/nginx/nginx.conf puts around a site, with every path in this directory.
worker_processes 1;
pid nginx.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    {mime_types}
    default_type application/octet-stream;
    access_log access.log;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include site.conf;
}}
"""
SYSTEM_MIME_TYPES = Path("/etc/nginx/mime.types")


class NginxServer(ServerProcess):
    """nginx without root on a free port, serving the site that `render_site(nginx)` returns.

    `render_site` gets this object (its `port` and `directory`) and returns what goes in the http {}
    block, e.g. the shipped deploy/nginx.conf rendered for these ports. pid, temp files and logs
    stay in `directory` (nginx's -p prefix); `daemon off` keeps nginx a child that stop() ends.
    """

    name = "nginx"

    def __init__(self, render_site):
        super().__init__()
        self.binary = require_binary("nginx")
        self.directory = Path(tempfile.mkdtemp(prefix="nginx-"))
        # Run as root (some CI containers), nginx's workers become 'nobody': let them in.
        self.directory.chmod(0o755)
        (self.directory / "temp").mkdir()
        mime_types = f"include {SYSTEM_MIME_TYPES};" if SYSTEM_MIME_TYPES.exists() else \
            "types { text/html html; text/css css; application/javascript js; }"
        (self.directory / "nginx.conf").write_text(NGINX_MAIN_CONF.format(mime_types=mime_types))
        (self.directory / "site.conf").write_text(render_site(self))

    def command(self, *options):
        return [self.binary, "-p", f"{self.directory}/", "-c", str(self.directory / "nginx.conf"),
                "-e", "stderr", "-g", "daemon off;", *options]

    def check(self):
        """`nginx -t` on this configuration: the CompletedProcess (returncode, and output in stderr)."""
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def ready(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def access_log(self):
        path = self.directory / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, *args, **kwargs):
        super().stop(*args, **kwargs)
        shutil.rmtree(self.directory, ignore_errors=True)  # the error log stays, in log_path


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
        """Read until the server's close frame; return its code (None if the TCP connection just ended).

        Pings are answered meanwhile and the close is echoed, as a live client would.
        """
        self.ws.settimeout(timeout)
        try:
            while True:
                frame = self.ws.recv_frame()
                if frame.opcode == websocket_client.ABNF.OPCODE_PING:
                    self.ws.pong(frame.data)
                elif frame.opcode == websocket_client.ABNF.OPCODE_CLOSE:
                    self.close_reason = frame.data[2:].decode(errors="replace")
                    try:
                        self.ws.send_close(self.close_code(frame.data) or NORMAL)
                    except (OSError, websocket_client.WebSocketException):
                        pass
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


class ClientsMixin:
    """Test cases that open WebSocketClients: each one is closed after the test."""

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        super().tearDown()

    def open_client(self, url, **options):
        client = WebSocketClient(url, **options)
        self.clients.append(client)
        return client


class LiveWebSocketTestCase(ClientsMixin, TransactionTestCase):
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

    def connect(self, path, worker=None, **query):
        """Open a WebSocket to `path` on a worker (the first by default); closed after the test."""
        return self.open_client((worker or self.worker).url(path, **query))
