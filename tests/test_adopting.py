"""Another Django project installs `realtime` as docs/adopting.md says, and its own view answers.

The wheel is built from pyproject.toml and installed into a fresh venv (once per run of this class;
the build backend and the dependencies come through pip's ordinary index), beside a copy of tests/adopter/, a minimal
project outside this repository's import path. Then its websocket worker starts as the docs say.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import websocket as websocket_client
from django.conf import settings
from django.test import SimpleTestCase

from realtime.testing import ServerProcess

REPO = Path(settings.BASE_DIR)
PIP_TIMEOUT = 300  # a cold pip cache downloads gevent & co.; a warm one takes seconds


def run(*command, cwd, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    if result.returncode:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class AdopterWorker(ServerProcess):
    """The adopter's websocket worker: the command of docs/adopting.md, step 4, in the fresh venv."""

    name = "adopter-worker"

    def __init__(self, venv, project):
        super().__init__()
        self.venv, self.cwd = venv, project

    def command(self):
        return [str(self.venv / "bin" / "gunicorn"), "-k", "realtime.worker.WebSocketWorker", "--worker-connections",
                "10000", "--no-control-socket", "--bind", f"127.0.0.1:{self.port}", "realtime.wsgi:application"]

    def env(self):
        # Nothing of this repository's: no PYTHONPATH, no settings of ours.
        return adopter_env(self.venv)

    def ready(self):
        return self.http_get("/__ready__") is not None


def adopter_env(venv):
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "mysite.settings", "PYTHONUNBUFFERED": "1"}


class InstalledLayerTests(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = Path(tempfile.mkdtemp(prefix="adopter-"))
        cls.addClassCleanup(shutil.rmtree, cls.folder, ignore_errors=True)
        source = cls.folder / "source"  # only what the package is built from: no build/ left in the repo
        source.mkdir()
        shutil.copy(REPO / "pyproject.toml", source)
        shutil.copytree(REPO / "realtime", source / "realtime", ignore=shutil.ignore_patterns("__pycache__"))
        (source / "docs").mkdir()
        shutil.copy(REPO / "docs" / "adopting.md", source / "docs")
        cls.project = cls.folder / "project"
        shutil.copytree(REPO / "tests" / "adopter", cls.project, ignore=shutil.ignore_patterns("__pycache__"))
        cls.venv = cls.folder / "venv"
        # Without pip of its own (bootstrapping it takes seconds): this pip installs into it.
        run(sys.executable, "-m", "venv", "--without-pip", cls.venv, cwd=cls.folder)
        pip = [sys.executable, "-m", "pip", "--quiet", "--python", str(cls.venv / "bin" / "python")]
        # The build backend, from the index pip uses: setuptools 70.1 builds wheels by itself.
        run(*pip, "install", "setuptools>=70.1", cwd=cls.folder)
        run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", cls.folder / "dist", "./source",
            cwd=cls.folder)
        cls.wheel = next((cls.folder / "dist").glob("django_realtime_gevent-*.whl"))
        run(*pip, "install", cls.wheel, cwd=cls.folder)
        cls.worker = AdopterWorker(cls.venv, cls.project).start()
        cls.addClassCleanup(cls.worker.stop)

    def manage(self, *args):
        return run(self.venv / "bin" / "python", "manage.py", *args, cwd=self.project, env=adopter_env(self.venv))

    def test_the_adopter_s_own_view_answers_through_the_installed_worker(self):
        ws = websocket_client.create_connection(f"ws://127.0.0.1:{self.worker.port}/shout/", timeout=10)
        self.addCleanup(ws.close)
        ws.send("hello")
        self.assertEqual(ws.recv(), "HELLO")
        ws.send("where?")
        self.assertTrue(ws.recv().startswith(str(self.venv)), "realtime was not imported from the installed wheel")

    def test_an_unrouted_path_gets_django_s_404(self):
        self.assertEqual(self.worker.http_get("/nowhere/", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})[0], 404)

    def test_the_wheel_brings_the_budgets_script(self):
        script = self.manage("shell", "--no-imports", "-c", "import realtime.budgets; print(realtime.budgets.SPEND.decode())")
        self.assertIn("redis.call('TIME')", script)

    def test_the_wheel_brings_client_js_and_the_template_tags(self):
        self.assertIn(str(self.venv), self.manage("findstatic", "realtime/client.js"))
        rendered = self.manage("shell", "--no-imports", "-c", "from django.template import engines; print(engines['django']"
                               ".from_string(\"{% load websockets %}{% websocket_url 'shout' %}\").render())")
        self.assertEqual(rendered.strip(), "/shout/")
