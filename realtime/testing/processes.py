"""Throwaway servers on free loopback ports: a process with its log, and redis-server.

No Django here: `make run` (scripts/dev.py) starts its Redis with these too.
"""

import http.client
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


class ServerProcess:
    """A subprocess that serves on a loopback port, with its output kept in a log file."""

    name = "server"
    cwd = None  # the folder it runs in: None, this process's

    def __init__(self, port=None):
        self.port = int(port) if port else free_port()
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
                cwd=self.cwd, start_new_session=True)
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
