"""Background jobs: progress reaches every watcher, and a late watcher gets the current state at once."""

from django.test import Client, override_settings

from jobs.models import Job
from jobs.services import report
from realtime.testing import LiveWebSocketTestCase


def until_finished(client):
    """The `job` events a watcher gets until the job is done or failed."""
    events = [client.receive_event("job")]
    while events[-1]["state"] not in ("done", "failed"):
        events.append(client.receive_event("job"))
    return events


class JobFeedTests(LiveWebSocketTestCase):
    use_redis = True

    def setUp(self):
        super().setUp()
        # This process stands for the page server: its jobs publish through the same Redis.
        settings_override = override_settings(REDIS_URL=self.redis.url, JOB_STEP_SECONDS=0.02)
        settings_override.enable()
        self.addCleanup(settings_override.disable)

    def connect_after_the_current_states(self, path):
        """A watcher whose current-state snapshot is behind it, so every later change arrives once,
        live. (A job created while the snapshot is read may arrive twice, the same version both
        times: docs/protocol.md tells clients to keep the highest version.)"""
        watcher = self.connect(path)
        watcher.send_json("ping")
        watcher.receive_event("pong")  # answered by the feed's receive loop, after the snapshot
        return watcher

    def test_progress_reaches_watchers_and_a_late_one_gets_the_current_state_first(self):
        job = Job()
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

    def test_a_job_started_by_post_runs_outside_the_request_to_the_end(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        response = self.client.post("/jobs/start/", {"steps": 5})
        self.assertRedirects(response, "/jobs/")  # at once: the job runs in a thread
        events = until_finished(watcher)
        self.assertEqual(events[0]["state"], "queued")
        self.assertEqual([e["progress"] for e in events if e["state"] == "running"], [0, 20, 40, 60, 80, 100])
        self.assertEqual((events[-1]["state"], events[-1]["progress"]), ("done", 100))
        self.assertEqual([e["version"] for e in events], list(range(1, len(events) + 1)))

    def test_a_failing_job_is_shown_failed_with_the_reason(self):
        watcher = self.connect_after_the_current_states("/jobs/")
        with self.assertLogs("jobs", "WARNING"):
            self.client.post("/jobs/start/", {"steps": 4, "fail": "on"})
            last = until_finished(watcher)[-1]
        self.assertEqual((last["state"], last["progress"]), ("failed", 50))
        self.assertIn("Step 3 of 4 failed", last["detail"])

    def test_starting_a_job_needs_the_csrf_token_and_valid_input(self):
        with self.assertLogs("django", "WARNING"):
            self.assertEqual(Client(enforce_csrf_checks=True).post("/jobs/start/", {"steps": 5}).status_code, 403)
            self.assertEqual(self.client.post("/jobs/start/", {"steps": 0}).status_code, 400)
            self.assertEqual(self.client.get("/jobs/start/").status_code, 405)
        self.assertFalse(Job.objects.exists())


@override_settings(REDIS_URL="")
class JobFeedWithoutRedisTests(LiveWebSocketTestCase):
    """With the in-process broker a job's publish cannot leave the page server's process:
    the worker reads job changes from the database instead."""

    def test_progress_still_reaches_the_watcher(self):
        watcher = self.connect("/jobs/")
        job = Job()
        with self.assertLogs("realtime.broker", "WARNING"):  # "reaches no socket": true, for this process
            report(job, state=Job.RUNNING, progress=10)
        self.assertEqual(watcher.receive_event("job")["progress"], 10)
        report(job, progress=70)
        self.assertEqual(watcher.receive_event("job")["progress"], 70)
