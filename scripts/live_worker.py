"""A real websocket worker (and Redis) for the npm client's live tests (clients/js/test/live.test.js).

Prints one JSON line, {"socket": ws URL of /socket/, "user": {"id", "username"}, "token"}, then
reads commands on stdin, one a line, answering each with a JSON line:
  post <room> <text>   post a chat message (as server code would)  -> {"id": <its offset>}
  stop / start         SIGTERM the worker (clients are closed 1001 with a reconnect window) / start it
Stdin closed: everything stops. Runs on a throwaway SQLite database of its own.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='live-worker-')}/db.sqlite3"
import django  # noqa: E402  (after the settings above)

django.setup()
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

from chat.services import post_message  # noqa: E402
from realtime.channels.tokens import issue_token  # noqa: E402
from realtime.testing import RedisServer, WorkerProcess  # noqa: E402


def main():
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("ann", password="a long enough password")
    token, _ = issue_token(user)
    redis = RedisServer().start()
    worker = WorkerProcess(redis_url=redis.url, env={"CLIENT_RECONNECT_WINDOW": "0.5"}).start()
    try:
        print(json.dumps({"socket": worker.url("/socket/"), "token": token,
                          "user": {"id": user.pk, "username": user.username}}), flush=True)
        with override_settings(REDIS_URL=redis.url):
            for line in sys.stdin:
                command, *args = line.strip().split(" ", 2)
                if command == "post":
                    answer = {"id": post_message(args[0], args[1], "server", "#555555").seq}
                elif command == "stop":
                    worker.stop()
                    answer = {}
                elif command == "start":
                    worker.start()
                    answer = {}
                else:
                    answer = {"error": f"unknown command {command!r}"}
                print(json.dumps(answer), flush=True)
    finally:
        worker.stop()
        redis.stop()


if __name__ == "__main__":
    main()
