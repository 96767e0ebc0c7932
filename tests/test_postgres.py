"""The production database: chat and jobs on a real PostgreSQL through real workers.

The rest of the suite runs on SQLite, whose IMMEDIATE transactions serialize every writer. On
PostgreSQL the room row lock alone must keep a room's message ids 1, 2, 3, ..., the jobs' start
lock alone must keep the job queue bounded, and psycopg must wait for the server without
stopping the worker's other greenlets.
"""

import http.client
import json
import re
import threading
import time
from urllib.parse import urlencode

import psycopg
from django.test import SimpleTestCase

from realtime.testing import ClientsMixin, RedisServer, WorkerProcess
from tests.servers import PageServer, PostgresServer, TaskWorker
from tests.test_nginx import manage


class PostgresTestCase(ClientsMixin, SimpleTestCase):
    """A throwaway PostgreSQL, migrated, with the chat room `room` (anonymous clients join only
    rooms that exist), and a Redis, for the class."""

    room = "pg"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.postgres = PostgresServer().start()
        cls.addClassCleanup(cls.postgres.stop)
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.stop)
        cls.env = {"DATABASE_URL": cls.postgres.url}
        manage("migrate", "--noinput", env=cls.env)
        manage("shell", "-c", f"from chat.models import Room; Room.objects.create(name={cls.room!r})", env=cls.env)


class PostgresChatTests(PostgresTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = env = {**cls.env, "WEBSOCKET_URLCONF": "tests.websocket_urls"}
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

    def test_the_room_directory_reads_the_busiest_rooms_from_its_index_without_sorting_the_table(self):
        plan = manage("shell", "-c", DIRECTORY_PLAN, env=self.env)  # SQLite: tests/test_channels.py
        self.assertIn("Index Scan using chat_room_public_last_seq on chat_room", plan)
        self.assertNotIn("Sort", plan)

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

        # A staff member watches: they see every user's jobs.
        dev_key = {"DEBUG": "1", "SECRET_KEY": ""}  # the workers' (sessions are signed with it)
        session = manage("shell", "-c", STAFF_SESSION, env={**env, **dev_key}).strip().splitlines()[-1]
        watcher = self.open_client(self.workers[0].url("/jobs/"), cookie=f"sessionid={session}")
        tasks = TaskWorker(env=env).start()
        self.addCleanup(tasks.stop)
        states = {}
        while sorted(states.values()) != ["done"] * 3:
            job = watcher.receive_event("job")
            states[job["id"]] = job["state"]


# Run by `manage.py shell -c` on the PostgreSQL database: prints the plan of the room directory's
# query. Sequential scans off: the plan says whether an index serves the query, not what the planner
# prefers for the one row of a fresh table.
DIRECTORY_PLAN = """
from django.db import connection
from chat.directory import busiest_public_rooms
connection.cursor().execute("SET enable_seqscan = off")
print(busiest_public_rooms().explain())
"""

# Run by `manage.py shell -c`: prints the session key of a new staff member, logged in.
STAFF_SESSION = """
from django.contrib.auth.models import User
from django.test import Client
client = Client()
client.force_login(User.objects.create_user("staff", is_staff=True))
print(client.cookies["sessionid"].value)
"""

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


class PostgresJoinStormTests(PostgresTestCase):
    """Joins take turns for the database: a storm never opens more connections than the setting."""

    TURNS = 2
    room = "storm"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = WorkerProcess(env={**cls.env, "WEBSOCKET_DB_CONCURRENCY": str(cls.TURNS)}).start()
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


class PostgresPostingStormTests(PostgresTestCase):
    """Guests of one address posting flat out on many sockets: the address's budget bounds what is
    stored, the worker writes through its few writers' connections (not one per socket or per
    message), and the page server still serves pages and logins meanwhile."""

    READERS, WRITERS = 2, 2
    RATE, BURST = 20, 40  # the guests' budget, per address
    SOCKETS, EACH = 30, 20
    room = "storm"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        manage("shell", "-c", "from django.contrib.auth.models import User; "
                              "User.objects.create_user('ann', password='a long enough password')", env=cls.env)
        cls.worker = WorkerProcess(redis_url=cls.redis.url, env={
            "DATABASE_URL": f"{cls.postgres.url}?application_name=ws-worker",
            "WEBSOCKET_DB_CONCURRENCY": str(cls.READERS), "WEBSOCKET_DB_WRITE_CONCURRENCY": str(cls.WRITERS),
            "CHAT_GUEST_POST_RATE": str(cls.RATE), "CHAT_GUEST_POST_BURST": str(cls.BURST)}).start()
        cls.addClassCleanup(cls.worker.stop)
        cls.pages = PageServer({"DATABASE_URL": cls.postgres.url, "REDIS_URL": cls.redis.url}).start()
        cls.addClassCleanup(cls.pages.stop)

    def test_one_address_posting_flat_out_gets_its_budget_through_a_few_connections_and_pages_still_answer(self):
        guests = [self.open_client(self.worker.url("/chat/storm/", client=f"tab-{i}")) for i in range(self.SOCKETS)]
        for guest in guests:
            guest.receive_event("welcome")
        watching, seen = threading.Event(), {"peak": 0, "backends": set(), "writers": set()}
        watcher = threading.Thread(target=self.watch_worker_connections, args=(watching, seen))
        watching.set()
        watcher.start()
        started = time.monotonic()
        for i in range(self.EACH):  # every socket at once, flat out
            for n, guest in enumerate(guests):
                guest.send_json("message", {"text": f"{n}:{i}", "nonce": f"{n}:{i}"})
        meanwhile = {}
        pages = threading.Thread(target=self.page_and_login, args=(meanwhile,))
        pages.start()
        answers = [self.answers(guest) for guest in guests]
        elapsed = time.monotonic() - started
        pages.join(timeout=30)
        watching.clear()
        watcher.join()
        stored = sum(kinds.count("ack") for kinds in answers)
        (in_database,) = self.query("SELECT count(*) FROM chat_message")
        print(f"\n[measured] {self.SOCKETS} guest sockets of one address, {self.SOCKETS * self.EACH} messages flat "
              f"out: {stored} stored in {elapsed:.2f} s (budget {self.BURST} + {self.RATE}/s); the worker held "
              f"at most {seen['peak']} connections ({len(seen['backends'])} in all, {len(seen['writers'])} "
              f"inserted messages; readers {self.READERS}, writers {self.WRITERS}); meanwhile a page took "
              f"{meanwhile.get('page_s', float('nan')):.2f} s and a login {meanwhile.get('login_s', float('nan')):.2f} s")
        self.assertEqual(in_database, stored)
        self.assertGreaterEqual(stored, self.BURST)
        self.assertLessEqual(stored, self.BURST + self.RATE * elapsed + 1)
        self.assertEqual(sum(kinds.count("rate_limited") for kinds in answers), self.SOCKETS * self.EACH - stored)
        # Every message went through the writers' connections, kept between messages: no more
        # at once than readers and writers, no new one per message, and only writers wrote.
        self.assertLessEqual(seen["peak"], self.READERS + self.WRITERS)
        self.assertLessEqual(len(seen["backends"]), self.READERS + self.WRITERS)
        self.assertLessEqual(len(seen["writers"]), self.WRITERS)
        self.assertGreaterEqual(len(seen["writers"]), 1)  # the watcher saw them write
        self.assertEqual((meanwhile.get("page"), meanwhile.get("login")), (200, 302))

    def answers(self, guest):
        """What each of a guest's messages got: "ack" or the code of the error that named it."""
        kinds = []
        while len(kinds) < self.EACH:
            event = guest.receive_json()
            if event["event"] in ("ack", "error") and "nonce" in event["data"]:
                kinds.append("ack" if event["event"] == "ack" else event["data"]["code"])
        return kinds

    def page_and_login(self, meanwhile):
        """A chat page, then a login (its form, then the POST), from the page server; statuses and times."""
        started = time.monotonic()
        status, _, _ = self.pages.http_get("/chat/storm/", timeout=10)
        meanwhile["page"], meanwhile["page_s"] = status, time.monotonic() - started
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.pages.port, timeout=10)
        conn.request("GET", "/accounts/login/")
        response = conn.getresponse()
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
        conn.request("POST", "/accounts/login/", urlencode({
            "username": "ann", "password": "a long enough password", "csrfmiddlewaretoken": token}),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}"})
        response = conn.getresponse()
        response.read()
        meanwhile["login"], meanwhile["login_s"] = response.status, time.monotonic() - started
        conn.close()

    def query(self, sql):
        with psycopg.connect(self.postgres.url) as conn:
            return conn.execute(sql).fetchone()

    def watch_worker_connections(self, watching, seen):
        """The websocket worker's connections (its application_name): the most at once, every
        backend seen, and those seen inserting a message."""
        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            while watching.is_set():
                rows = conn.execute("SELECT pid, query FROM pg_stat_activity WHERE application_name = 'ws-worker'").fetchall()
                seen["peak"] = max(seen["peak"], len(rows))
                seen["backends"].update(pid for pid, _ in rows)
                seen["writers"].update(pid for pid, query in rows if query.startswith('INSERT INTO "chat_message"'))
                time.sleep(0.002)
