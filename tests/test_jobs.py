"""Background jobs: tasks run by a real `manage.py db_worker`, progress reaches every watcher live,
a killed task worker (restarted, or replaced by one with another id) or a restarted Redis leaves no
page behind, a task has a time limit, only users may start jobs, and each sees only their own."""

import re
import signal
from datetime import timedelta

import websocket as websocket_client
from django.contrib.auth.models import User
from django.test import Client, TestCase, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import Job, TaskHeartbeat
from jobs.recovery import recover_tasks_left_running, recover_tasks_of_vanished_workers
from jobs.services import report, start_job
from jobs.tasks import run_job
from realtime.testing import LiveWebSocketTestCase, wait_until
from tests.servers import TaskWorker

STEP_SECONDS = 0.05  # the task worker's JOB_STEP_SECONDS: short jobs, small steps


def every_change(client):
    """Every `job` event of the one job a watcher follows from its creation, in version order, once
    it has the end (done or failed) and every version before it.

    In version order, not arrival order: the page server publishes `queued` and the task worker
    the rest, and the worker may pick the task up before the page server's publish reaches
    Redis. A client shows the highest version it has, so a late `queued` changes nothing.
    """
    events = {}
    while True:
        event = client.receive_event("job")
        events[event["version"]] = event
        end = max(events.values(), key=lambda e: e["version"])
        if end["state"] in ("done", "failed") and len(events) == end["version"]:
            return [events[version] for version in sorted(events)]


def until(client, condition):
    """The `job` events a watcher gets up to the first that meets `condition`."""
    events = [client.receive_event("job")]
    while not condition(events[-1]):
        events.append(client.receive_event("job"))
    return events


class LiveJobsTestCase(LiveWebSocketTestCase):
    """A websocket worker and a task worker (`db_worker`), both on the test database; this process
    stands for the page server, logged in as a user who may start jobs."""

    task_env = {}  # the task worker's settings

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        redis_url = cls.redis.url if cls.redis else ""
        try:
            cls.tasks = TaskWorker(redis_url=redis_url, env={"JOB_STEP_SECONDS": str(STEP_SECONDS), **cls.task_env}).start()
        except BaseException:
            cls.stop_servers()
            raise

    @classmethod
    def stop_servers(cls):
        if getattr(cls, "tasks", None):
            cls.tasks.stop()
        super().stop_servers()

    def setUp(self):
        super().setUp()
        # Registered first, so run last: after the other clean-ups, before the rows are flushed.
        self.addCleanup(self.wait_until_the_task_worker_is_idle)
        settings_override = override_settings(REDIS_URL=self.redis.url if self.redis else "")
        settings_override.enable()
        self.addCleanup(settings_override.disable)
        self.addCleanup(self.tasks.start_if_stopped)  # after a test that killed it
        self.ann = User.objects.create_user("ann", password="a long enough password")
        self.client.force_login(self.ann)

    def connect(self, path, worker=None, client=None, **query):
        """A socket of the user `client` (a django.test.Client) is logged in as: this test's, ann, by default."""
        cookie = f"sessionid={(client or self.client).cookies['sessionid'].value}"
        return self.open_client((worker or self.worker).url(path, **query), cookie=cookie)

    def wait_until_the_task_worker_is_idle(self):
        """No task running, none due. A task whose row the flush after a test deletes fails to save
        its result, and that stops the task worker (django-tasks-db's loop raises): the next test
        would find it still exiting, start a job nobody runs, and wait for it in vain. A job's last
        report comes before its result is saved, and each worker start queues the periodic prune
        at once (jobs/periodic.py): a test that saw its job end can still leave one running."""
        wait_until(lambda: not (DBTaskResult.objects.running().exists() or DBTaskResult.objects.ready().exists()),
                   message="the task worker idle, before the rows are flushed")

    def connect_after_the_current_states(self, path, client=None):
        """A watcher whose current-state snapshot is behind it, so every later change arrives once,
        live. (A job created while the snapshot is read may arrive twice, the same version both
        times: docs/protocol.md tells clients to keep the highest version.)"""
        watcher = self.connect(path, client=client)
        watcher.send_json("ping")
        watcher.receive_event("pong")  # answered by the feed's receive loop, after the snapshot
        return watcher

    def finished_result(self, job):
        """The job's task result once finished: the worker saves it after the task returned, which
        is after the job's last report."""
        return wait_until(lambda: (result := run_job.get_result(job.task_id)).is_finished and result,
                          message="the task result finished")

    def start(self, client=None, **form):
        response = (client or self.client).post("/jobs/start/", form)
        self.assertRedirects(response, "/jobs/")  # at once: the job runs in the task worker
        return Job.objects.latest("id")

    def logged_in(self, name, **flags):
        """A page server's client logged in as a new user `name`."""
        client = Client()
        client.force_login(User.objects.create_user(name, password="a long enough password", **flags))
        return client


class JobFeedTests(LiveJobsTestCase):
    use_redis = True

    def setUp(self):
        super().setUp()
        self.addCleanup(self.redis.start_if_stopped)  # after the test that restarts it

    def test_progress_reaches_watchers_and_a_late_one_gets_the_current_state_first(self):
        job = Job(owner=self.ann)
        report(job)
        early = self.connect("/jobs/")
        self.assertEqual(early.receive_event("job")["state"], "queued")
        report(job, state=Job.RUNNING, progress=40)
        self.assertEqual(early.receive_event("job")["progress"], 40)
        # Opened mid-job: nothing is being published, yet the first message is the current state.
        late = self.connect("/jobs/")
        first = late.receive_json(timeout=2)
        self.assertEqual(first["event"], "job")
        self.assertEqual({k: first["data"][k] for k in ("id", "state", "progress", "version")},
                         {"id": job.id, "state": "running", "progress": 40, "version": 2})
        report(job, state=Job.DONE, progress=100, detail="Done.")
        for watcher in (early, late):
            self.assertEqual(watcher.receive_event("job")["state"], "done")

    def test_a_job_started_by_post_runs_in_the_task_worker_to_the_end_while_two_pages_watch(self):
        watchers = [self.connect_after_the_current_states("/jobs/") for _ in range(2)]
        job = self.start(steps=5)
        for watcher in watchers:
            events = every_change(watcher)
            self.assertEqual(events[0]["state"], "queued")
            self.assertEqual([e["progress"] for e in events if e["state"] == "running"], [0, 20, 40, 60, 80, 100])
            self.assertEqual((events[-1]["state"], events[-1]["progress"]), ("done", 100))
            self.assertEqual([e["version"] for e in events], list(range(1, len(events) + 1)))
        # The Tasks framework's record: run by db_worker, and saved once the task returned.
        result = self.finished_result(job)
        self.assertEqual((result.status, result.worker_ids), ("SUCCESSFUL", [self.tasks.worker_id]))
        self.assertEqual(job.owner.username, "ann")

    def test_a_failing_job_is_shown_failed_with_the_reason(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        job = self.start(steps=4, fail="on")
        last = every_change(watcher)[-1]
        self.assertEqual((last["state"], last["progress"]), ("failed", 50))
        # Where it failed, not what the exception said: that, with the traceback, is in the log.
        self.assertEqual(last["detail"], "Failed at step 3 of 4.")
        wait_until(lambda: "RuntimeError: Step 3 of 4 failed (as asked)." in self.tasks.log(), message="the traceback logged")
        result = self.finished_result(job)
        self.assertEqual(result.status, "FAILED")
        self.assertIn("RuntimeError", result.errors[0].traceback)

    def test_a_task_worker_killed_mid_job_retries_it_when_restarted_and_the_pages_see_it_done(self):
        watchers = [self.connect_after_the_current_states("/jobs/") for _ in range(2)]
        job = self.start(steps=40)  # 2 s
        before = [until(watcher, lambda e: e["state"] == "running" and e["progress"] >= 10) for watcher in watchers]
        self.tasks.stop(signal.SIGKILL)
        job.refresh_from_db()
        self.assertEqual(job.state, "running", "the job ended before the task worker was killed")
        self.tasks.start()
        for watcher, seen in zip(watchers, before):
            # In version order (see every_change); a change the killed worker stored but had no
            # time to publish may be missing.
            events = sorted(seen + until(watcher, lambda e: e["state"] == "done"), key=lambda e: e["version"])
            # The restarted worker queued it again, then ran it from the start to the end.
            requeued = next(i for i, e in enumerate(events) if e["state"] == "queued" and e["version"] > 1)
            self.assertEqual(events[requeued]["detail"], "The task worker stopped during attempt 1 of 3: queued again.")
            self.assertEqual([(e["state"], e["progress"] > 0) for e in events[requeued - 1:requeued + 2]],
                             [("running", True), ("queued", False), ("running", False)])
            self.assertEqual((events[-1]["state"], events[-1]["progress"]), ("done", 100))
        result = self.finished_result(job)
        self.assertEqual((result.status, result.worker_ids), ("SUCCESSFUL", [self.tasks.worker_id] * 2))

    def test_redis_restarted_mid_job_the_open_pages_converge_on_the_final_state(self):
        watchers = [self.connect_after_the_current_states("/jobs/") for _ in range(2)]
        job = self.start(steps=20)  # 1 s
        for watcher in watchers:
            until(watcher, lambda e: e["state"] == "running")
        self.redis.stop()
        # The job goes on and stores its progress; every publish is lost, the end's too.
        wait_until(lambda: Job.objects.get(id=job.id).state == "done", message="the job done during the outage")
        self.redis.start()
        for watcher in watchers:  # the same sockets: only the feed's replay can tell them
            last = until(watcher, lambda e: e["state"] == "done")[-1]
            self.assertEqual((last["id"], last["state"], last["progress"]), (job.id, "done", 100))
        self.assertIn("reconnected to Redis", self.worker.log())


class PrivateJobsTests(LiveJobsTestCase):
    use_redis = True

    def test_a_user_s_socket_and_page_never_show_another_user_s_jobs_and_staff_see_every_job(self):
        bob, staff = self.logged_in("bob"), self.logged_in("sam", is_staff=True)
        ann_watcher = self.connect_after_the_current_states("/jobs/")
        bob_watcher = self.connect_after_the_current_states("/jobs/", client=bob)
        staff_watcher = self.connect_after_the_current_states("/jobs/", client=staff)
        anns = self.start(steps=2)
        self.assertEqual({e["id"] for e in every_change(ann_watcher)}, {anns.id})
        bobs = self.start(client=bob, steps=2)  # after ann's ended: any of hers bob got would come first
        self.assertEqual({e["id"] for e in every_change(bob_watcher)}, {bobs.id})
        bob_watcher.send_json("ping")
        self.assertEqual(bob_watcher.receive_json()["event"], "pong")  # and nothing of hers after
        done = {}
        while len(done) < 2:
            event = staff_watcher.receive_event("job")
            if event["state"] == "done":
                done[event["id"]] = event
        self.assertEqual(set(done), {anns.id, bobs.id})
        self.finished_result(bobs)

        # The pages, as rendered: each their own; staff everyone's; the anonymous none (and no jobs topic).
        rows = lambda client: {int(i) for i in re.findall(r'data-job-id="(\d+)"', client.get("/jobs/").content.decode())}  # noqa: E731
        self.assertEqual((rows(self.client), rows(bob), rows(staff), rows(Client())),
                         ({anns.id}, {bobs.id}, {anns.id, bobs.id}, set()))
        anonymous = Client().get("/jobs/")
        self.assertContains(anonymous, "to start jobs and watch them here")
        self.assertContains(anonymous, 'data-topic=""')
        with self.assertRaises(websocket_client.WebSocketBadStatusException) as refused:
            self.open_client(self.worker.url("/jobs/"))
        self.assertEqual(refused.exception.status_code, 403)


class VanishedWorkerTests(LiveJobsTestCase):
    """A task worker that never comes back under its id, and a task that runs too long."""

    use_redis = True
    task_env = {"JOB_HEARTBEAT_TIMEOUT": "1", "JOB_TIME_LIMIT": "2"}

    def test_a_job_whose_worker_is_killed_and_replaced_under_another_id_is_retried_after_the_heartbeat_timeout(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        job = self.start(steps=16)  # 0.8 s
        seen = until(watcher, lambda e: e["state"] == "running" and e["progress"] >= 10)
        self.tasks.stop(signal.SIGKILL)
        job.refresh_from_db()
        self.assertEqual(job.state, "running", "the job ended before the task worker was killed")
        # Its replacement (a new container, a renamed host) has another id: nothing of the old one's
        # is its own at start, but the old one's heartbeat stopped.
        other = TaskWorker(worker_id="test-tasks-replaced", redis_url=self.redis.url,
                           env={"JOB_STEP_SECONDS": str(STEP_SECONDS), **self.task_env})
        self.addCleanup(other.stop)
        other.start()
        events = sorted(seen + until(watcher, lambda e: e["state"] == "done"), key=lambda e: e["version"])
        requeued = next(i for i, e in enumerate(events) if e["state"] == "queued" and e["version"] > 1)
        self.assertEqual(events[requeued]["detail"], "The task worker stopped during attempt 1 of 3: queued again.")
        self.assertEqual((events[-1]["state"], events[-1]["progress"]), ("done", 100))
        result = self.finished_result(job)
        self.assertEqual((result.status, result.worker_ids), ("SUCCESSFUL", ["test-tasks", "test-tasks-replaced"]))
        self.assertIn("no heartbeat for 1 s during attempt 1 of 3; queued again", other.log())

    def test_a_job_that_runs_longer_than_the_time_limit_is_stopped_and_shown_failed(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        job = self.start(steps=100)  # 5 s, past the limit of 2 s
        last = until(watcher, lambda e: e["state"] == "failed")[-1]
        self.assertRegex(last["detail"], r"^Stopped at step \d+ of 100: it ran longer than the time limit of 2 s\.$")
        result = self.finished_result(job)
        self.assertEqual(result.status, "FAILED")
        self.assertIn("TaskTimeLimit", result.errors[0].traceback)
        after = self.start(steps=2)  # the worker goes on with the next
        self.assertEqual(until(watcher, lambda e: e["id"] == after.id and e["state"] == "done")[-1]["progress"], 100)
        self.finished_result(after)


class JobFeedWithoutRedisTests(LiveJobsTestCase):
    """With the in-process broker a job's publish cannot leave the task worker's process:
    the websocket worker reads job changes from the database instead."""

    def test_progress_reported_from_another_process_still_reaches_the_watcher(self):
        # After its snapshot: a job created while the snapshot is read would come twice at 10.
        watcher = self.connect_after_the_current_states("/jobs/")
        job = Job(owner=self.ann)
        with self.assertLogs("realtime.brokers", "WARNING"):  # "reaches no socket": true, for this process
            report(job, state=Job.RUNNING, progress=10)
        self.assertEqual(watcher.receive_event("job")["progress"], 10)
        report(job, progress=70)
        self.assertEqual(watcher.receive_event("job")["progress"], 70)

    def test_a_job_started_by_post_runs_in_the_task_worker_to_the_end(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        with self.assertLogs("realtime.brokers", "WARNING"):  # the page server's publish: no socket here
            job = self.start(steps=5)
        last = until(watcher, lambda e: e["id"] == job.id and e["state"] == "done")[-1]
        self.assertEqual(last["progress"], 100)


@override_settings(JOB_USER_LIMIT=2, JOB_QUEUE_LIMIT=3)
class StartingJobsTests(TestCase):
    """Who may start a job and how many; no task worker runs here, so started jobs stay queued."""

    def setUp(self):
        self.ann = User.objects.create_user("ann", password="a long enough password")
        self.client.force_login(self.ann)

    def assertNothingMoreCreated(self, jobs):
        self.assertEqual((Job.objects.count(), DBTaskResult.objects.count()), (jobs, jobs))

    def test_an_anonymous_visitor_may_watch_but_is_refused_a_start_with_the_reason(self):
        anonymous = Client()
        page = anonymous.get("/jobs/")
        self.assertContains(page, 'data-testid="log-in-to-start"')
        self.assertNotContains(page, 'data-testid="start-job"')
        with self.assertLogs("django", "WARNING"):
            response = anonymous.post("/jobs/start/", {"steps": 5})
        self.assertContains(response, "Log in to start a job", status_code=403)
        self.assertNothingMoreCreated(0)

    def test_a_user_with_the_most_unfinished_jobs_is_refused_another_until_one_finishes(self):
        for _ in range(2):
            self.assertEqual(self.client.post("/jobs/start/", {"steps": 5}).status_code, 302)
        with self.assertLogs("django", "WARNING"):
            response = self.client.post("/jobs/start/", {"steps": 5})
        self.assertContains(response, "You have 2 jobs queued or running", status_code=429)
        self.assertNothingMoreCreated(2)
        Job.objects.filter(id=Job.objects.first().id).update(state=Job.DONE)
        self.assertEqual(self.client.post("/jobs/start/", {"steps": 5}).status_code, 302)
        self.assertNothingMoreCreated(3)

    def test_a_full_queue_refuses_a_start_with_the_reason_and_creates_nothing(self):
        for name in ("bob", "cyd"):
            user = User.objects.create_user(name)
            start_job(user, 5)
        start_job(self.ann, 5)
        with self.assertLogs("django", "WARNING"):
            response = self.client.post("/jobs/start/", {"steps": 5})
        self.assertContains(response, "The job queue is full (3 jobs are waiting)", status_code=503)
        self.assertNothingMoreCreated(3)

    def test_starting_a_job_needs_the_csrf_token_and_valid_input(self):
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(self.ann)
        with self.assertLogs("django", "WARNING"):
            self.assertEqual(strict.post("/jobs/start/", {"steps": 5}).status_code, 403)
            self.assertEqual(self.client.post("/jobs/start/", {"steps": 0}).status_code, 400)
            self.assertEqual(self.client.get("/jobs/start/").status_code, 405)
        self.assertNothingMoreCreated(0)


@override_settings(JOB_MAX_ATTEMPTS=3)
class RecoveryTests(TestCase):
    """What a task worker does on start with the tasks its previous life left running."""

    def test_a_task_left_running_is_queued_again_until_its_last_attempt_then_failed(self):
        job = start_job(User.objects.create_user("ann"), 5)
        result = DBTaskResult.objects.get(id=job.task_id)
        for attempt in (1, 2):
            result.claim("w1")  # a worker with this id took it, then died
            with self.assertLogs("jobs", "WARNING"):
                self.assertEqual(recover_tasks_left_running("w1", "default"), 1)
            result.refresh_from_db()
            job.refresh_from_db()
            self.assertEqual((result.status, job.state, job.progress), ("READY", "queued", 0))
            self.assertEqual(job.detail, f"The task worker stopped during attempt {attempt} of 3: queued again.")
        result.claim("w1")
        with self.assertLogs("jobs", "WARNING") as logs:
            self.assertEqual(recover_tasks_left_running("w1", "default"), 1)
        self.assertIn("given up", logs.output[0])
        result.refresh_from_db()
        job.refresh_from_db()
        self.assertEqual((result.status, job.state), ("FAILED", "failed"))
        self.assertEqual(job.detail, "The task worker stopped during each of 3 attempts: given up.")
        self.assertEqual(result.exception_class_path, "jobs.recovery.WorkerDied")

    def test_a_task_without_a_recent_heartbeat_is_queued_again_once_and_the_others_are_left_alone(self):
        silent, beating, new = (start_job(User.objects.create_user(name), 5) for name in ("ann", "bob", "cyd"))
        results = [DBTaskResult.objects.get(id=job.task_id) for job in (silent, beating, new)]
        for result, worker in zip(results, ("gone", "alive", "starting")):
            result.claim(worker)
        TaskHeartbeat.objects.create(task=results[0], worker_id="gone", beat=timezone.now() - timedelta(seconds=61))
        TaskHeartbeat.objects.create(task=results[1], worker_id="alive", beat=timezone.now())
        # The third was claimed a moment ago and has not beaten yet: not silent either.
        with self.assertLogs("jobs", "WARNING") as logs:
            self.assertEqual(recover_tasks_of_vanished_workers("default", 60), 1)
        self.assertIn("no heartbeat for 60 s during attempt 1 of 3; queued again", logs.output[0])
        self.assertEqual([DBTaskResult.objects.get(id=r.id).status for r in results], ["READY", "RUNNING", "RUNNING"])
        self.assertFalse(TaskHeartbeat.objects.filter(task=results[0]).exists())
        silent.refresh_from_db()
        self.assertEqual(silent.state, "queued")
        self.assertEqual(recover_tasks_of_vanished_workers("default", 60), 0)  # settled once

    def test_a_task_another_worker_is_running_is_left_alone(self):
        job = start_job(User.objects.create_user("ann"), 5)
        DBTaskResult.objects.get(id=job.task_id).claim("w2")
        self.assertEqual(recover_tasks_left_running("w1", "default"), 0)
        self.assertEqual(DBTaskResult.objects.get(id=job.task_id).status, "RUNNING")
