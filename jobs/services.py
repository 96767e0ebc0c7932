"""Starting a job, and reporting its progress: stored first, then published.

A job is a task of Django's Tasks framework (jobs/tasks.py), enqueued in the same transaction that
creates its row, and run by `manage.py db_worker`, a process of its own: the POST returns at
once, and a deploy of the page server does not stop a job.
"""

import logging

from django.conf import settings
from django.db import connection, transaction

from realtime.fanout.brokers import BrokerUnavailable, publish
from realtime.envelope import envelope

from .models import Job

log = logging.getLogger("jobs")

# A job's changes go to its owner's channel and to the staff's: each page listens to one of them,
# so nobody is sent the jobs of others, and a change costs two publishes however many watch.
STAFF_CHANNEL = "jobs:staff"
# Any constants: PostgreSQL's advisory locks that serialize the decisions on the limits below, and
# the scheduling of periodic tasks (jobs/periodic.py).
START_LOCK = 0x6A6F6273
PERIODIC_LOCK = 0x6A6F6274


def user_channel(user_id):
    return f"jobs:user:{user_id}"


def channel_for(user):
    """The channel of the jobs `user` may see (Job.objects.visible_to); None for the anonymous."""
    if not user.is_authenticated:
        return None
    return STAFF_CHANNEL if user.is_staff else user_channel(user.pk)


def channels_of(job):
    """Where a change of `job` goes: its owner's channel (if it has one) and the staff's."""
    return [user_channel(job.owner_id), STAFF_CHANNEL] if job.owner_id else [STAFF_CHANNEL]


class JobRefused(Exception):
    """A start refused with what the user is told and the HTTP status that says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def job_event(job):
    """The `job` event of a job's current state (docs/protocol.md)."""
    return envelope("job", job.as_event_data())


def report(job, **changes):
    """Change a job, store it (its last state, for pages opened later), then tell every page.

    Published once the change is committed: a page never hears of a state the database may
    still roll back, and what it hears is always there to read again (a broker outage loses the
    publish, not the state: the jobs feed replays stored states after a reconnect).
    """
    for field, value in changes.items():
        setattr(job, field, value)
    job.version += 1
    job.save()
    event = job_event(job)
    channels = channels_of(job)
    transaction.on_commit(lambda: publish_event(job.id, channels, event))


def publish_event(job_id, channels, event):
    try:
        for channel in channels:
            publish(channel, event)
    except BrokerUnavailable:
        log.warning("job %s: progress stored but not published: the broker is unavailable", job_id)


def start_job(owner, steps, fail=False):
    """Create a job and enqueue its task, both or neither; returns the job.

    Raises JobRefused when `owner` already has JOB_USER_LIMIT unfinished jobs or JOB_QUEUE_LIMIT
    jobs wait for the task worker: nothing is created then.
    """
    from .tasks import run_job  # the task module imports this one

    with transaction.atomic():
        take_lock(START_LOCK)
        unfinished = Job.objects.unfinished().filter(owner=owner).count()
        if unfinished >= settings.JOB_USER_LIMIT:
            raise JobRefused(429, f"You have {unfinished} jobs queued or running, the most one person may have: "
                                  "start another when one of them has finished.")
        waiting = Job.objects.filter(state=Job.QUEUED).count()
        if waiting >= settings.JOB_QUEUE_LIMIT:
            raise JobRefused(503, f"The job queue is full ({waiting} jobs are waiting): "
                                  "try again when some of them have started.")
        job = Job.objects.create(owner=owner)
        # The database backend stores the task in this transaction: the worker sees it on commit.
        result = run_job.enqueue(job.id, steps, steps // 2 + 1 if fail else None)
        report(job, task_id=result.id)
    return job


def take_lock(key):
    """Until the transaction ends, one process at a time gets here with `key`: concurrent starts
    cannot pass a limit together, two task workers cannot schedule one periodic task twice.

    SQLite needs nothing more: its IMMEDIATE transactions (project/settings.py) take the write
    lock when they begin. PostgreSQL takes an advisory lock held until the transaction ends.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
