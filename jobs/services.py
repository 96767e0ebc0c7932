"""Starting a job, and reporting its progress: stored first, then published.

A job is a task of Django's Tasks framework (jobs/tasks.py), enqueued in the same transaction that
creates its row, and run by `manage.py db_worker`, a process of its own: the POST returns at
once, and a deploy of the page server does not stop a job.
"""

import logging

from django.db import connection, transaction

from realtime.fanout.brokers import BrokerUnavailable, publish

from . import conf
from .models import Job

log = logging.getLogger("jobs")

# A job's changes go to its owner's channel and to the staff's ("jobs": every job): each socket listens
# to one of them, so nobody is sent the jobs of others, and a change costs two publishes however many watch.
CHANNEL = "jobs"
# Any constants: PostgreSQL's advisory locks that serialize the decisions on the limits below, and
# the scheduling of periodic tasks (jobs/periodic.py).
START_LOCK = 0x6A6F6273
PERIODIC_LOCK = 0x6A6F6274


def owner_channel(owner_id):
    return f"jobs:user:{owner_id}"


def channels_of(job):
    """The channels a job's changes are published on: the staff's, and its owner's."""
    return [CHANNEL] if job.owner_id is None else [CHANNEL, owner_channel(job.owner_id)]


class JobRefused(Exception):
    """A start refused with what the user is told and the HTTP status that says why."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


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
    event = job.as_event()
    transaction.on_commit(lambda: publish_event(job, event))


def publish_event(job, event):
    try:
        for channel in channels_of(job):
            publish(channel, event)
    except BrokerUnavailable:
        log.warning("job %s: progress stored but not published: the broker is unavailable", job.id)


def start_job(owner, steps, fail=False):
    """Create a job and enqueue its task, both or neither; returns the job.

    Raises JobRefused when `owner` already has JOB_USER_LIMIT unfinished jobs or JOB_QUEUE_LIMIT
    jobs wait for the task worker: nothing is created then.
    """
    from .tasks import run_job  # the task module imports this one

    with transaction.atomic():
        take_lock(START_LOCK)
        unfinished = Job.objects.unfinished().filter(owner=owner).count()
        if unfinished >= conf.get("JOB_USER_LIMIT"):
            raise JobRefused(429, f"You have {unfinished} jobs queued or running, the most one person may have: "
                                  "start another when one of them has finished.")
        waiting = Job.objects.filter(state=Job.QUEUED).count()
        if waiting >= conf.get("JOB_QUEUE_LIMIT"):
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
