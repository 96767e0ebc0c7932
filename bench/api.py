"""Publishing through the server API (docs/api.md) beside publishing from Django code.

One worker, `subscribers` members of the benchmark's room (`/chat/bench/`), and the page server
(gunicorn, deploy/gunicorn_http.py) on the same Redis and database. `rate` probes a second for
`seconds`, first as API calls (`POST /realtime/api/publish` with a key, over keep-alive connections
from a few client threads), then the same load from Django code: `chat.services.post_message`, what
the API calls too, in a Django process of its own. Both store each probe in the room and publish it.
Measured: deliveries per second, and the latency from the call (the request written, or the line
handed to the Django process) to each delivery. The per-key rate limit is off: this is the path's
cost, not the policy's.
"""

import asyncio
import http.client
import json
import os
import queue
import subprocess
import sys
import threading

from realtime.testing import GunicornServer

from .config import ROOM
from .loadgen import probe_message
from .scenarios import WARM_UP_SEQ, publish_at_rate, warm_room
from .servers import ROOT, Logged, pinned, production_env

API_THREADS = 4  # client threads, each with one keep-alive connection (the page server has 2 x 4 threads)
# The Django side: post_message for each line on stdin (a probe's text), as server code posts.
POSTER = """
import sys
from chat.services import post_message
print("ready", flush=True)  # Django is set up: the clock may start
for line in sys.stdin:
    post_message(%r, line.rstrip("\\n"), "bench", "#555555")
"""


class BenchPages(Logged, GunicornServer):
    """The page server as in production, on the stack's database and Redis."""

    name = "pages"
    app = "project.wsgi:application"
    options = ("-c", str(ROOT / "deploy" / "gunicorn_http.py"))

    def __init__(self, redis_url, database, cpus, log_dir):
        super().__init__(production_env(DATABASE_URL=f"sqlite:///{database}", REDIS_URL=redis_url,
                                        REALTIME_API_RATE="0", HTTP_ACCESS_LOG="/dev/null"))
        self.cpus = cpus
        self.place_log(log_dir, "pages")

    def command(self):
        return pinned(super().command(), self.cpus)


class ApiPublisher:
    """`send(probe)` makes it one API call, made by one of a few threads over keep-alive connections."""

    def __init__(self, port, key):
        self.port, self.key = port, key
        self.calls, self.errors = queue.Queue(), []
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(API_THREADS)]
        for thread in self.threads:
            thread.start()

    def send(self, probe):
        text = json.loads(probe)["data"]["text"]
        self.calls.put(json.dumps({"topic": f"chat:{ROOM}", "event": "message", "data": {"text": text}}))

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        while (body := self.calls.get()) is not None:
            try:
                connection.request("POST", "/realtime/api/publish", body, headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    self.errors.append(f"{response.status} {answer[:200]!r}")
            except (OSError, http.client.HTTPException) as error:
                self.errors.append(repr(error))
                connection.close()  # a new connection for the next call
            finally:
                self.calls.task_done()
        connection.close()

    def warm_up(self, calls):
        """Unmeasured calls (probes nobody counts), waited for: the page server's first-use costs
        (imports, the database connection of each thread) are paid before the clock starts."""
        for i in range(calls):
            self.send(probe_message(WARM_UP_SEQ + i))
        self.calls.join()

    def close(self):
        for _ in self.threads:
            self.calls.put(None)
        for thread in self.threads:
            thread.join(30)


class DjangoPublisher:
    """`send(probe)` hands the probe's text to a Django process that posts it with post_message."""

    def __init__(self, env):
        self.process = subprocess.Popen([sys.executable, "manage.py", "shell", "-v0", "-c", POSTER % ROOM], cwd=ROOT,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        if self.process.stdout.readline().strip() != "ready":  # (its start-up is not a publish's latency)
            raise RuntimeError(f"the Django publisher did not start: {self.close()}")

    def send(self, probe):
        self.process.stdin.write(json.loads(probe)["data"]["text"] + "\n")
        self.process.stdin.flush()

    def close(self):
        _, errors = self.process.communicate(timeout=60)  # (closes its stdin: the loop ends)
        return errors.strip()[-500:]


def make_key(env):
    return subprocess.run([sys.executable, "manage.py", "realtime_api_key", "create", "bench", "--topic", f"chat:{ROOM}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


async def api(ctx, kind, cfg):
    async with warm_room(ctx, kind, cfg) as (stack, crowd, room):
        if not room:
            return {"error": "could not join the room", **crowd.health()}
        subs, _publishers = room
        database = stack.fresh_database("ours", 1)  # (index 1: the stack's database as it is, not a copy)
        env = {**os.environ, **production_env(DATABASE_URL=f"sqlite:///{database}", REDIS_URL=stack.redis_url)}
        ctx.progress.phase("starting the page server")
        pages = BenchPages(stack.redis_url, database, ctx.plan["server"], ctx.run_dir).start()
        try:
            publisher = ApiPublisher(pages.port, make_key(env))
            try:
                await asyncio.to_thread(publisher.warm_up, 4 * API_THREADS)
                via_api = await publish_at_rate(ctx, stack, subs, [publisher], cfg["rate"], cfg["seconds"])
            finally:
                publisher.close()
            via_api["errors"] = publisher.errors[:5]
            poster = await asyncio.to_thread(DjangoPublisher, env)
            try:
                via_django = await publish_at_rate(ctx, stack, subs, [poster], cfg["rate"], cfg["seconds"],
                                                   first_seq=int(cfg["rate"] * cfg["seconds"]))
            finally:
                poster_errors = poster.close()
            via_django["errors"] = poster_errors
        finally:
            pages.stop()
        return {"api": via_api, "django": via_django, "subscribers": len(subs), **crowd.health()}
