"""Jobs without Redis: the task worker (`manage.py db_worker`) runs jobs in its own process, which
the in-process broker cannot leave. ONE greenlet per websocket worker process then reads the
recent jobs from the database every JOB_POLL_SECONDS while any socket of the process watches jobs,
and hands each change to the hub, as if it had been published.
With Redis this module only counts watchers.
"""

import gevent

from realtime.db import run_read
from realtime.fanout.brokers import get_broker
from realtime.supervisor import supervisor

from .models import Job

JOB_POLL_SECONDS = 0.5

_watcher = None
_watching = 0  # jobs topics joined in this process


def started_watching():
    """A socket of this process joined a jobs topic: without Redis, the database is watched for it."""
    global _watcher, _watching
    _watching += 1
    if _watcher is None and not get_broker().reaches_other_processes:
        _watcher = supervisor.spawn("jobs-watcher", poll_forever)


def stopped_watching():
    global _watching
    _watching -= 1


def poll_forever():
    from .channels import deliver_here

    versions = {}  # job id -> the version last handed on
    while True:
        gevent.sleep(JOB_POLL_SECONDS)
        if not _watching:
            continue  # nobody watches: no queries
        for job in run_read(Job.objects.recent):  # in a database reader: no connection of its own
            if versions.get(job.id) != job.version:
                versions[job.id] = job.version
                deliver_here(job)
