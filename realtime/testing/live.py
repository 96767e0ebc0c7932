"""A real websocket worker for tests: gunicorn on a free port, on the test database.

The worker is the one the settings name: `gunicorn -c WEBSOCKET_WORKER_CONFIG WEBSOCKET_WORKER_APP`
(without a config: the worker class `realtime.worker.WebSocketWorker` and the options it needs).
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

from .. import conf
from .client import ClientsMixin
from .processes import RedisServer, ServerProcess

WORKER_CLASS = "realtime.worker.WebSocketWorker"


def database_url():
    """DATABASE_URL for the database this process uses now (the test database, in tests)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise NotImplementedError(f"no DATABASE_URL form for {db['ENGINE']}")


class GunicornServer(ServerProcess):
    """gunicorn serving `app` with `options` (a config file: ["-c", path]) on a free port, on the
    test database (DATABASE_URL, which the project's settings must read). It runs in BASE_DIR."""

    app = None
    options = ()

    def __init__(self, env=None):
        super().__init__()
        self.extra_env = dict(env or {})
        self.cwd = getattr(settings, "BASE_DIR", None)

    def command(self):
        return [sys.executable, "-m", "gunicorn", *self.options, "--bind", f"127.0.0.1:{self.port}", self.app]

    def env(self):
        return {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1", **self.extra_env}

    def ready(self):
        # The master binds before its workers boot: wait for an HTTP answer from a worker.
        return self.http_get("/__ready__") is not None


class WorkerProcess(GunicornServer):
    """The websocket worker of the settings (WEBSOCKET_WORKER_APP, WEBSOCKET_WORKER_CONFIG) on a free port."""

    name = "ws-worker"

    def __init__(self, redis_url="", env=None, workers=1):
        super().__init__({"REDIS_URL": redis_url, **(env or {})})
        self.app = conf.get("WEBSOCKET_WORKER_APP")
        config = conf.get("WEBSOCKET_WORKER_CONFIG")
        # Without a config file: the worker class, and sockets beyond gunicorn's default of 1,000.
        self.options = (["-c", str(Path(config))] if config else
                        ["-k", WORKER_CLASS, "--worker-connections", "10000", "--no-control-socket"])
        self.options += ["--workers", str(workers)]

    def url(self, path, **query):
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?{urlencode(query)}" if query else "")

    def rss(self):
        """Resident memory of the (first) worker process, gunicorn's child, in bytes."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        status = Path(f"/proc/{children[0]}/status").read_text()
        return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))


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
        return WorkerProcess(redis_url=redis_url, env={**cls.worker_env, **env}).start()

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
