"""The systemd units in deploy/systemd/ run the same gunicorn configs and task worker the tests run,
and stop gracefully."""

import configparser
import runpy
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

from realtime.testing import require_binary

DEPLOY = Path(settings.BASE_DIR) / "deploy"
UNITS = {
    "realtime-http.service": ("deploy/gunicorn_http.py", "project.wsgi:application"),
    "realtime-ws@.service": ("deploy/gunicorn_ws.py", "project.wsgi:websocket"),
}
TASKS_UNIT = "realtime-tasks.service"
VENV_BIN = "/srv/realtime/app/.venv/bin"


def service_section(name):
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read(DEPLOY / "systemd" / name)
    return unit["Service"]


class SystemdUnitTests(SimpleTestCase):
    def test_each_unit_runs_its_shipped_gunicorn_config(self):
        for name, (config, app) in UNITS.items():
            with self.subTest(name):
                command = shlex.split(service_section(name)["ExecStart"])
                self.assertEqual(command[0], f"{VENV_BIN}/gunicorn")
                self.assertEqual((command[1:3], command[-1]), (["-c", config], app))
                self.assertTrue((Path(settings.BASE_DIR) / config).exists())

    def test_each_unit_restarts_on_failure_and_outwaits_gunicorns_graceful_stop(self):
        for name, (config, _) in UNITS.items():
            with self.subTest(name):
                service = service_section(name)
                graceful_timeout = runpy.run_path(str(Path(settings.BASE_DIR) / config))["graceful_timeout"]
                self.assertEqual(service["Restart"], "on-failure")
                self.assertEqual(service["KillSignal"], "SIGTERM")
                self.assertEqual(service["EnvironmentFile"], "/etc/realtime/env")
                self.assertGreater(int(service["TimeoutStopSec"]), graceful_timeout)

    def test_the_task_worker_unit_keeps_its_worker_id_across_restarts(self):
        service = service_section(TASKS_UNIT)
        command = shlex.split(service["ExecStart"])
        self.assertEqual(command[:3], [f"{VENV_BIN}/python", "manage.py", "db_worker"])
        # The same id after a restart (so the task a killed worker ran is retried), from the host name.
        self.assertIn("%l", command[command.index("--worker-id") + 1])
        self.assertIn("--no-reload", command)  # a reloading worker may stop mid-task on any file change
        self.assertEqual((service["Restart"], service["KillSignal"], service["EnvironmentFile"]),
                         ("on-failure", "SIGTERM", "/etc/realtime/env"))

    def test_systemd_analyze_finds_nothing_but_the_missing_deployment(self):
        analyze = require_binary("systemd-analyze")
        for name in [*UNITS, TASKS_UNIT]:
            with self.subTest(name):
                # An instance of the template unit, as `systemctl enable realtime-ws@8001` makes.
                unit = Path(self.tmp_dir()) / name.replace("@.", "@8001.")
                shutil.copy(DEPLOY / "systemd" / name, unit)
                result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
                problems = [line for line in result.stderr.splitlines()
                            if line.strip() and not (line.startswith(f"{unit.name}: Command {VENV_BIN}/")
                                                     and line.endswith(" is not executable: No such file or directory"))]
                self.assertEqual(problems, [])

    def tmp_dir(self):
        path = tempfile.mkdtemp(prefix="units-")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path
