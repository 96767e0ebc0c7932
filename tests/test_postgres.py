"""The production database: chat and jobs on a real PostgreSQL through real workers.

The rest of the suite runs on SQLite, whose IMMEDIATE transactions serialize every writer. On
PostgreSQL the room row lock alone must keep a room's message ids 1, 2, 3, ..., the jobs' start
lock alone must keep the job queue bounded, and psycopg must wait for the server without
stopping the worker's other greenlets.
"""

import json
import threading
import time

import psycopg
from django.test import SimpleTestCase

from realtime.testing import ClientsMixin, RedisServer, WorkerProcess
from tests.servers import PostgresServer, TaskWorker
from tests.test_nginx import manage


class PostgresChatTests(ClientsMixin, SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = PostgresServer().start()
        cls.addClassCleanup(cls.postgres.stop)
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.env = env = {"DATABASE_URL": cls.postgres.url, "WEBSOCKET_URLCONF": "tests.websocket_urls"}
        manage("migrate", "--noinput", env=env)
        # Anonymous clients join only rooms that exist.
        manage("shell", "-c", "from chat.models import Room; Room.objects.create(name='pg')", env=env)
        cls.workers = []
        for _ in range(2):
            cls.workers.append(WorkerProcess(redis_url=cls.redis.url, env=env).start())
            cls.addClassCleanup(cls.workers[-1].stop)

    def test_posts_racing_through_two_workers_are_numbered_1_to_n_and_resume_exactly(self):
        posters = [self.open_client(worker.url("/chat/pg/", name=f"poster{i}"))
                   for i, worker in enumerate(self.workers * 2)]
        for poster in posters:
            poster.receive_event("welcome")
        for round_ in range(15):  # 60 messages, four at a time through both workers
            for i, poster in enumerate(posters):
                poster.send_json("message", {"text": f"{i}:{round_}"})
        ids = sorted(posters[0].receive_event("message")["id"] for _ in range(60))
        self.assertEqual(ids, list(range(1, 61)))  # no hole, no repeat: the room lock held

        late = self.open_client(self.workers[1].url("/chat/pg/", since=37))
        missed, welcome = late.receive_until("welcome")
        self.assertEqual([m["data"]["id"] for m in missed], list(range(38, 61)))
        self.assertEqual(welcome["last_id"], 60)

    def test_a_slow_query_does_not_stop_the_other_sockets_of_its_worker(self):
        """psycopg waits for PostgreSQL through gevent: while one view's query runs for 1 s, an
        echo on the same worker answers, and the query's answer comes after it."""
        waiting = self.open_client(self.workers[0].url("/test/slow-query/"))
        echo = self.open_client(self.workers[0].url("/echo/"))
        started = time.monotonic()
        waiting.send("go")
        echo.send("still here")
        self.assertEqual(echo.receive(), "still here")
        echoed_after = time.monotonic() - started
        self.assertEqual(waiting.receive(), "slept")
        slept_after = time.monotonic() - started
        self.assertLess(echoed_after, slept_after)  # a blocking driver would answer the echo last
        self.assertGreaterEqual(slept_after, 1.0)

    def test_job_starts_racing_never_pass_the_queue_limit_and_the_task_worker_runs_them(self):
        """Eight users start a job at the same moment (eight threads, eight connections) with room
        for three in the queue: three are queued and five refused, whatever the interleaving."""
        env = {**self.env, "REDIS_URL": self.redis.url, "JOB_QUEUE_LIMIT": "3", "JOB_STEP_SECONDS": "0.02"}
        outcome = json.loads(manage("shell", "-c", RACING_STARTS, env=env).strip().splitlines()[-1])
        self.assertEqual(outcome, {"refused": [503] * 5, "jobs": 3, "tasks": 3})

        watcher = self.open_client(self.workers[0].url("/jobs/"))
        tasks = TaskWorker(env=env).start()
        self.addCleanup(tasks.stop)
        states = {}
        while sorted(states.values()) != ["done"] * 3:
            job = watcher.receive_event("job")
            states[job["id"]] = job["state"]


# Run by `manage.py shell -c` on the PostgreSQL database: prints the outcome as JSON.
RACING_STARTS = """
import json, threading
from django.contrib.auth.models import User
from django.db import connection
from django_tasks_db.models import DBTaskResult
from jobs.models import Job
from jobs.services import JobRefused, start_job

users = [User.objects.create_user(f"racer{i}") for i in range(8)]
barrier = threading.Barrier(len(users))
refused = []

def start(user):
    barrier.wait()
    try:
        start_job(user, 5)
    except JobRefused as refusal:
        refused.append(refusal.status)
    finally:
        connection.close()

threads = [threading.Thread(target=start, args=(user,)) for user in users]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"refused": refused, "jobs": Job.objects.count(), "tasks": DBTaskResult.objects.count()}))
"""


class PostgresJoinStormTests(ClientsMixin, SimpleTestCase):
    """Joins take turns for the database: a storm never opens more connections than the setting."""

    TURNS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = PostgresServer().start()
        cls.addClassCleanup(cls.postgres.stop)
        env = {"DATABASE_URL": cls.postgres.url, "WEBSOCKET_DB_CONCURRENCY": str(cls.TURNS)}
        manage("migrate", "--noinput", env=env)
        manage("shell", "-c", "from chat.models import Room; Room.objects.create(name='storm')", env=env)
        cls.worker = WorkerProcess(env=env).start()
        cls.addClassCleanup(cls.worker.stop)

    def test_sixty_joiners_at_once_are_all_welcomed_through_two_database_connections(self):
        # Each asks for its own `since` (nothing to share), all at once, from threads.
        peak, storming = [0], threading.Event()
        watcher = threading.Thread(target=self.watch_connections, args=(peak, storming))
        storming.set()
        watcher.start()
        welcomes, failures = [], []

        def join(i):
            try:
                client = self.open_client(self.worker.url("/chat/storm/", since=0, name=f"m{i}"))
                welcomes.append(client.receive_event("welcome"))
            except Exception as error:  # a 500 at the handshake, say: what the user would see
                failures.append(repr(error))

        threads = [threading.Thread(target=join, args=(i,)) for i in range(60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        storming.clear()
        watcher.join()
        self.assertEqual(failures, [])
        self.assertEqual(len(welcomes), 60)
        print(f"\n[measured] 60 joiners at once: at most {peak[0]} database connections from the worker "
              f"(WEBSOCKET_DB_CONCURRENCY={self.TURNS})")
        self.assertLessEqual(peak[0], self.TURNS)

    def watch_connections(self, peak, storming):
        """The most client connections PostgreSQL had at once, besides this watcher's own."""
        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            while storming.is_set():
                (count,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                                        "AND pid <> pg_backend_pid()").fetchone()
                peak[0] = max(peak[0], count)
                time.sleep(0.005)
