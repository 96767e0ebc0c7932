"""This project's own servers for tests: PostgreSQL, the page server, the task worker, nginx.

What any project needs (the websocket worker, Redis, the client) is in realtime.testing.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from django.conf import settings

from realtime.testing import GunicornServer, ServerProcess, database_url, require_binary

DEPLOY_DIR = Path(settings.BASE_DIR) / "deploy"


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


class PageServer(GunicornServer):
    """`gunicorn -c deploy/gunicorn_http.py project.wsgi:application`: the pages, as in production."""

    name = "page-server"
    options = ("-c", str(DEPLOY_DIR / "gunicorn_http.py"))
    app = "project.wsgi:application"


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

    @property
    def cwd(self):
        return settings.BASE_DIR  # manage.py

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
