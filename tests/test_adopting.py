"""Another Django project installs `realtime` as docs/adopting.md says, and its own view answers;
its own topic, notifications and tokens work as the docs' second half shows them.

The wheel is built from pyproject.toml and installed into a fresh venv (once per run of this class;
the build backend and the dependencies come through pip's ordinary index), beside a copy of tests/adopter/, a minimal
project outside this repository's import path. Then its websocket worker starts as the docs say, on
a Redis of its own (a notification sent from `manage.py shell` crosses processes).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import websocket as websocket_client
from django.conf import settings
from django.test import SimpleTestCase

from realtime.testing import RedisServer, ServerProcess
from tests.scripts import token_scripts_hear_the_shell

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

    def __init__(self, venv, project, redis_url):
        super().__init__()
        self.venv, self.cwd, self.redis_url = venv, project, redis_url

    def command(self):
        return [str(self.venv / "bin" / "gunicorn"), "-k", "realtime.worker.WebSocketWorker", "--worker-connections",
                "10000", "--no-control-socket", "--bind", f"127.0.0.1:{self.port}", "realtime.wsgi:application"]

    def env(self):
        # Nothing of this repository's: no PYTHONPATH, no settings of ours.
        return adopter_env(self.venv, self.redis_url)

    def ready(self):
        return self.http_get("/__ready__") is not None


def adopter_env(venv, redis_url):
    return {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "mysite.settings", "PYTHONUNBUFFERED": "1", "REDIS_URL": redis_url}


# A file of the adopter project as the docs show it: a code block whose first line names it.
SHOWN_FILE = re.compile(r"```python\n# ([\w./-]+\.py)(?::[^\n]*)?\n.*?```", re.DOTALL)


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
        run(*pip, "install", f"{cls.wheel}[testing]", cwd=cls.folder)  # realtime.testing needs websocket-client
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.manage("migrate", "--noinput")  # docs/adopting.md, step 7: the layer's table of issued tokens
        cls.worker = AdopterWorker(cls.venv, cls.project, cls.redis.url).start()
        cls.addClassCleanup(cls.worker.stop)

    @classmethod
    def manage(cls, *args):
        return run(cls.venv / "bin" / "python", "manage.py", *args, cwd=cls.project,
                   env=adopter_env(cls.venv, cls.redis.url))

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

    def test_the_wheel_brings_the_browser_client_and_the_template_tags(self):
        self.assertIn(str(self.venv), self.manage("findstatic", "realtime/client/index.js"))

    def test_the_wheel_brings_the_budgets_script(self):
        script = self.manage("shell", "--no-imports", "-c", "import realtime.budgets; print(realtime.budgets.SPEND.decode())")
        self.assertIn("redis.call('TIME')", script)
        rendered = self.manage("shell", "--no-imports", "-c", "from django.template import engines; print(engines['django']"
                               ".from_string(\"{% load websockets %}{% websocket_url 'shout' %}\").render())")
        self.assertEqual(rendered.strip(), "/shout/")

    def test_the_wheel_brings_presence_s_redis_scripts(self):
        # realtime.presence.stores reads its *.lua files when imported: without them it raises.
        loaded = self.manage("shell", "--no-imports", "-c", "from realtime.presence import stores; "
                             "print(stores.__file__, b'redis.call' in stores.FLUSH)")
        path, found = loaded.split()
        self.assertTrue(path.startswith(str(self.venv)), path)
        self.assertEqual(found, "True")

    def test_the_files_the_docs_show_are_the_adopter_project_s(self):
        """Every file the channels half of the docs shows (a block headed `# path`) is the project's as it
        is here (without the heading, unless the file starts with it too)."""
        docs = (REPO / "docs" / "adopting.md").read_text()
        channels_half = docs[docs.index("# Channels: one socket per page"):]
        shown = {match.group(1): match.group(0) for match in SHOWN_FILE.finditer(channels_half)}
        self.assertEqual(set(shown), {"mysite/websocket_urls.py", "mysite/urls.py", "shout/channels.py",
                                      "shout/tests.py", "token_client.py", "token_client_async.py"})
        for name, block in shown.items():
            with self.subTest(name=name):
                code = block[len("```python\n"):-len("```")]
                file = (self.project / name).read_text()
                self.assertEqual(code if file.startswith("# ") else code.split("\n", 1)[1], file)

    def test_the_adopter_s_own_topic_passes_its_tests_without_a_server(self):
        result = subprocess.run([self.venv / "bin" / "python", "manage.py", "test", "shout", "--noinput"],
                                cwd=self.project, env=adopter_env(self.venv, ""),  # in process: not even Redis
                                capture_output=True, text=True, timeout=PIP_TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Ran 1 test", result.stderr)

    def test_scripts_with_a_token_hear_a_notify_sent_from_the_adopter_s_shell(self):
        ann = self.manage("shell", "--no-imports", "-c", "from django.contrib.auth.models import User; "
                                         "print(User.objects.create_user('ann').pk)").strip()
        token = self.manage("realtime_token", "ann").strip()
        token_scripts_hear_the_shell(self, self.venv / "bin" / "python", self.project,
                                     f"ws://127.0.0.1:{self.worker.port}/socket/", token, f"user:{ann}", self.manage)
