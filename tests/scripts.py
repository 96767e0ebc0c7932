"""Client scripts in processes of their own (no Django, no settings), read line by line with a deadline."""

import json
import os
import select
import subprocess
import time

from realtime.testing import DEFAULT_TIMEOUT


class Script:
    """`python path args...` with its output readable line by line; killed at the end of the test."""

    def __init__(self, test, python, path, *args, cwd=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        self.process = subprocess.Popen([str(python), str(path), *args], cwd=cwd, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        test.addCleanup(self.stop)
        self.lines, self.pending = [], b""

    def line(self, prefix, timeout=DEFAULT_TIMEOUT):
        """The rest of the next line that starts with `prefix` (every line read is kept in `lines`)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
                if self.lines[-1].startswith(prefix + " "):
                    return self.lines[-1][len(prefix) + 1:]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                raise AssertionError(f"no line {prefix!r} within {timeout} s; it said: {self.lines}")
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                raise AssertionError(f"the script ended (exit {self.process.wait()}); it said: {self.lines + [self.pending]}")
            self.pending += data

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=10)
        self.process.stdout.close()


TOKEN_SCRIPTS = ("token_client.py", "token_client_async.py")  # docs/adopting.md, step 10 (tests/adopter/)
NOTIFY_ANN = ("import realtime; from django.contrib.auth.models import User; "
              "realtime.notify(User.objects.get(username='ann'), 'hello', {'from': 'the shell'})")


def token_scripts_hear_the_shell(test, python, folder, url, token, topic, manage):
    """Both token scripts of the docs listen to ann's `topic` with `token`; `manage.py shell` (run by
    `manage(*args)`) notifies her, and each script prints the push. Returns the scripts."""
    scripts = [Script(test, python, folder / name, url, token, topic) for name in TOKEN_SCRIPTS]
    for script in scripts:
        test.assertEqual(json.loads(script.line("joined")), {"status": "ok", "response": {}})
    manage("shell", "--no-imports", "-c", NOTIFY_ANN)
    for script in scripts:
        test.assertEqual(json.loads(script.line("push")), {"topic": topic, "event": "hello", "data": {"from": "the shell"}})
    return scripts
