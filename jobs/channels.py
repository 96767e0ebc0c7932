"""The jobs' topics: `jobs:user:<id>` (one user's jobs: that user and staff may watch) and
`jobs:all` (everyone's: staff). The join's reply holds the recent jobs' states, then every change
comes as a `job` push. A client shows, per job, the state with the highest `version`: a change
published while the states were read may come after them, and is then older news.

Protocol: docs/protocol.md. The one-topic route `/jobs/` (jobs/sockets.py) serves everyone's jobs
in the older framing.
"""

import logging

from realtime.channels import Channel, Forbidden, topic
from realtime.db import run_read
from realtime.envelope import envelope
from realtime.fanout.hub import get_hub
from realtime.supervisor import supervisor

from . import watcher
from .models import Job
from .services import CHANNEL, channels_of, owner_channel

log = logging.getLogger("jobs")

ALL_JOBS_TOPIC = "jobs:all"


def user_jobs_topic(user_id):
    return f"jobs:user:{user_id}"


class JobsChannel(Channel):
    server_publishes = False  # the states of stored jobs, published by the jobs app alone
    def owner_id(self):
        """Whose jobs (None: everyone's)."""
        return self.kwargs.get("user_id")

    def may_watch(self):
        owner_id = self.owner_id()
        return self.user.is_staff or (owner_id is not None and self.user.is_authenticated and self.user.pk == owner_id)

    def join(self, params):
        if not self.may_watch():
            raise Forbidden("Only staff may watch everyone's jobs." if self.owner_id() is None else
                            "These are another user's jobs; yours are on " + user_jobs_topic(self.user.pk) + ".")
        owner_id = self.owner_id()
        subscription = self.subscribe(CHANNEL if owner_id is None else owner_channel(owner_id))
        # What was published while the broker was away is lost: send the stored states again.
        subscription.on_resync = replay.request
        watcher.started_watching()
        jobs = Job.objects.all() if owner_id is None else Job.objects.filter(owner_id=owner_id)
        return {"jobs": run_read(lambda: [job.as_event_data() for job in jobs.recent()])}

    def leave(self):
        if self.subscriptions:
            watcher.stopped_watching()


class Replay:
    """After a broker reconnect: the recent jobs' stored states, read ONCE for the whole process and
    handed to every local watcher. Each watcher's resync only asks for it (called from the
    broker's listener, which must not wait on the database or fail), so 10,000 watchers cost one
    query. Asked again while it runs, it runs once more: what it read may predate that reconnect.
    """

    def __init__(self):
        self.greenlet = None
        self.again = False

    def request(self):
        if self.greenlet is not None and not self.greenlet.dead:
            self.again = True
        else:
            self.greenlet = supervisor.run_task("jobs-replay", self.run)

    def run(self):
        self.again = True
        while self.again:
            self.again = False
            try:
                for job in run_read(Job.objects.recent):
                    deliver_here(job)
            except Exception:
                log.exception("jobs feed: could not replay the recent jobs after a broker reconnect")


def deliver_here(job):
    """A job's state to this process's watchers of it, as if it had been published."""
    event = envelope("job", job.as_event_data()).encode()
    for channel in channels_of(job):
        get_hub().deliver_here(channel, event)


replay = Replay()

topicpatterns = [
    topic("jobs:user:<int:user_id>", JobsChannel, name="user-jobs"),
    topic(ALL_JOBS_TOPIC, JobsChannel, name="all-jobs"),
]
